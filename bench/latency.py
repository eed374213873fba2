"""Event-to-score and event-to-alert latency of the worker at a fixed input rate, on the
embedded broker: events are produced live (event time = now), paced at ``--rate``;
latency is the output record's Kafka timestamp minus the input record's, and the time a
consumer reading the outputs live receives it minus the same (which includes how long
the record waited in the producer after it was stamped, and the consumer's own fetch).

    python -m bench.latency --rate 1000 [--seconds 60] [--customers 50000]

`python -m bench` runs it at half the throughput measured by bench.throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.workload import mixed_events
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.workerproc import WorkerProcess, worker_env


@dataclass(frozen=True)
class Latency:
    rate: float
    sent: int
    scores_ms: list[float]
    alerts_ms: list[float]
    #: The same, as a consumer reading live received them.
    scores_seen_ms: list[float]
    alerts_seen_ms: list[float]

    @staticmethod
    def _p(values: list[float], q: int) -> str:
        if len(values) < 2:
            return "-"
        return f"{statistics.quantiles(values, n=100, method='inclusive')[q - 1]:,.0f} ms"

    def table(self) -> str:
        rows = ["| output | records | p50 | p99 |", "| --- | ---: | ---: | ---: |"]
        for name, values in (
            ("event to score (record timestamp)", self.scores_ms),
            ("event to alert (record timestamp)", self.alerts_ms),
            ("event to score, received by a consumer", self.scores_seen_ms),
            ("event to alert, received by a consumer", self.alerts_seen_ms),
        ):
            rows.append(
                f"| {name} | {len(values):,} | {self._p(values, 50)} | {self._p(values, 99)} |"
            )
        return "\n".join(rows)


async def paced(settings: Settings, events: list[dict[str, Any]], rate: float) -> dict[str, int]:
    """Send at ``rate`` events/s with event time = now; the send time per event id."""
    topics: dict[str, str] = {kind: name for name, kind in settings.input_topics.items()}
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=1)
    sent_at: dict[str, int] = {}
    await producer.start()
    started = time.monotonic()
    try:
        for n, event in enumerate(events):
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            now_ms = int(time.time() * 1000)
            event = {**event, "ts": now_ms}
            sent_at[str(event["event_id"])] = now_ms
            await producer.send(
                topics[str(event["type"])],
                orjson.dumps(event),
                key=str(event["customer_id"]).encode(),
                timestamp_ms=now_ms,
            )
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at


async def live(
    settings: Settings, events: list[dict[str, Any]], rate: float, timeout_s: float
) -> tuple[dict[str, int], list[tuple[Any, float]]]:
    """Send the events paced while a consumer reads the scores and alerts live, until
    every event has its score (scans publish scores of their own, with no event id):
    the send times, and each output record with the time it was received (ms)."""
    consumer = AIOKafkaConsumer(
        settings.topic_scores,
        settings.topic_alerts,
        **settings.kafka_client_options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,  # the embedded broker holds a fetch this long when idle
    )
    await consumer.start()
    got: list[tuple[Any, float]] = []
    missing = {str(event["event_id"]) for event in events}

    async def read() -> None:
        deadline = time.monotonic() + timeout_s
        while missing and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                received_ms = time.time() * 1000
                for message in messages:
                    got.append((message, received_ms))
                    if message.topic == settings.topic_scores:
                        missing.discard(orjson.loads(message.value).get("event_id"))

    reader = asyncio.create_task(read())
    try:
        sent_at = await paced(settings, events, rate)
        await reader
    finally:
        reader.cancel()  # when sending failed: the reader must not outlive its consumer
        await consumer.stop()
    return sent_at, got


def measure(rate: float, seconds: float, customers: int) -> Latency:
    events = mixed_events(int(rate * seconds), customers=customers, seed=11)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        env = worker_env(
            broker.bootstrap,
            Path(tmp) / "w1",
            CRM_TABLE_STORE="rocksdb",
            CRM_PRODUCER_MAX_BATCH_BYTES="16384",
        )
        worker = WorkerProcess(env, Path(tmp) / "worker.log")
        try:
            worker.wait_ready(timeout_s=120)
            sent_at, records = asyncio.run(live(settings, events, rate, seconds + 120))
        finally:
            worker.stop()
    latency = Latency(rate, len(events), [], [], [], [])
    for record, received_ms in records:
        body = orjson.loads(record.value)
        sent = sent_at.get(body.get("event_id") or "")
        if sent is None:
            continue
        if record.topic == settings.topic_scores:
            latency.scores_ms.append(record.timestamp - sent)
            latency.scores_seen_ms.append(received_ms - sent)
        else:
            latency.alerts_ms.append(record.timestamp - sent)
            latency.alerts_seen_ms.append(received_ms - sent)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    result = measure(args.rate, args.seconds, args.customers)
    print(f"{result.sent:,} events at {args.rate:,.0f}/s, live event time")
    print(result.table())


if __name__ == "__main__":
    main()
