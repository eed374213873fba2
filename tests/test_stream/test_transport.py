"""The worker's consumer fetches with the configured wait, not Faust's fixed 1,500 ms,
and does not fetch the partitions Faust is not reading."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from stream.app import build_app
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.topics import create_topics
from stream.transport import Consumer, pause_inactive


@pytest.mark.broker
def test_worker_consumer_fetches_with_the_configured_wait(broker: EmbeddedBroker) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, fetch_max_wait_ms=37)

    async def started_fetch_wait() -> int:
        app = build_app(settings, 2).app
        thread = cast(Consumer, app.consumer)._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(started_fetch_wait()) == 37


@pytest.mark.broker
def test_a_partition_faust_is_not_reading_is_not_fetched(broker: EmbeddedBroker) -> None:
    """aiokafka fetches every assigned partition, and holds what nobody takes: the first
    time, it waits 100 ms before fetching again (docs/benchmarks.md). Paused, the unread
    partition is left alone, and read again once resumed."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    read, unread = TopicPartition("read-or-not", 0), TopicPartition("read-or-not", 1)

    async def highwater_of_unread(pause: bool) -> tuple[int | None, list[bytes]]:
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            consumer.assign([read, unread])
            if pause:  # before the fetcher's first round: nothing awaited since assign()
                pause_inactive(consumer, {read})
            async with asyncio.timeout(30):
                while not (await consumer.getmany(read, timeout_ms=1000)).get(read):
                    pass
            highwater = consumer.highwater(unread)
            pause_inactive(consumer, {read, unread})
            async with asyncio.timeout(30):
                while not (batch := (await consumer.getmany(unread, timeout_ms=1000)).get(unread)):
                    pass
            return highwater, [message.value for message in batch]
        finally:
            await consumer.stop()

    async def run() -> tuple[tuple[int | None, list[bytes]], tuple[int | None, list[bytes]]]:
        await create_topics(settings, NewTopic(read.topic, 2, 1))
        producer = AIOKafkaProducer(**settings.kafka_client_options())
        await producer.start()
        try:
            await producer.send_and_wait(unread.topic, b"unread", partition=unread.partition)
            await producer.send_and_wait(read.topic, b"read", partition=read.partition)
        finally:
            await producer.stop()
        return await highwater_of_unread(pause=False), await highwater_of_unread(pause=True)

    unpaused, paused = asyncio.run(run())
    # Unpaused, aiokafka fetched the unread partition along with the read one.
    assert unpaused == (1, [b"unread"])
    # Paused, it did not; resumed, its record comes.
    assert paused == (None, [b"unread"])
