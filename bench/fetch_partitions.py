"""How late the embedded broker hands records to a consumer, by how many partitions the
consumer fetches: the same records, read side by side by a consumer of every partition
of three topics (as the worker fetches its input topics) and by one of partition 0 of
each. No worker: what it shows is the broker's.

    python -m bench.fetch_partitions [--rate 2000] [--seconds 16] [--partitions 8]

Records are sent as ``bench.latency`` sends events (one at a time, 1 ms linger, spread
over the partitions); the lag of a record is the time a consumer got it minus its Kafka
timestamp (its send time), for the records of partition 0, which both consumers read.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from bench.latency import FETCH_MAX_WAIT_MS, p50_p99
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.topics import create_topics

TOPICS = ("fetch-a", "fetch-b", "fetch-c")
#: Seconds of sending time per row of :meth:`FetchLag.table`.
WINDOW_S = 4
#: The two consumers: of every partition, and of partition 0 of each topic.
READERS = ("every partition", "partition 0 only")


@dataclass
class FetchLag:
    rate: float
    partitions: int
    #: Per reader: (seconds from the first send, lag in ms) of each partition-0 record.
    lags: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {name: [] for name in READERS}
    )

    def table(self) -> str:
        rows = [
            f"{self.rate:,.0f} records/s over {len(TOPICS)} topics of {self.partitions} "
            "partitions; the lag of partition 0's records",
            "",
            "| sent at | " + " | ".join(f"{name}: p50 | p99" for name in READERS) + " |",
            "| --- |" + " ---: | ---: |" * len(READERS),
        ]
        last = max((at for lags in self.lags.values() for at, _ in lags), default=0.0)
        for start in range(0, int(last) + 1, WINDOW_S):
            cells = []
            for name in READERS:
                window = [ms for at, ms in self.lags[name] if start <= at < start + WINDOW_S]
                cells.append(p50_p99(window))
            rows.append(f"| {start}-{start + WINDOW_S} s | " + " | ".join(cells) + " |")
        return "\n".join(rows)


async def run(bootstrap: str, rate: float, seconds: float, partitions: int) -> FetchLag:
    settings = Settings(kafka_bootstrap=bootstrap)
    await create_topics(settings, *(NewTopic(t, partitions, 1) for t in TOPICS))
    result = FetchLag(rate, partitions)
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=1)
    readers = {
        name: AIOKafkaConsumer(
            **settings.kafka_client_options(),
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        for name in READERS
    }
    await producer.start()
    for name, consumer in readers.items():
        await consumer.start()
        shown = range(partitions) if name == READERS[0] else range(1)
        consumer.assign([TopicPartition(t, p) for t in TOPICS for p in shown])
    total = int(rate * seconds)
    sampled = sum(1 for n in range(total) if (n // len(TOPICS)) % partitions == 0)
    first_ms = time.time() * 1000

    async def read(name: str, consumer: AIOKafkaConsumer) -> None:
        lags = result.lags[name]
        deadline = time.monotonic() + seconds + 60
        while len(lags) < sampled and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                now_ms = time.time() * 1000
                if tp.partition == 0:
                    lags.extend(
                        ((r.timestamp - first_ms) / 1000, now_ms - r.timestamp) for r in records
                    )

    tasks = [asyncio.create_task(read(name, c)) for name, c in readers.items()]
    try:
        started = time.monotonic()
        for n in range(total):
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            topic, partition = TOPICS[n % len(TOPICS)], (n // len(TOPICS)) % partitions
            stamp = int(time.time() * 1000)
            await producer.send(topic, b"x" * 200, partition=partition, timestamp_ms=stamp)
        await producer.flush()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await producer.stop()
        for consumer in readers.values():
            await consumer.stop()
    return result


def measure(rate: float, seconds: float, partitions: int) -> FetchLag:
    with EmbeddedBroker() as broker:
        return asyncio.run(run(broker.bootstrap, rate, seconds, partitions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=16.0)
    parser.add_argument("--partitions", type=int, default=8, help="of each of the 3 topics")
    args = parser.parse_args()
    print(measure(args.rate, args.seconds, args.partitions).table())


if __name__ == "__main__":
    main()
