"""Prometheus metrics of the worker (prometheus-client, served at ``/metrics``)."""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

Child = TypeVar("Child")


class LoopCollector(Collector, Generic[Child]):
    """A metric updated from the event loop's thread only, by label set: plain numbers
    where prometheus-client's own take a lock at every update (its histogram's two
    observations per event were 1.7% of the worker's samples, its counter of events
    0.7%). Exposed as prometheus-client exposes its own (tests compare them), without
    the ``_created`` series."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Child] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> Child:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}")
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self._child()
        return child

    @abstractmethod
    def _child(self) -> Child:
        """A new label set's numbers."""

    @abstractmethod
    def describe(self) -> Sequence[Metric]:
        """The metric's family, with no samples (prometheus-client's registry asks)."""


class LoopHistogram(LoopCollector["LoopHistogramChild"]):
    """A histogram: a bucket found by bisection, where prometheus-client's walks the
    bounds in Python.

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = CollectorRegistry()
    >>> h = LoopHistogram("t_seconds", "Test.", buckets=(0.1, 1.0), registry=registry)
    >>> h.observe(0.5); h.observe(0.1); h.observe(7.0)
    >>> for line in generate_latest(registry).decode().splitlines():
    ...     if "_bucket" in line: print(line)
    t_seconds_bucket{le="0.1"} 1.0
    t_seconds_bucket{le="1.0"} 2.0
    t_seconds_bucket{le="+Inf"} 3.0
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.bounds = tuple(float(b) for b in buckets if b != float("inf"))
        super().__init__(name, documentation, labelnames, registry=registry)
        if not self.labelnames:
            self._unlabelled = self.labels()

    def _child(self) -> LoopHistogramChild:
        return LoopHistogramChild(self.bounds)

    def observe(self, amount: float) -> None:
        self._unlabelled.observe(amount)

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), child.counts, strict=True):
                cumulative += count
                le = floatToGoString(bound)  # type: ignore[no-untyped-call]
                buckets.append((le, float(cumulative)))
            family.add_metric(list(values), buckets, child.sum)
        yield family


class LoopHistogramChild:
    """One label set's counts: one per bound, and one above the last."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        # A bucket holds what is at most its bound: the first bound not below it.
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class LoopCounter(LoopCollector["LoopCounterChild"]):
    """A counter, by label set (``name`` ends in ``_total``, as the series does).

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = CollectorRegistry()
    >>> c = LoopCounter("t_total", "Test.", ["kind"], registry=registry)
    >>> c.labels("a").inc(); c.labels("a").inc(2)
    >>> [line for line in generate_latest(registry).decode().splitlines() if "{" in line]
    ['t_total{kind="a"} 3.0']
    """

    def _child(self) -> LoopCounterChild:
        return LoopCounterChild()

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(list(values), child.value)
        yield family


class LoopCounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


