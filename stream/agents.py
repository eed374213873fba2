"""A handler per input topic (decode, route, apply, publish), called on each message
where the consumer fetches it (:meth:`stream.transport.Conductor.handle`: no stream in
between), and one the same way for feedback outcomes (the sentiment-surge detector, on
one partition so that it sees every customer); a thin agent for scan ticks (re-score
the quiet customers of a partition), a timer that moves the event-time clock when input
partitions go idle and writes the models' checkpoints, and the rebalance and shutdown
hooks that write and forget them.

Errors at the Kafka edge are logged with topic, partition and offset, and decided
explicitly: bad input and processing failures go to the dead-letter topic and the
handler goes on; a failure outside that (the state store, publishing) stops the worker,
and the message is read again; nothing is dropped silently.

A customer's state (the table's changelog), scores, alerts and feedback outcomes go
through one record sink (:mod:`stream.sink`): appended in processing order to a batch
per topic partition, without waiting (awaited sends from three topics' handlers could
wake out of order under back-pressure), and all delivered before Faust commits offsets,
which keeps delivery at-least-once. The rare records (dead letters, re-routed events,
scan ticks, checkpoints) keep Faust's ``send_soon``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import orjson

from models.checkpoint import CheckpointError, ModelCheckpoint
from models.features import CustomerState, SourcePosition, may_be_rescored
from models.retention import RetentionModels
from models.surge import SentimentSurge
from schemas.alerts import RiskAlert
from schemas.dead_letter import DeadLetter, RejectReason, b64
from schemas.events import ID_MAX_CHARS, EventType
from schemas.wire import Rejected, decode_event
from stream import metrics, transport
from stream.app import partition_items
from stream.checkpoints import CheckpointStore
from stream.clock import RateLimit, Watermark
from stream.partitions import PartitionModels
from stream.processor import EventProcessor, Processed, SurgeWatch
from stream.tables import CustomerTable
from stream.topics import partition_for
from stream.transport import Record
from stream.web import is_ready

if TYPE_CHECKING:
    from stream.app import ScorerApp

log = logging.getLogger(__name__)

#: Seconds between log lines about rate-limited alerts (each line carries the count).
RATE_LIMIT_LOG_INTERVAL_S = 10.0
#: Dead letters logged one by one: this many a second on average, bursts of this many.
DEAD_LETTER_LOG_PER_S = 1.0
DEAD_LETTER_LOG_BURST = 20
#: Customers a scan re-scores between yields to the event loop: a few hundred ms of work.
SCAN_SLICE = 500
#: Period of the event-loop delay probe (crm_event_loop_delay_seconds).
LOOP_PROBE_S = 0.25


def dead_letter_record(
    record: Record, code: RejectReason, reason: str, max_value_bytes: int
) -> DeadLetter:
    value: bytes | None = record.value
    return DeadLetter(
        reason_code=code,
        reason=reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp if record.timestamp and record.timestamp > 0 else None,
        dead_lettered_at=datetime.now(UTC),
        key_b64=b64(record.key),
        value_b64=b64(value[:max_value_bytes] if value is not None else None),
        value_size=len(value or b""),
        value_truncated=value is not None and len(value) > max_value_bytes,
    )


def alert_stored(alert: RiskAlert, received_ms: int) -> Callable[[], None]:
    """What observes an alert's latency, from the Kafka timestamp of the event behind it
    to when the broker has stored the alert (what a subscriber can read)."""
    latency = metrics.EVENT_TO_ALERT.labels(alert.kind.value)

    def stored() -> None:
        latency.observe(max(time.time() - received_ms / 1000, 0.0))

    return stored


def changelog_writer(table: Any) -> Callable[[str, bytes, int], object]:
    """Records straight to a table's changelog: checkpoint tables are read only at a
    restore (after recovery), and a write through the table would need an event's context
    (shutdown and rebalance have none)."""

    def write(key: str, value: bytes, partition: int) -> object:
        return table.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            key_serializer="json",
            value_serializer="raw",
        )

    return write


class Edge:
    """What the agents of one worker share: the clock, the models of each owned partition,
    the publishing rules and the surge detector."""

    def __init__(self, sa: ScorerApp) -> None:
        self.sa = sa
        self.settings = settings = sa.settings
        self.sink = cast(transport.Producer, sa.app.producer).batches
        self.customers = CustomerTable(sa.customers, self.sink)
        self.scores_topic = sa.topics.scores.get_topic_name()
        self.alerts_topic = sa.topics.alerts.get_topic_name()
        self.feedback_signals_topic = sa.topics.feedback_signals.get_topic_name()
        self.watermark = Watermark(settings.watermark_idle_s)
        self.models = PartitionModels(
            sa.new_processor,
            CheckpointStore(
                sa.model_checkpoints.get,
                changelog_writer(sa.model_checkpoints),
                settings.checkpoint_chunk_bytes,
            ),
            settings.models(),
            settings.checkpoint_interval_s,
        )
        self.surge_store = CheckpointStore(
            sa.surge_checkpoints.get,
            changelog_writer(sa.surge_checkpoints),
            settings.checkpoint_chunk_bytes,
        )
        self.checkpoint_lock = asyncio.Lock()
        #: The surge detector, once this worker owns the feedback-signals partition.
        self.surge: SurgeWatch | None = None
        self.surge_offset: int | None = None
        #: Signals up to this offset are in the restored detector: a redelivery skips them.
        self.surge_restored_offset = -1
        self.surge_saved_at = -math.inf
        self.rate_limit = RateLimit(settings.alert_rate_per_s, settings.alert_burst)
        self.rate_limited = 0
        self.rate_limited_log = RateLimit(1 / RATE_LIMIT_LOG_INTERVAL_S, 1)
        self.dead_letter_log = RateLimit(DEAD_LETTER_LOG_PER_S, DEAD_LETTER_LOG_BURST)
        self.dead_letters_unlogged = 0
        #: Customers in state per owned input partition: counted once after each
        #: rebalance (a walk of the table), then kept by the events that add a customer
        #: and the tombstones that forget one. ``None``: to be counted.
        self.customer_counts: Counter[int] | None = None
        #: Last offset read per owned input (topic, partition): lag, and checkpoint offsets.
        self.read_offsets: dict[tuple[str, int], int] = {}
        self.loop_probed_at: float | None = None

    def owned(self) -> set[int]:
        """The input partitions this worker owns (every input topic is co-partitioned)."""
        return {
            tp.partition
            for tp in self.sa.app.assignor.assigned_actives()
            if tp.topic == self.settings.topic_purchases
        }

    def offsets(self, partition: int) -> dict[str, int]:
        return {t: o for (t, p), o in self.read_offsets.items() if p == partition}

    async def checkpoint(self, partitions: Iterable[int]) -> None:
        """Checkpoint these partitions' models (those that learned since their last one),
        one save at a time. A failure is logged and counted, not raised: state stays
        exact without it, and the partition is tried again at the next interval."""
        async with self.checkpoint_lock:
            for partition in sorted(set(partitions) & self.models.dirty):
                if partition not in self.models.processors:
                    continue
                try:
                    await self.models.save(partition, self.offsets(partition))
                except Exception:
                    self.models.mark_dirty(partition)
                    metrics.MODEL_CHECKPOINT_FAILURES.inc()
                    log.exception("checkpoint of partition %d's models failed", partition)

    def surge_watch(self) -> SurgeWatch:
        if self.surge is None:
            fresh = self.settings.surge()
            detector: SentimentSurge | None = None
            try:
                checkpoint = self.surge_store.load(0)
                if checkpoint is not None:
                    detector = checkpoint.restore(SentimentSurge, SentimentSurge.VERSION)
                    if not detector.adopt(fresh):
                        raise CheckpointError("its windows differ from the settings")
                    log.info("surge detector restored (offsets %s)", checkpoint.info.offsets)
                    self.surge_restored_offset = checkpoint.info.offsets.get(
                        self.settings.topic_feedback_signals, -1
                    )
            except CheckpointError as exc:
                detector = None
                log.error("surge detector checkpoint not restored, starting anew: %s", exc)
            self.surge = SurgeWatch(detector or fresh)
        return self.surge

    def observe_feedback(self, record: Record) -> None:
        """Feed one feedback outcome (``publish``'s signal) to the surge detector, and
        publish its alert if it has one. Handled where it is fetched, as the input is:
        through a Faust agent's stream each outcome cost about 50 us
        (docs/benchmarks.md). One it cannot read is dead-lettered."""
        watch = self.surge_watch()
        if record.offset <= self.surge_restored_offset:
            return  # counted before the restart: its checkpoint has it
        self.surge_offset = record.offset
        try:
            signal = orjson.loads(record.value or b"")
            ts_ms, negative = int(signal["ts"]), bool(signal["negative"])
        except (LookupError, TypeError, ValueError) as exc:
            # Not the worker's: a crash would read it again at each restart.
            self.dead_letter(record, RejectReason.INVALID, f"not a feedback outcome: {exc!r}")
            return
        alert = watch.observe(ts_ms, negative)
        if alert is not None:
            self.publish_alert(alert.kind.value, alert)

    def dead_letter(self, record: Record, code: RejectReason, reason: str) -> None:
        """Park a record on the dead-letter topic with the reason, count it, and go on."""
        # A flood of bad input must not flood the log: every one is on the dead-letter
        # topic and counted; the log gets a sample, with how many it left out.
        if self.dead_letter_log.allow():
            unlogged, self.dead_letters_unlogged = self.dead_letters_unlogged, 0
            log.warning(
                "dead-lettered %s[%d]@%d (%s): %s%s",
                record.topic,
                record.partition,
                record.offset,
                code.value,
                reason,
                f" ({unlogged} more dead-lettered since the last line)" if unlogged else "",
            )
        else:
            self.dead_letters_unlogged += 1
        letter = dead_letter_record(record, code, reason, self.settings.dead_letter_max_value_bytes)
        self.sa.topics.dead_letter.send_soon(
            key=record.key, value=orjson.dumps(letter.model_dump(mode="json"))
        )
        metrics.EVENTS.labels(record.topic, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(record.topic, code.value).inc()

    def checkpoint_surge(self) -> None:
        if self.surge is None or self.surge_offset is None:
            return
        try:
            self.surge_store.save(
                ModelCheckpoint.capture(
                    self.surge.detector,
                    SentimentSurge.VERSION,
                    partition=0,
                    offsets={self.settings.topic_feedback_signals: self.surge_offset},
                    clock_ms=self.surge.detector.now_ms,
                    next_scan_ms=None,
                    written_at_ms=int(time.time() * 1000),
                )
            )
            self.surge_offset = None  # nothing new since
            self.surge_saved_at = time.monotonic()
        except Exception:
            metrics.MODEL_CHECKPOINT_FAILURES.inc()
            log.exception("checkpoint of the surge detector failed")

    def rebalanced(self, assigned: Iterable[Any]) -> None:
        """After a rebalance: forget what moved elsewhere, and its gauges."""
        assigned = list(assigned)
        self.customer_counts = None  # recounted once recovered: partitions came or went
        inputs = {tp.partition for tp in assigned if tp.topic == self.settings.topic_purchases}
        for partition in self.models.keep_only(inputs):
            for gauge in metrics.PARTITION_GAUGES:
                with contextlib.suppress(KeyError):
                    gauge.remove(str(partition))
        for topic, partition in list(self.read_offsets):
            if partition not in inputs:
                del self.read_offsets[(topic, partition)]
                with contextlib.suppress(KeyError):
                    metrics.CONSUMER_LAG.remove(topic, str(partition))
        if not any(tp.topic == self.settings.topic_feedback_signals for tp in assigned):
            self.surge = self.surge_offset = None
            self.surge_restored_offset = -1
            for gauge in (metrics.SURGE_Z, metrics.SURGE_ARMED):
                with contextlib.suppress(KeyError):
                    gauge.remove("0")

    def counted_customers(self) -> Counter[int] | None:
        """Customers per partition; the first call after a rebalance walks the table
        (on rocksdb: from disk), once recovered (``None`` before)."""
        if self.customer_counts is None and is_ready(self.sa):
            self.customer_counts = Counter(
                partition_for(customer_id, self.sa.input_partitions)
                for customer_id in self.sa.customers
            )
        return self.customer_counts

    def customer_added(self, partition: int, change: int = 1) -> None:
        if self.customer_counts is not None:
            self.customer_counts[partition] += change

    def publish(self, out: Processed, partition: int, received_ms: int | None = None) -> None:
        """Write a customer's new state (``partition``: theirs) and publish its score,
        alerts and feedback outcome (``received_ms``: the Kafka timestamp of the record
        behind it, in ms; none or negative when it has none)."""
        customer_id = out.state.customer_id
        self.customers.set(customer_id, partition, out.state.to_bytes())
        self.sink.append_keyed(self.scores_topic, customer_id, out.score_json)
        for alert in out.alerts:
            self.publish_alert(customer_id, alert, received_ms)
        for kind in out.suppressed:
            metrics.ALERTS_SUPPRESSED.labels(kind.value, "cooldown").inc()
        if out.feedback_negative is not None:
            signal = orjson.dumps({"ts": out.ts_ms, "negative": out.feedback_negative})
            self.sink.append(self.feedback_signals_topic, 0, None, signal)

    def publish_alert(self, key: str, alert: RiskAlert, received_ms: int | None = None) -> None:
        """Publish unless the rate limit holds it back (then count it). ``received_ms``:
        the Kafka timestamp of the event behind it, which the alert's latency is timed
        from, to when the broker has stored the alert."""
        if not self.rate_limit.allow():
            metrics.ALERTS_SUPPRESSED.labels(alert.kind.value, "rate_limit").inc()
            self.rate_limited += 1
            if self.rate_limited_log.allow():
                log.warning(
                    "alert rate limit (%.0f/s): %d alerts held back so far, latest %s %s",
                    self.settings.alert_rate_per_s,
                    self.rate_limited,
                    alert.kind.value,
                    alert.alert_id,
                )
            return
        stored = None if not received_ms or received_ms <= 0 else alert_stored(alert, received_ms)
        self.sink.append_keyed(self.alerts_topic, key, alert.model_dump_json().encode(), stored)
        metrics.ALERTS.labels(alert.kind.value).inc()

    def clock_moved(self, partition: int) -> None:
        """When the partition's clock reached a scan time, tick its scan partition (the
        scan must run in that partition's context: its table writes go to the partition's
        changelog). The scan topic is co-partitioned with the input: same owner."""
        at_ms = self.models.processors[partition].scan_due()
        if at_ms is not None:
            tick = orjson.dumps({"at": at_ms})
            self.sa.topics.scan.send_soon(key=None, value=tick, partition=partition)

    async def on_timer(self) -> None:
        """Once recovered, every owned partition has its models; idle input partitions
        stop holding the clock back, also with no new event; a checkpoint is written if
        one is due; and the gauges are brought up to date."""
        if is_ready(self.sa):
            for partition in self.owned():
                self.models.get(partition)
        watermark = self.watermark.current()
        if watermark is not None:
            metrics.WATERMARK.set(watermark / 1000)
            for partition in list(self.models.processors):
                processor = self.models.processors.get(partition)
                if processor is None:
                    continue  # revoked while the loop ran the others
                before = processor.clock_ms
                processor.advance(watermark)
                if processor.clock_ms != before:
                    self.models.mark_dirty(partition)
                self.clock_moved(partition)
                # A model tick walks the partition's customers: one partition's walk at
                # a time, so heartbeats, events and the web views get in between.
                await asyncio.sleep(0)
        self.update_gauges()
        if time.monotonic() - self.surge_saved_at >= self.settings.checkpoint_interval_s:
            self.checkpoint_surge()
        due = self.models.checkpoint_due()
        if due is not None:
            await self.checkpoint([due])

    def probe_loop(self) -> None:
        """Called every :data:`LOOP_PROBE_S`: how much later than that it came."""
        now = time.monotonic()
        if self.loop_probed_at is not None:
            metrics.LOOP_DELAY.observe(max(now - self.loop_probed_at - LOOP_PROBE_S, 0.0))
        self.loop_probed_at = now

    def update_gauges(self) -> None:
        consumer = self.sa.app.consumer
        inputs = set(self.settings.input_topics)
        for tp in self.sa.app.assignor.assigned_actives():
            if tp.topic not in inputs:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            read = self.read_offsets.get((tp.topic, tp.partition))
            lag = highwater - (read + 1 if read is not None else 0)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(lag, 0))
        counts = self.counted_customers()
        if counts is not None:
            # Only owned partitions: the store also holds standby copies of others'.
            for partition in self.owned():
                metrics.CUSTOMERS.labels(str(partition)).set(counts[partition])
        wall_ms = int(time.time() * 1000)
        for partition, processor in self.models.processors.items():
            label = str(partition)
            metrics.MODEL_CHECKPOINT_AGE.labels(label).set(
                self.models.unsaved_s(partition, wall_ms)
            )
            scorer = processor.scorer
            if isinstance(scorer, RetentionModels):
                metrics.CHURN_AUC.labels(label).set(_or_nan(scorer.churn.recent_auc()))
                metrics.DEMAND_MAE.labels(label).set(_or_nan(scorer.demand.recent_mae()))
                metrics.SENTIMENT_ACCURACY.labels(label).set(
                    _or_nan(scorer.sentiment.recent_accuracy())
                )
                metrics.SEGMENT_INERTIA.labels(label).set(scorer.segments.inertia_ewm)
        if self.surge is not None:
            metrics.SURGE_Z.labels("0").set(self.surge.detector.z)
            metrics.SURGE_ARMED.labels("0").set(1.0 if self.surge.detector.armed else 0.0)


class TopicHandler:
    """Handles the messages of one input topic for a built app."""

    def __init__(self, edge: Edge, topic: str, expected: EventType) -> None:
        self.edge = edge
        self.sa = edge.sa
        self.expected = expected
        self.settings = edge.settings
        # Bound once: labels() per event took 3% of the worker's samples.
        self.applied = metrics.EVENTS.labels(topic, "ok")
        self.age = metrics.EVENT_AGE.labels(topic)

    def handle(self, record: Record) -> None:
        started = time.perf_counter()
        where = (record.topic, record.partition, record.offset)
        self.edge.read_offsets[(record.topic, record.partition)] = record.offset
        models = self.edge.models
        # Restore the partition's models (if not yet) before counting against their
        # checkpoint: restored after this read, the next one would look like a gap.
        models.get(record.partition)
        if models.resume_after:
            models.first_read(*where)
        # Every record read moves the offsets a checkpoint must state (also a duplicate
        # or a dead letter): otherwise a new owner would count them as unlearned.
        models.mark_dirty(record.partition)
        if record.value is None:  # a Kafka tombstone: forget the customer of its key
            self.forget(record)
            return
        try:
            event = decode_event(
                record.value,
                expected_type=self.expected,
                max_bytes=self.settings.max_message_bytes,
            )
        except Rejected as rej:
            self.edge.dead_letter(record, rej.code, rej.reason)
            return
        customer_id = event.customer_id
        partition = self.owner_partition(record, customer_id)
        if partition is None:
            return
        watermark = self.edge.watermark.observe(where[:2], event.ts_ms)
        try:
            raw = self.edge.customers.get(customer_id, partition)
            before = CustomerState.from_bytes(raw) if raw is not None else None
            processor = models.get(partition)
            result = processor.process(before, event, SourcePosition(*where), watermark)
        except Exception as exc:  # a bug must not stop the partition: park the record
            log.exception("processing failed at %s[%d]@%d", *where)
            self.edge.dead_letter(record, RejectReason.PROCESSING_ERROR, repr(exc)[:500])
            return
        if result is None:
            metrics.EVENTS.labels(record.topic, "duplicate").inc()
            return
        self.edge.publish(result, partition, record.timestamp)
        if raw is None:
            self.edge.customer_added(partition)
        self.applied.inc()
        self.age.observe(max(time.time() - event.ts_ms / 1000, 0))
        self.edge.clock_moved(partition)
        metrics.PROCESSING.observe(time.perf_counter() - started)

    def owner_partition(self, record: Record, customer_id: str) -> int | None:
        """The customer's partition; ``None`` when the record is on another one
        (mis-keyed, another partitioner): then it is forwarded, once, to where the
        customer's state lives."""
        partition = partition_for(customer_id, self.sa.input_partitions)
        if record.partition == partition:
            return partition
        topic, _ = self.sa.topics.inputs[record.topic]
        topic.send_soon(key=customer_id.encode(), value=record.value, partition=partition)
        metrics.EVENTS.labels(record.topic, "rerouted").inc()
        log.info(
            "rerouted %s[%d]@%d to partition %d",
            record.topic,
            record.partition,
            record.offset,
            partition,
        )
        return None

    def forget(self, record: Record) -> None:
        """Remove everything kept about the customer named by the tombstone's key: state
        (a changelog tombstone), latest score (a tombstone on the compacted scores topic)
        and the churn model's pending snapshots. docs/personal-data.md has the rest."""
        key: bytes | None = record.key
        try:
            customer_id = key.decode() if key else ""
        except UnicodeDecodeError:
            customer_id = ""
        if not 0 < len(customer_id) <= ID_MAX_CHARS:
            self.edge.dead_letter(
                record,
                RejectReason.INVALID,
                "a tombstone (forget a customer) needs the customer id as its key",
            )
            return
        partition = self.owner_partition(record, customer_id)
        if partition is None:
            return
        scorer = self.edge.models.get(partition).scorer
        if isinstance(scorer, RetentionModels):
            scorer.forget(customer_id)
        if self.edge.customers.get(customer_id, partition) is not None:
            self.edge.customers.delete(customer_id, partition)
            self.edge.customer_added(partition, -1)
        self.edge.sink.append_keyed(self.edge.scores_topic, customer_id, None)
        metrics.CUSTOMERS_FORGOTTEN.inc()
        metrics.EVENTS.labels(record.topic, "forgotten").inc()
        # The position, not the id: the log should not become a list of who asked.
        log.info("forgot a customer at %s[%d]@%d", record.topic, record.partition, record.offset)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


