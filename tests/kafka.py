"""Test helpers that talk to the embedded broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.settings import Settings
from stream.tail import Stream, records


async def send_all(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def send(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes]]) -> None:
    asyncio.run(send_all(settings, messages))


def collect(
    settings: Settings,
    which: Stream,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Records of a topic from the beginning until ``done(records)`` or the timeout."""

    async def run() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        async for record in records(settings, which, stop=lambda: time.monotonic() > deadline):
            got.append(record)
            if done(got):
                break
        return got

    return asyncio.run(run())


def latest_by_customer(scores: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last score record per customer (one partition per key keeps them in order)."""
    return {record["customer_id"]: record for record in scores}