EVENTS = LoopCounter(
    "crm_events_total",
    "Input messages handled, by topic and outcome (ok, duplicate, rerouted, dead_lettered, "
    "forgotten).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "crm_dead_letters_total",
    "Input messages sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
)
ALERTS = Counter("crm_alerts_emitted_total", "Risk alerts published, by kind.", ["kind"])
ALERTS_SUPPRESSED = Counter(
    "crm_alerts_suppressed_total",
    "Alerts held back, by kind and reason (cooldown per customer, rate_limit global).",
    ["kind", "reason"],
)
CUSTOMERS_FORGOTTEN = Counter(
    "crm_customers_forgotten_total",
    "Forget requests applied (a tombstone on an input topic): state and scores removed.",
)
SCANS = Counter("crm_scans_total", "Scans of quiet customers, one per owned partition.")
WATERMARK = Gauge(
    "crm_event_time_watermark_seconds",
    "Event-time clock of the worker: low watermark of its input partitions (Unix time).",
)
#: Event time to processing, in seconds: from seconds (live) to weeks (a backfill).
AGE_BUCKETS = (1, 5, 15, 60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400, 30 * 86_400)
EVENT_AGE = LoopHistogram(
    "crm_event_age_seconds",
    "Wall time at processing minus the event's own time (ts), by input topic.",
    ["topic"],
    buckets=AGE_BUCKETS,
)
PROCESSING = LoopHistogram(
    "crm_processing_seconds",
    "From consuming an input message to its outputs being queued for publishing.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
EVENT_TO_ALERT = Histogram(
    "crm_event_to_alert_seconds",
    "From the triggering message's Kafka timestamp to the alert stored by the broker, by kind.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FETCH_ROUND_TRIP = Histogram(
    "crm_fetch_round_trip_seconds",
    "From the worker's fetch request to its answer read: the broker's part of each "
    "event's latency (a broker may hold a fetch that finds nothing new up to "
    "CRM_FETCH_MAX_WAIT_MS).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOOP_DELAY = Histogram(
    "crm_event_loop_delay_seconds",
    "How late a 0.25-s probe timer woke: how long the event loop was busy in one piece "
    "(consumer heartbeats, /metrics and /ready wait that long).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "crm_consumer_lag_messages",
    "Messages in an owned input partition not yet read by this worker.",
    ["topic", "partition"],
)
WORKER = Info(
    "crm_worker",
    "This worker: app_id (the consumer group), worker (host:web port, as Faust names it) "
    "and event_loop (uvloop or asyncio).",
)
CUSTOMERS = Gauge(
    "crm_customers", "Customers in this worker's state, by owned input partition.", ["partition"]
)
# Models are per input partition (docs/operations.md): their gauges carry the partition,
# and only its current owner exports it, so sums over workers count each partition once.
CHURN_AUC = Gauge(
    "crm_churn_auc_recent",
    "Prequential churn AUC over the latest 2,000 matured labels (NaN until both outcomes).",
    ["partition"],
)
DEMAND_MAE = Gauge(
    "crm_demand_mae_recent",
    "Mean absolute error of the latest 2,000 matured 30-day spend forecasts, each made "
    "before its target was learned (NaN before the first).",
    ["partition"],
)
SENTIMENT_ACCURACY = Gauge(
    "crm_sentiment_accuracy_recent",
    "Prequential sentiment accuracy over the latest 1,000 rated texts.",
    ["partition"],
)
SEGMENT_INERTIA = Gauge(
    "crm_segments_inertia_recent",
    "Running mean squared distance of learned customers to their nearest k-means centre.",
    ["partition"],
)
MODEL_CHECKPOINT_AGE = Gauge(
    "crm_model_checkpoint_age_seconds",
    "How long the partition's models have held learning that no checkpoint has (what a "
    "crash would lose); 0 while their latest checkpoint is current.",
    ["partition"],
)
MODEL_CHECKPOINT_BYTES = Gauge(
    "crm_model_checkpoint_bytes", "Size of the partition's latest model checkpoint.", ["partition"]
)
MODEL_CHECKPOINT_SECONDS = Histogram(
    "crm_model_checkpoint_seconds",
    "Writing one checkpoint, by phase: pickle (blocks the event loop), compress (a thread).",
    ["phase"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_CHECKPOINT_FAILURES = Counter(
    "crm_model_checkpoint_failures_total", "Checkpoints that could not be written (see the log)."
)
MODEL_RESTORES = Counter(
    "crm_model_restores_total",
    "Partition models set up: restored (from a checkpoint), new (none), unusable (bad one).",
    ["outcome"],
)
MODEL_MESSAGES_UNLEARNED = Counter(
    "crm_model_messages_unlearned_total",
    "Input messages between a restored checkpoint and the restart point after a crash: "
    "their state was kept, their learning lost.",
)
#: Gauges labelled by input partition: dropped when the partition moves to another worker.
PARTITION_GAUGES = (
    CUSTOMERS,
    CHURN_AUC,
    DEMAND_MAE,
    SENTIMENT_ACCURACY,
    SEGMENT_INERTIA,
    MODEL_CHECKPOINT_AGE,
    MODEL_CHECKPOINT_BYTES,
)
# The surge detector runs on the worker that owns the one feedback-signals partition:
# labelled with it, so that only that worker exports them.
SURGE_Z = Gauge(
    "crm_sentiment_surge_z",
    "Surge detector: z statistic of the negative-feedback share, window vs baseline.",
    ["partition"],
)
SURGE_ARMED = Gauge(
    "crm_sentiment_surge_armed",
    "Surge detector: 1 when armed, 0 after a surge until the share is back to normal.",
    ["partition"],
)
ROCKSDB_MEMORY = Gauge(
    "crm_rocksdb_memory_bytes",
    "Memory of the worker's RocksDB table store, all partitions: cached blocks and "
    "memtables, within CRM_ROCKSDB_MEMORY_BYTES (stream.stores).",
)
ROCKSDB_MEMTABLES = Gauge(
    "crm_rocksdb_memtable_bytes",
    "The part of crm_rocksdb_memory_bytes held by memtables (at most half of the budget).",
)
GC_PAUSE = Histogram(
    "crm_gc_pause_seconds",
    "Python's garbage collections by generation (2: full), each a pause of the worker's "
    "loop. With CRM_GC_FREEZE_SURVIVORS, full ones scan only objects newer than the last "
    "(stream.collector).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OUTPUT_BATCH_RECORDS = Histogram(
    "crm_output_batch_records",
    "Records per batch handed to the producer for the state changelog, scores, alerts and "
    "feedback outcomes (stream.sink): more per batch under load, one when idle.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
