"""One thin agent per input topic: decode, route, apply, publish.

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from models.features import CustomerState, SourcePosition
from schemas.dead_letter import DeadLetter, RejectReason, b64
from schemas.events import EventType
from schemas.wire import Rejected, decode_event
from stream import metrics
from stream.topics import partition_for

if TYPE_CHECKING:
    from stream.app import ScorerApp

log = logging.getLogger(__name__)


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


class TopicHandler:
    """Handles the messages of one input topic for a built app."""

    def __init__(self, sa: ScorerApp, expected: EventType) -> None:
        self.sa = sa
        self.processor = sa.processor
        self.expected = expected
        self.settings = sa.settings

    def handle(self, message: Any) -> None:
        where = (message.topic, message.partition, message.offset)
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
        try:
            raw = self.sa.customers.get(customer_id)
            before = CustomerState.from_bytes(raw) if raw is not None else None
            result = self.processor.process(before, event, SourcePosition(*where))
        except Exception as exc:  # a bug must not stop the partition: park the message
            log.exception("processing failed at %s[%d]@%d", *where)
            self.dead_letter(message, RejectReason.PROCESSING_ERROR, repr(exc)[:500])
            return
        if result is None:
            metrics.EVENTS.labels(message.topic, "duplicate").inc()
            return
        self.sa.customers[customer_id] = result.state.to_bytes()
        key = customer_id.encode()
        self.sa.topics.scores.send_soon(key=key, value=result.score.model_dump_json().encode())
        for alert in result.alerts:
            self.sa.topics.alerts.send_soon(key=key, value=alert.model_dump_json().encode())
            metrics.ALERTS.labels(alert.kind.value).inc()
        metrics.EVENTS.labels(message.topic, "ok").inc()

    def dead_letter(self, message: Any, code: RejectReason, reason: str) -> None:
        log.warning(
            "dead-lettered %s[%d]@%d (%s): %s",
            message.topic,
            message.partition,
            message.offset,
            code.value,
            reason,
        )
        record = dead_letter_record(
            message, code, reason, self.settings.dead_letter_max_value_bytes
        )
        self.sa.topics.dead_letter.send_soon(
            key=message.key, value=orjson.dumps(record.model_dump(mode="json"))
        )
        metrics.EVENTS.labels(message.topic, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(message.topic, code.value).inc()


def register(sa: ScorerApp) -> None:
    for name, (topic, expected) in sa.topics.inputs.items():
        handler = TopicHandler(sa, expected)  # type: ignore[arg-type]

        async def agent(stream: Any, handler: TopicHandler = handler) -> None:
            async for event in stream.events():
                handler.handle(event.message)

        sa.app.agent(topic, name=f"consume-{name}")(agent)
