"""The Faust app: configuration, topics, the customer table, agents and web views.

``build_app`` wires the pieces declared in ``topics``, ``agents`` and ``web``; the
per-event work itself is :class:`stream.processor.EventProcessor`, which has no Faust in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from models.alerting import AlertPolicy
from models.features import CustomerState
from models.retention import RetentionModels
from stream.processor import EventProcessor
from stream.replay import load_models
from stream.settings import Settings


@dataclass(frozen=True)
class AppTopics:
    inputs: dict[str, tuple[Any, str]]  # name -> (faust topic, expected event type)
    alerts: Any
    scores: Any
    dead_letter: Any
    scan: Any  # internal: scan ticks, co-partitioned with the input
    feedback_signals: Any  # internal, one partition: feedback outcomes for the surge


@dataclass(frozen=True)
class ScorerApp:
    app: faust.App
    topics: AppTopics
    customers: Any  # faust.Table of customer_id -> CustomerState bytes
    settings: Settings
    input_partitions: int
    processor: EventProcessor


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def build_app(
    settings: Settings, input_partitions: int, processor: EventProcessor | None = None
) -> ScorerApp:
    """A ready-to-run app; ``input_partitions`` is what :func:`ensure_topics` found."""
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        store="rocksdb://" if settings.table_store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        topic_partitions=input_partitions,
        topic_replication_factor=settings.topic_replicas,
        topic_disable_leader=True,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    n = settings.topic_partitions
    topics = AppTopics(
        inputs={
            name: (_raw_topic(app, name, input_partitions), kind)
            for name, kind in settings.input_topics.items()
        },
        alerts=_raw_topic(app, settings.topic_alerts, n),
        scores=_raw_topic(app, settings.topic_scores, n),
        dead_letter=_raw_topic(app, settings.topic_dead_letter, n),
        scan=_raw_topic(app, settings.topic_scan, input_partitions),
        feedback_signals=_raw_topic(app, settings.topic_feedback_signals, 1),
    )
    customers: Any = app.Table(
        "customers",
        default=None,
        key_type=str,
        value_type=bytes,
        partitions=input_partitions,
        help="CustomerState per customer_id (see models.features).",
    )
    # Faust derives table codecs from Record types only; the state is already compact
    # orjson bytes, so the changelog carries them as they are (the restart test guards it).
    customers.key_serializer = "json"
    customers.value_serializer = "raw"
    # Imported here: agents and web only make sense on a built app.
    from stream import agents, web

    if processor is None:
        processor = EventProcessor(
            scorer=load_models(settings.models_path)
            if settings.models_path
            else RetentionModels(settings.models()),
            policy=AlertPolicy(settings.alerts()),
            customers=lambda: (CustomerState.from_bytes(raw) for raw in customers.values()),
            scan_interval_days=settings.scan_interval_days,
        )
    scorer_app = ScorerApp(
        app=app,
        topics=topics,
        customers=customers,
        settings=settings,
        input_partitions=input_partitions,
        processor=processor,
    )
    agents.register(scorer_app)
    web.register(scorer_app)
    return scorer_app
