"""Run the Faust worker for the configured cluster (``crm-scorer worker``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import uvloop

from stream.allocator import fix_mmap_threshold
from stream.app import build_app
from stream.collector import watch_collections
from stream.settings import Settings
from stream.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Create missing topics, build the app, and run until stopped (SIGTERM or SIGINT)."""
    fix_mmap_threshold()
    if settings.event_loop == "uvloop":
        # Every loop of the worker, also the one Faust's consumer thread makes.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        partitions = loop.run_until_complete(ensure_topics(settings))
    except Exception as exc:
        # aiokafka's errors on a refused login are cryptic (a SCRAM reply without its
        # proof surfaces as KeyError 'v'): say what was tried, never with the password.
        sasl = (
            f", SASL {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
            if settings.kafka_security_protocol.startswith("SASL_")
            else ""
        )
        log.error(
            "cannot use Kafka at %s (%s%s): %r",
            settings.kafka_bootstrap,
            settings.kafka_security_protocol,
            sasl,
            exc,
        )
        raise SystemExit(2) from exc
    app = build_app(settings, partitions).app
    watch_collections(app, freeze=settings.gc_freeze_survivors)
    faust_worker(app, settings, loop).execute_from_commandline()


def faust_worker(app: faust.App, settings: Settings, loop: asyncio.AbstractEventLoop) -> Any:
    """The Faust worker that runs ``app``, logging at the configured level, in the data
    directory (made if missing: the worker changes into it)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        workdir=str(settings.data_dir),
    )
    # Faust's terminal spinner (on at levels from WARNING up) sets the root logger to
    # DEBUG so that every record spins it: each of Faust's per-message debug calls then
    # builds a record (5% of a loaded worker's time, py-spy). A worker has no terminal.
    worker.spinner = None
    return worker
