"""Send events to their input topics, keyed by customer, optionally paced by event time
(``crm-scorer produce``; the demo uses it too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream.settings import Settings


@dataclass
class ProduceReport:
    sent: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    unroutable: list[int] = field(default_factory=list)  # 1-based line numbers


def route(line: bytes, topics: dict[str, str]) -> tuple[str, bytes, int | None] | None:
    """(topic, key, event time ms) for one JSONL line, or ``None`` if it names no known type.

    Only what routing needs is read; validation is the worker's job, so a routable but
    invalid event is still sent and ends up on the dead-letter topic with its reason.
    """
    try:
        obj: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    topic = topics.get(obj.get("type"))  # type: ignore[arg-type]
    customer = obj.get("customer_id")
    if topic is None or not isinstance(customer, str):
        return None
    ts = obj.get("ts")
    return topic, customer.encode(), ts if isinstance(ts, int) else None


async def produce_lines(
    settings: Settings,
    lines: Iterable[bytes],
    *,
    speed: float | None = None,
    on_sent: Callable[[ProduceReport], None] | None = None,
) -> ProduceReport:
    """Send every routable line. With ``speed``, event time runs ``speed`` x wall time."""
    topics: dict[str, str] = {kind: name for name, kind in settings.input_topics.items()}
    producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all", linger_ms=5)
    report = ProduceReport()
    await producer.start()
    try:
        first_ts: int | None = None
        started = time.monotonic()
        for number, line in enumerate(lines, start=1):
            routed = route(line, topics)
            if routed is None:
                report.unroutable.append(number)
                continue
            topic, key, ts = routed
            if speed and ts is not None:
                first_ts = ts if first_ts is None else first_ts
                ahead = (ts - first_ts) / 1000 / speed - (time.monotonic() - started)
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
            await producer.send(topic, value=line, key=key)
            report.sent += 1
            report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
            if on_sent is not None:
                on_sent(report)
        await producer.flush()
    finally:
        await producer.stop()
    return report


async def send_forget(settings: Settings, customer_ids: Iterable[str]) -> int:
    """Ask the workers to forget customers: a tombstone (null value) keyed by each id on
    the purchases topic (any input topic would do: they are co-partitioned)."""
    producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all")
    await producer.start()
    sent = 0
    try:
        for customer_id in customer_ids:
            await producer.send(settings.topic_purchases, value=None, key=customer_id.encode())
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
