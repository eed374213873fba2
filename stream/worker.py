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