async def scan_partition(edge: Edge, partition: int, at_ms: int) -> None:
    """Re-score the quiet customers of one partition at event time ``at_ms``, a slice at a
    time: a partition's scan can take seconds, and the loop must not stall that long."""
    metrics.SCANS.inc()
    processor = edge.models.get(partition)
    table = edge.sa.customers
    # Ids listed first: publishing writes to the table being walked. Only the customers a
    # rescore may publish for: the others, decoded, were most of a scan's time.
    ids = [
        customer_id
        for customer_id, _ in partition_items(
            table, partition, edge.sa.input_partitions, may_be_rescored
        )
    ]
    for start in range(0, len(ids), SCAN_SLICE):
        if start:
            await asyncio.sleep(0)
            await edge.sink.ebb()
            if partition not in edge.owned():
                return  # moved to another worker: the rest wait for its next scan
        slice_ids = ids[start : start + SCAN_SLICE]
        edge.customers.read_ahead_customers(partition, slice_ids)
        try:
            rescore_slice(edge, processor, partition, slice_ids, at_ms)
        finally:  # before the loop runs another task
            stored = await transport.store_held(
                edge.sa.app,
                edge.customers,
                f"{len(slice_ids)} customers re-scored by the scan of partition {partition} "
                f"at {at_ms}",
                [partition],
            )
        if not stored:
            return


