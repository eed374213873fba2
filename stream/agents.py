"""Thin agents: one per input topic (decode, route, apply, publish), one for scan ticks
(re-score the quiet customers of a partition) and one for feedback outcomes (the
sentiment-surge detector, on one partition so that it sees every customer), plus a timer
that moves the event-time clock when input partitions go idle.

Errors at the Kafka edge are logged with topic, partition and offset, and decided
explicitly: bad input and processing failures go to the dead-letter topic and the
agent goes on; nothing is dropped silently.

Everything is published with ``send_soon``: one ordered producer buffer for all agents,
so a customer's scores reach their partition in processing order (awaited ``send`` calls
from three agents can wake out of order under back-pressure), and Faust flushes that
buffer before it commits offsets, which keeps delivery at-least-once.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from models.features import CustomerState, SourcePosition
from models.retention import RetentionModels
from schemas.alerts import RiskAlert
from schemas.dead_letter import DeadLetter, RejectReason, b64
from schemas.events import EventType
from schemas.wire import Rejected, decode_event
from stream import metrics
from stream.clock import RateLimit, Watermark
from stream.processor import Processed, SurgeWatch
from stream.topics import partition_for

if TYPE_CHECKING:
    from stream.app import ScorerApp

log = logging.getLogger(__name__)

#: Seconds between log lines about rate-limited alerts (each line carries the count).
RATE_LIMIT_LOG_INTERVAL_S = 10.0
#: Dead letters logged one by one: this many a second on average, bursts of this many.
DEAD_LETTER_LOG_PER_S = 1.0
#: Seconds between two counts of the customers in state.
CUSTOMER_COUNT_INTERVAL_S = 15.0
DEAD_LETTER_LOG_BURST = 20


def dead_letter_record(
    message: Any, code: RejectReason, reason: str, max_value_bytes: int
) -> DeadLetter:
    value: bytes | None = message.value
    return DeadLetter(
        reason_code=code,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        dead_lettered_at=datetime.now(UTC),
        key_b64=b64(message.key),
        value_b64=b64(value[:max_value_bytes] if value is not None else None),
        value_size=len(value or b""),
        value_truncated=value is not None and len(value) > max_value_bytes,
    )


class Edge:
    """What the agents of one worker share: the clock, the publishing rules and the
    surge detector."""

    def __init__(self, sa: ScorerApp) -> None:
        self.sa = sa
        self.processor = sa.processor
        self.settings = sa.settings
        self.watermark = Watermark(sa.settings.watermark_idle_s)
        self.rate_limit = RateLimit(sa.settings.alert_rate_per_s, sa.settings.alert_burst)
        self.surge = SurgeWatch(sa.settings.surge())
        self.rate_limited = 0
        self.rate_limited_log = RateLimit(1 / RATE_LIMIT_LOG_INTERVAL_S, 1)
        self.dead_letter_log = RateLimit(DEAD_LETTER_LOG_PER_S, DEAD_LETTER_LOG_BURST)
        self.dead_letters_unlogged = 0
        self.customers_counted_at = -math.inf
        #: Last offset read per owned input (topic, partition), for the lag gauge.
        self.read_offsets: dict[tuple[str, int], int] = {}

    def publish(self, out: Processed, received_ts: float | None = None) -> None:
        """Write a customer's new state and publish its score, alerts and feedback outcome
        (``received_ts``: the Kafka timestamp of the message behind it, in seconds)."""
        customer_id = out.state.customer_id
        self.sa.customers[customer_id] = out.state.to_bytes()
        key = customer_id.encode()
        self.sa.topics.scores.send_soon(key=key, value=out.score.model_dump_json().encode())
        for alert in out.alerts:
            if self.publish_alert(key, alert) and received_ts:
                latency = max(time.time() - received_ts, 0.0)
                metrics.EVENT_TO_ALERT.labels(alert.kind.value).observe(latency)
        for kind in out.suppressed:
            metrics.ALERTS_SUPPRESSED.labels(kind.value, "cooldown").inc()
        if out.feedback_negative is not None:
            signal = orjson.dumps({"ts": out.ts_ms, "negative": out.feedback_negative})
            self.sa.topics.feedback_signals.send_soon(key=None, value=signal, partition=0)

    def publish_alert(self, key: bytes, alert: RiskAlert) -> bool:
        """Publish unless the rate limit holds it back (then count it); True if sent."""
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
            return False
        self.sa.topics.alerts.send_soon(key=key, value=alert.model_dump_json().encode())
        metrics.ALERTS.labels(alert.kind.value).inc()
        return True

    def clock_moved(self) -> None:
        """When the clock reached a scan time, tick every scan partition this worker owns
        (the scan must run in that partition's context: its table writes go to the
        partition's changelog)."""
        if self.processor.clock_ms is not None:
            metrics.WATERMARK.set(self.processor.clock_ms / 1000)
        at_ms = self.processor.scan_due()
        if at_ms is None:
            return
        assigned = self.sa.app.assignor.assigned_actives()
        tick = orjson.dumps({"at": at_ms})
        for tp in assigned:
            if tp.topic == self.settings.topic_scan:
                self.sa.topics.scan.send_soon(key=None, value=tick, partition=tp.partition)

    def on_timer(self) -> None:
        """Partitions that went idle stop holding the clock back, also with no new event;
        and the gauges are brought up to date."""
        watermark = self.watermark.current()
        if watermark is not None:
            self.processor.advance(watermark)
            self.clock_moved()
        self.update_gauges()

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
        now = time.monotonic()
        if now - self.customers_counted_at >= CUSTOMER_COUNT_INTERVAL_S:
            # Counting walks the keys on rocksdb: not every second.
            self.customers_counted_at = now
            metrics.CUSTOMERS.set(len(self.sa.customers))
        scorer = self.processor.scorer
        if isinstance(scorer, RetentionModels):
            metrics.CHURN_AUC.set(_or_nan(scorer.churn.recent_auc()))
            metrics.SENTIMENT_ACCURACY.set(_or_nan(scorer.sentiment.recent_accuracy()))
            metrics.SEGMENT_INERTIA.set(scorer.segments.inertia_ewm)
        metrics.SURGE_Z.set(self.surge.detector.z)
        metrics.SURGE_ARMED.set(1.0 if self.surge.detector.armed else 0.0)


class TopicHandler:
    """Handles the messages of one input topic for a built app."""

    def __init__(self, edge: Edge, expected: EventType) -> None:
        self.edge = edge
        self.sa = edge.sa
        self.processor = edge.processor
        self.expected = expected
        self.settings = edge.settings

    def handle(self, message: Any) -> None:
        started = time.perf_counter()
        where = (message.topic, message.partition, message.offset)
        self.edge.read_offsets[(message.topic, message.partition)] = message.offset
        try:
            event = decode_event(
                message.value,
                expected_type=self.expected,
                max_bytes=self.settings.max_message_bytes,
            )
        except Rejected as rej:
            self.dead_letter(message, rej.code, rej.reason)
            return
        customer_id = event.customer_id
        partition = partition_for(customer_id, self.sa.input_partitions)
        if message.partition != partition:
            # Mis-keyed or foreign-partitioned: forward to where this customer's state lives.
            topic, _ = self.sa.topics.inputs[message.topic]
            topic.send_soon(key=customer_id.encode(), value=message.value, partition=partition)
            metrics.EVENTS.labels(message.topic, "rerouted").inc()
            log.info("rerouted %s[%d]@%d to partition %d", *where, partition)
            return
        watermark = self.edge.watermark.observe(where[:2], event.ts_ms)
        try:
            raw = self.sa.customers.get(customer_id)
            before = CustomerState.from_bytes(raw) if raw is not None else None
            result = self.processor.process(before, event, SourcePosition(*where), watermark)
        except Exception as exc:  # a bug must not stop the partition: park the message
            log.exception("processing failed at %s[%d]@%d", *where)
            self.dead_letter(message, RejectReason.PROCESSING_ERROR, repr(exc)[:500])
            return
        if result is None:
            metrics.EVENTS.labels(message.topic, "duplicate").inc()
            return
        self.edge.publish(result, message.timestamp)
        metrics.EVENTS.labels(message.topic, "ok").inc()
        metrics.EVENT_AGE.labels(message.topic).observe(max(time.time() - event.ts_ms / 1000, 0))
        self.edge.clock_moved()
        metrics.PROCESSING.observe(time.perf_counter() - started)

    def dead_letter(self, message: Any, code: RejectReason, reason: str) -> None:
        # A flood of bad input must not flood the log: every one is on the dead-letter
        # topic and counted; the log gets a sample, with how many it left out.
        if self.edge.dead_letter_log.allow():
            unlogged, self.edge.dead_letters_unlogged = self.edge.dead_letters_unlogged, 0
            log.warning(
                "dead-lettered %s[%d]@%d (%s): %s%s",
                message.topic,
                message.partition,
                message.offset,
                code.value,
                reason,
                f" ({unlogged} more dead-lettered since the last line)" if unlogged else "",
            )
        else:
            self.edge.dead_letters_unlogged += 1
        record = dead_letter_record(
            message, code, reason, self.settings.dead_letter_max_value_bytes
        )
        self.sa.topics.dead_letter.send_soon(
            key=message.key, value=orjson.dumps(record.model_dump(mode="json"))
        )
        metrics.EVENTS.labels(message.topic, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(message.topic, code.value).inc()


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def scan_partition(edge: Edge, partition: int, at_ms: int) -> None:
    """Re-score the quiet customers of one partition at event time ``at_ms``."""
    sa = edge.sa
    metrics.SCANS.inc()
    for customer_id in list(sa.customers.keys()):
        if partition_for(customer_id, sa.input_partitions) != partition:
            continue
        try:
            out = edge.processor.rescore(CustomerState.from_bytes(sa.customers[customer_id]), at_ms)
        except Exception:  # one customer's bug must not stop the scan of the others
            log.exception("scan at %d failed for customer %r", at_ms, customer_id)
            continue
        if out is not None:
            edge.publish(out)


def register(sa: ScorerApp) -> Edge:
    edge = Edge(sa)
    for name, (topic, expected) in sa.topics.inputs.items():
        handler = TopicHandler(edge, expected)  # type: ignore[arg-type]

        async def agent(stream: Any, handler: TopicHandler = handler) -> None:
            async for event in stream.events():
                handler.handle(event.message)

        sa.app.agent(topic, name=f"consume-{name}")(agent)

    async def scan(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            at_ms = int(orjson.loads(message.value)["at"])
            scan_partition(edge, message.partition, at_ms)

    async def surge(stream: Any) -> None:
        async for event in stream.events():
            signal = orjson.loads(event.message.value)
            alert = edge.surge.observe(int(signal["ts"]), bool(signal["negative"]))
            if alert is not None:
                edge.publish_alert(alert.kind.value.encode(), alert)

    async def clock() -> None:
        edge.on_timer()

    sa.app.agent(sa.topics.scan, name="scan-quiet-customers")(scan)
    sa.app.agent(sa.topics.feedback_signals, name="detect-sentiment-surge")(surge)
    sa.app.timer(interval=min(1.0, sa.settings.watermark_idle_s / 2))(clock)
    return edge
