"""The record sink (stream.sink) against the embedded broker: order, partitioning,
batching, delivery callbacks, back-pressure, and a delivery that fails."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.sink import BatchSink
from stream.topics import partition_for

TOPIC = "sink-test"
PARTITIONS = 3


async def create_topic(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()


async def read_all(settings: Settings, expected: int) -> dict[int, list[tuple[bytes, bytes]]]:
    consumer = AIOKafkaConsumer(
        TOPIC, **settings.kafka_client_options(), auto_offset_reset="earliest"
    )
    await consumer.start()
    got: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    try:
        async with asyncio.timeout(30):
            while sum(map(len, got.values())) < expected:
                for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                    got[tp.partition] += [(m.key or b"", m.value or b"") for m in messages]
    finally:
        await consumer.stop()
    return got


def test_records_keep_their_order_per_partition_in_few_batches(broker: EmbeddedBroker) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    customers = [f"c{n}" for n in range(40)]
    appended = [(customers[n % 40], str(n).encode()) for n in range(2_000)]
    delivered: dict[int, int] = {}

    failures: list[BaseException] = []

    async def run() -> dict[int, list[tuple[bytes, bytes]]]:
        await create_topic(settings)
        producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all")
        await producer.start()
        sink = BatchSink()
        sink.start(producer, on_failure=failures.append)
        sink.on_delivered(TOPIC, lambda p, offset: delivered.__setitem__(p, offset))
        for n, (customer, value) in enumerate(appended):
            sink.append_keyed(TOPIC, customer, value)
            if n % 100 == 99:  # as the agents do: the loop runs the sink's task between
                await asyncio.sleep(0)
        await sink.flush()
        assert sink.backlog == 0
        await sink.stop()
        await producer.stop()
        return await read_all(settings, len(appended))

    got = asyncio.run(run())
    assert not failures
    expected: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for customer, value in appended:
        expected[partition_for(customer, PARTITIONS)].append((customer.encode(), value))
    assert dict(got) == dict(expected)  # the default partitioner's partition, in order
    assert delivered == {p: len(records) - 1 for p, records in expected.items()}


def test_batches_grow_with_load_and_the_agents_wait_above_the_backlog(
    broker: EmbeddedBroker,
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failures: list[BaseException] = []

    async def run() -> tuple[int, int, int]:
        await create_topic(settings)
        producer = AIOKafkaProducer(**settings.kafka_client_options())
        await producer.start()
        sink = BatchSink(max_backlog=100)
        sink.start(producer, on_failure=failures.append)
        batches: list[int] = []
        sink.on_delivered(TOPIC, lambda p, offset: batches.append(p))
        for n in range(1_000):  # no yield to the loop: one burst, as a busy agent
            sink.append(TOPIC, n % PARTITIONS, None, b"x" * 100)
        backlog = sink.backlog
        await asyncio.wait_for(sink.ebb(), 10)
        after = sink.backlog
        await sink.stop()
        await producer.stop()
        return backlog, after, len(batches)

    backlog, after, batches = asyncio.run(run())
    assert not failures
    assert backlog == 1_000
    assert after <= 100
    # 1,000 records of ~100 bytes in 16-KB batches, 3 partitions: about 9 batches.
    assert batches < 20


def test_a_batch_that_cannot_be_delivered_stops_the_worker() -> None:
    failures: list[BaseException] = []

    async def run(broker: EmbeddedBroker) -> None:
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        await create_topic(settings)
        producer = AIOKafkaProducer(**settings.kafka_client_options(), request_timeout_ms=1_000)
        await producer.start()
        sink = BatchSink()
        sink.start(producer, on_failure=failures.append)
        sink.append(TOPIC, 0, None, b"before")
        await sink.flush()
        broker.stop()
        sink.append(TOPIC, 0, None, b"lost")
        with pytest.raises(RuntimeError, match="could not be delivered"):
            await asyncio.wait_for(sink.flush(), 30)
        with pytest.raises(RuntimeError, match="the worker stops"):
            sink.append(TOPIC, 0, None, b"after")
        await sink.stop()
        await producer.stop()

    with EmbeddedBroker() as broker:
        asyncio.run(run(broker))
    assert len(failures) == 1


def test_a_topic_missing_from_the_producers_metadata_is_looked_up_keeping_order(
    broker: EmbeddedBroker,
) -> None:
    """aiokafka refreshes metadata only for the topics it sent to: a topic first used
    late (the alerts) can be missing when its first record is appended."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failures: list[BaseException] = []
    appended = [(f"c{n % 7}", str(n).encode()) for n in range(300)]

    async def run() -> tuple[bool, dict[int, list[tuple[bytes, bytes]]]]:
        producer = AIOKafkaProducer(**settings.kafka_client_options())
        await producer.start()
        await create_topic(settings)  # after the producer's start: not in its metadata
        missing = not producer.client.cluster.partitions_for_topic(TOPIC)
        sink = BatchSink()
        sink.start(producer, on_failure=failures.append)
        for n, (customer, value) in enumerate(appended):
            sink.append_keyed(TOPIC, customer, value)
            if n == 100:
                await asyncio.sleep(0.5)  # looked up meanwhile: the rest go straight
        await sink.flush()
        await sink.stop()
        await producer.stop()
        return missing, await read_all(settings, len(appended))

    missing, got = asyncio.run(run())
    assert missing and not failures
    expected: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for customer, value in appended:
        expected[partition_for(customer, PARTITIONS)].append((customer.encode(), value))
    assert dict(got) == dict(expected)