def rescore_slice(
    edge: Edge, processor: EventProcessor, partition: int, customer_ids: list[str], at_ms: int
) -> None:
    """Re-score these customers of one partition, publishing what changed."""
    for customer_id in customer_ids:
        # Read now, not listed: an event may have changed the customer meanwhile.
        raw = edge.customers.get(customer_id, partition)
        if raw is None:
            continue  # forgotten meanwhile
        try:
            out = processor.rescore(CustomerState.from_bytes(raw), at_ms)
        except Exception:  # one customer's bug must not stop the scan of the others
            log.exception("scan at %d failed for customer %r", at_ms, customer_id)
            continue
        if out is not None:
            edge.publish(out, partition)


def register(sa: ScorerApp) -> Edge:
    edge = Edge(sa)
    metrics.WORKER.info(
        {
            "app_id": sa.settings.app_id,
            "worker": f"{socket.gethostname()}:{sa.settings.web_port}",
            # What runs the loops (uvloop, or Python's asyncio), as opposed to what was asked.
            "event_loop": type(asyncio.get_event_loop_policy()).__module__.split(".")[0],
        }
    )
    conductor = cast(transport.Conductor, sa.app.topics)
    for name, (topic, expected) in sa.topics.inputs.items():
        handler = TopicHandler(edge, name, expected)  # type: ignore[arg-type]
        conductor.handle(topic, handler.handle, edge.sink, edge.customers)
    conductor.handle(sa.topics.feedback_signals, edge.observe_feedback, edge.sink)

    async def scan(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            at_ms = int(orjson.loads(message.value)["at"])
            await scan_partition(edge, message.partition, at_ms)

    async def clock() -> None:
        await edge.on_timer()

    async def loop_probe() -> None:
        edge.probe_loop()

    app = sa.app

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def checkpoint_revoked(sender: Any, *args: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        # Whoever gets these partitions next restores their models from the checkpoint:
        # write it now, with all they learned, and flush before the group moves on.
        await edge.checkpoint(
            tp.partition for tp in revoked if tp.topic == sa.settings.topic_purchases
        )
        if any(tp.topic == sa.settings.topic_feedback_signals for tp in revoked):
            edge.checkpoint_surge()
        await app.producer.flush()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def forget_moved(sender: Any, *args: Any, **_: Any) -> None:
        edge.rebalanced(args[0])

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def checkpoint_at_shutdown(sender: Any, *args: Any, **_: Any) -> None:
        # Consumption has stopped; Faust flushes the producer after this.
        await edge.checkpoint(list(edge.models.processors))
        edge.checkpoint_surge()

    sa.app.agent(sa.topics.scan, name="scan-quiet-customers")(scan)
    sa.app.timer(interval=min(1.0, sa.settings.watermark_idle_s / 2))(clock)
    sa.app.timer(interval=LOOP_PROBE_S)(loop_probe)
    return edge
