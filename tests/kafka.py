"""Test helpers that talk to the embedded broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

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


def send_with_offset_gaps(
    settings: Settings, topic: str, partition: int, records: list[tuple[int, bytes, bytes]]
) -> None:
    """(offset, key, value) records as one batch of the given offsets, which may skip
    some: the gaps that compaction and transactional producers' commit markers leave in
    Apache Kafka. A producer numbers its records 0, 1, 2..., so the batch is built and
    sent here; the embedded broker stores it as it is (from offset 0 on a new topic)."""

    async def produce() -> None:
        batch = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=0,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 20,
        )
        now_ms = int(time.time() * 1000)
        for offset, key, value in records:
            batch.append(offset, timestamp=now_ms, key=key, value=value, headers=[])
        client = AIOKafkaClient(**settings.kafka_client_options())
        await client.bootstrap()
        try:
            await client.force_metadata_update()
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            data = bytes(batch.build())
            request = ProduceRequest(None, -1, 30_000, [(topic, [(partition, data)])])
            response = await client.send(leader, request)
            (_, ((_, error, *_),)), *_ = response.topics
            assert error == 0, f"produce failed: error code {error}"
        finally:
            await client.close()

    asyncio.run(produce())


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


def group_offsets(settings: Settings) -> dict[str, int | None]:
    """The worker group's committed input offsets, read without joining the group (the
    admin client's OffsetFetch is one Tansu answers in a version aiokafka cannot read)."""

    async def read() -> dict[str, int | None]:
        tps = [
            TopicPartition(topic, p)
            for topic in settings.input_topics
            for p in range(settings.topic_partitions)
        ]
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(), group_id=settings.app_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            return {f"{tp.topic}/{tp.partition}": await consumer.committed(tp) for tp in tps}
        finally:
            await consumer.stop()

    return asyncio.run(read())
