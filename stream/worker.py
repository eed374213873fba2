"""Run the Faust worker for the configured cluster (``crm-scorer worker``)."""

from __future__ import annotations

import asyncio
import logging

import faust

from stream.app import build_app
from stream.settings import Settings
from stream.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Create missing topics, build the app, and run until stopped (SIGTERM or SIGINT)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    partitions = loop.run_until_complete(ensure_topics(settings))
    sa = build_app(settings, partitions)
    worker = faust.Worker(
        sa.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        workdir=str(settings.data_dir),
    )
    worker.execute_from_commandline()
