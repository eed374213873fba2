"""The record sink (stream.sink) against the embedded broker: order, partitioning,
batching, delivery callbacks, back-pressure, and a delivery that fails."""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.sink import BatchSink
from stream.topics import create_topics, partition_for

TOPIC = "sink-test"
PARTITIONS = 3


SINK_TOPIC = NewTopic(TOPIC, PARTITIONS, 1)


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
        await create_topics(settings, SINK_TOPIC)
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
        await create_topics(settings, SINK_TOPIC)
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
        await create_topics(settings, SINK_TOPIC)
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


def test_a_records_stored_callback_runs_once_the_broker_has_stored_it(
    broker: EmbeddedBroker,
) -> None:
    """The alerts' latency is timed to when the broker has stored them: each record's
    callback runs once, after its batch's delivery, none at append."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failures: list[BaseException] = []
    stored: list[tuple[int, bool]] = []  # (record, its batch's delivery came first)
    seen_at_append: list[tuple[int, bool]] = []

    async def run() -> dict[int, list[tuple[bytes, bytes]]]:
        await create_topics(settings, SINK_TOPIC)
        producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all")
        await producer.start()
        sink = BatchSink(linger_s=0.05)
        sink.start(producer, on_failure=failures.append)
        delivered: dict[int, int] = {}
        sink.on_delivered(TOPIC, delivered.__setitem__)

        def on_stored(n: int, partition: int) -> Callable[[], None]:
            def called() -> None:
                stored.append((n, delivered.get(partition, -1) >= 0))

            return called

        for n in range(300):
            customer = f"c{n % 11}"
            callback = on_stored(n, partition_for(customer, PARTITIONS)) if n % 3 else None
            sink.append_keyed(TOPIC, customer, str(n).encode(), callback)
        seen_at_append.extend(stored)  # nothing handed over yet: the loop has not run
        await sink.flush()
        await sink.stop()
        await producer.stop()
        return await read_all(settings, 300)

    got = asyncio.run(run())
    assert not failures and not seen_at_append
    assert sorted(stored) == [(n, True) for n in range(300) if n % 3]  # each once, after
    assert sum(map(len, got.values())) == 300


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
        await create_topics(settings, SINK_TOPIC)  # after the producer's start: not in its metadata
        missing = not producer.client.cluster.partitions_for_topic(TOPIC)
        sink = BatchSink()
        sink.start(producer, on_failure=failures.append)
        for n, (customer, value) in enumerate(appended):
            # Held while looked up, the records keep their stored callbacks.
            sink.append_keyed(TOPIC, customer, value, functools.partial(stored.append, n))
            if n == 100:
                await asyncio.sleep(0.5)  # looked up meanwhile: the rest go straight
        await sink.flush()
        await sink.stop()
        await producer.stop()
        return missing, await read_all(settings, len(appended))

    stored: list[int] = []
    missing, got = asyncio.run(run())
    assert missing and not failures
    assert sorted(stored) == list(range(len(appended)))
    expected: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for customer, value in appended:
        expected[partition_for(customer, PARTITIONS)].append((customer.encode(), value))
    assert dict(got) == dict(expected)


class RecordingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """The real producer, noting what was stored of the state when each batch of
    outputs is handed over."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.state_stored = 0
        self.handed: dict[int, list[tuple[int, int]]] = defaultdict(list)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if topic.endswith("-out"):
            self.handed[partition].append((batch.record_count(), self.state_stored))
        return await super().send_batch(batch, topic, partition=partition)


def test_outputs_are_handed_over_only_once_the_state_appended_before_them_is_stored(
    broker: EmbeddedBroker,
) -> None:
    """A redelivered event is recognised after a crash only if its state was stored, so
    an alert must never reach the broker before the state that records it."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failures: list[BaseException] = []
    # Per output partition, in order: how many state records were appended before each.
    state_before: dict[int, list[int]] = defaultdict(list)

    async def run(linger_s: float) -> RecordingProducer:
        state_topic, out_topic = f"{TOPIC}-{linger_s}-state", f"{TOPIC}-{linger_s}-out"
        await create_topics(
            settings, NewTopic(out_topic, PARTITIONS, 1), NewTopic(state_topic, 2, 1)
        )
        producer = RecordingProducer(**settings.kafka_client_options(), acks="all")
        await producer.start()
        sink = BatchSink(linger_s=linger_s)
        sink.state_topics.add(state_topic)
        stored: dict[int, int] = {}

        def state_delivered(partition: int, offset: int) -> None:
            stored[partition] = offset + 1
            producer.state_stored = sum(stored.values())

        sink.on_delivered(state_topic, state_delivered)
        sink.start(producer, on_failure=failures.append)
        state_before.clear()
        for n in range(600):  # as an agent: the state, then the score and maybe an alert
            sink.append(state_topic, n % 2, None, b"state")
            for _ in range(1 + (n % 3 == 0)):
                partition = n % PARTITIONS
                sink.append(out_topic, partition, None, b"out")
                state_before[partition].append(n + 1)
            if n % 7 == 0:
                await asyncio.sleep(0)
        await sink.flush()
        await sink.stop()
        await producer.stop()
        return producer

    for linger_s in (0.0, 0.005):
        producer = asyncio.run(run(linger_s))
        assert not failures
        for partition, handed in producer.handed.items():
            records = 0
            for count, state_stored in handed:
                records += count
                # The last record of the batch has the most state before it.
                assert state_before[partition][records - 1] <= state_stored
            assert records == len(state_before[partition])


def test_a_flush_waits_for_what_was_appended_before_it_not_for_what_keeps_coming(
    broker: EmbeddedBroker,
) -> None:
    """Faust flushes before every commit and at a rebalance; under load the sink is
    never empty, so a flush that waited for empty would hold them for as long as the
    load lasts."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failures: list[BaseException] = []

    async def run() -> tuple[int, int, float]:
        await create_topics(settings, SINK_TOPIC)
        # One record a batch (as the tests' workers): the producer cannot keep up.
        producer = AIOKafkaProducer(**settings.kafka_client_options(), max_batch_size=1)
        await producer.start()
        sink = BatchSink(max_backlog=200, linger_s=0.02)
        sink.state_topics.add(TOPIC)
        stored: dict[int, int] = {}
        sink.on_delivered(TOPIC, lambda p, offset: stored.__setitem__(p, offset + 1))
        sink.start(producer, on_failure=failures.append)
        appended = 0
        stop = asyncio.Event()

        async def keep_appending() -> None:
            nonlocal appended
            while not stop.is_set():
                for _ in range(20):
                    sink.append(TOPIC, appended % PARTITIONS, None, b"x")
                    appended += 1
                await asyncio.sleep(0.001)
                await sink.ebb()  # as the agents do

        load = asyncio.create_task(keep_appending())
        await asyncio.sleep(0.5)
        before = appended
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(sink.flush(), 10)
        took = asyncio.get_running_loop().time() - started
        at_flush = sum(stored.values())
        stop.set()
        await load
        await sink.stop()
        await producer.stop()
        return before, at_flush, took

    before, at_flush, took = asyncio.run(run())
    assert not failures
    assert at_flush >= before  # all that came before it was stored
    assert took < 2, took
