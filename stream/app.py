"""The Faust app: configuration, topics, the customer table, agents and web views.

``build_app`` wires the pieces declared in ``topics``, ``agents`` and ``web``; the
per-event work itself is :class:`stream.processor.EventProcessor`, which has no Faust in it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import faust

from models.alerting import AlertPolicy
from models.features import CustomerState, may_have_bought
from models.retention import RetentionModels
from stream import metrics, transport
from stream.processor import EventProcessor
from stream.recovery import TableManager
from stream.replay import load_models
from stream.settings import Settings
from stream.stores import RELEASE_INTERVAL_S, RocksDBMemory
from stream.tables import customer_id_of
from stream.topics import TABLE_PARTITIONS, partition_for


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
    #: faust.Table of checkpoint chunks (stream.checkpoints), co-partitioned with the
    #: input: partition p's models; and one of the surge detector's (one partition).
    model_checkpoints: Any
    surge_checkpoints: Any
    settings: Settings
    input_partitions: int
    #: The processor of one input partition, from its restored models or new ones.
    new_processor: Callable[[int, RetentionModels | None], EventProcessor]


def raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def partition_items(
    table: Any, partition: int, partitions: int, wanted: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[str, bytes]]:
    """The (customer id, value) pairs of one partition of a table keyed by customer id (as
    written: a worker writes a customer only in its own partition's context) whose value
    is ``wanted``. On RocksDB Faust keeps one database per partition: only that one is
    walked. Walking the whole table for each partition's model tick held the event loop
    3-5 s at 95,000 customers (docs/benchmarks.md). Only a wanted value's key is decoded:
    the scans and the ticks want a third to a half of the customers, and decoding every
    key through Faust's serializers was 1% of the worker's samples."""
    store = table.data
    databases = getattr(store, "_dbs", None)  # faust.stores.rocksdb.Store (pinned)
    if isinstance(databases, dict) and hasattr(store, "_visible_items"):
        database = databases.get(partition)
        if database is not None:
            for key, value in store._visible_items(database):
                if wanted is None or wanted(value):
                    yield customer_id_of(key), value
        return
    for customer_id, raw in table.items():
        if partition_for(customer_id, partitions) == partition and (wanted is None or wanted(raw)):
            yield customer_id, raw


def raw_table(
    app: transport.App, settings: Settings, name: str, input_partitions: int, description: str
) -> Any:
    """A table of bytes; on RocksDB within the app's memory (``stream.stores``)."""
    memory = app.rocksdb_memory
    table: Any = app.Table(
        name,
        default=None,
        key_type=str,
        value_type=bytes,
        partitions=TABLE_PARTITIONS[name] or input_partitions,
        help=description,
        options={**settings.rocksdb_options(), "memory": memory} if memory else None,
    )
    # Faust derives table codecs from Record types only; the values are already bytes,
    # so the changelog carries them as they are (the restart test guards it).
    table.key_serializer = "json"
    table.value_serializer = "raw"
    return table


def broker_credentials(settings: Settings) -> Any:
    """Faust's form of the Kafka connection settings (TLS, SASL), or ``None``."""
    context = settings.kafka_ssl_context()
    if settings.kafka_security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    return faust.SSLCredentials(context) if context is not None else None


def faust_app(settings: Settings, input_partitions: int) -> transport.App:
    """The Faust app with the worker's configuration, before topics, tables and agents."""
    rocksdb = settings.table_store == "rocksdb"
    return transport.App(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        output_linger_s=settings.output_linger_ms / 1000,
        rocksdb_memory=RocksDBMemory(settings.rocksdb_memory_bytes) if rocksdb else None,
        broker=settings.faust_broker,
        broker_credentials=broker_credentials(settings),
        store="crmrocksdb://" if rocksdb else "memory://",
        TableManager=TableManager,
        datadir=str(settings.data_dir),
        autodiscover=False,
        topic_partitions=input_partitions,
        topic_replication_factor=settings.topic_replicas,
        topic_disable_leader=True,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.fetch_partition_bytes,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_canonical_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )


def build_app(settings: Settings, input_partitions: int) -> ScorerApp:
    """A ready-to-run app; ``input_partitions`` is what :func:`ensure_topics` found."""
    app = faust_app(settings, input_partitions)
    memory = app.rocksdb_memory
    if memory is not None:
        metrics.ROCKSDB_MEMORY.set_function(memory.usage)
        metrics.ROCKSDB_MEMTABLES.set_function(memory.memtables)

        async def release_rocksdb_memory() -> None:
            memory.release()

        app.timer(interval=RELEASE_INTERVAL_S)(release_rocksdb_memory)
    n = settings.topic_partitions
    topics = AppTopics(
        inputs={
            name: (raw_topic(app, name, input_partitions), kind)
            for name, kind in settings.input_topics.items()
        },
        alerts=raw_topic(app, settings.topic_alerts, n),
        scores=raw_topic(app, settings.topic_scores, n),
        dead_letter=raw_topic(app, settings.topic_dead_letter, n),
        scan=raw_topic(app, settings.topic_scan, input_partitions),
        feedback_signals=raw_topic(app, settings.topic_feedback_signals, 1),
    )
    customers = raw_table(
        app,
        settings,
        "customers",
        input_partitions,
        "CustomerState per customer_id (models.features).",
    )
    # Imported here: agents and web only make sense on a built app.
    from stream import agents, web

    warm = load_models(settings.models_path) if settings.models_path else None
    policy = AlertPolicy(settings.alerts())

    def new_processor(partition: int, scorer: RetentionModels | None = None) -> EventProcessor:
        def buyers_of_partition() -> Iterator[CustomerState]:
            # The ticks learn from buyers only: the others are not decoded.
            for _, raw in partition_items(customers, partition, input_partitions, may_have_bought):
                yield CustomerState.from_bytes(raw)

        if scorer is None:
            scorer = copy.deepcopy(warm) if warm else RetentionModels(settings.models())
        return EventProcessor(
            scorer=scorer,
            policy=policy,
            customers=buyers_of_partition,
            scan_interval_days=settings.scan_interval_days,
        )

    scorer_app = ScorerApp(
        app=app,
        topics=topics,
        customers=customers,
        model_checkpoints=raw_table(
            app,
            settings,
            "model-checkpoints",
            input_partitions,
            "Checkpoints of each partition's models.",
        ),
        surge_checkpoints=raw_table(
            app,
            settings,
            "surge-checkpoints",
            input_partitions,
            "Checkpoints of the sentiment-surge detector.",
        ),
        settings=settings,
        input_partitions=input_partitions,
        new_processor=new_processor,
    )
    web.register(agents.register(scorer_app))
    return scorer_app
