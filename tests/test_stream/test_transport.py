"""The worker's consumer fetches with the configured wait, not Faust's fixed 1,500 ms."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from stream.app import build_app
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.transport import Consumer


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
