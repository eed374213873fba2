"""How late the embedded broker hands records to a consumer, by how many partitions the
consumer fetches: the same records, read side by side by a consumer of every partition
of three topics (as the worker fetches its input topics) and by one of partition 0 of
each. No worker: what it shows is the broker's.

    python -m bench.fetch_partitions [--rate 2000] [--seconds 16] [--partitions 8]
                                     [--fetch-wait-ms 100]

Records are sent as ``bench.latency`` sends events (one at a time, 1 ms linger, spread
over the partitions); the lag of a record is the time a consumer got it minus its Kafka
timestamp (its send time), for the records of partition 0, which both consumers read.

Each consumer's fetch answers are counted too: how many times the broker answered a
partition with no records while the high watermark it reported in the same answer was
past the offset asked (records it had stored and acknowledged, withheld), and the
longest run of such answers for one partition. The embedded broker seems to give a fetch
its longest wait (``--fetch-wait-ms``, the worker's ``CRM_FETCH_MAX_WAIT_MS`` by default)
to gather its partitions too: once its log makes a pass over them take longer, such
answers become common (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from bench.latency import p50_p99
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.topics import create_topics

TOPICS = ("fetch-a", "fetch-b", "fetch-c")
#: Seconds of sending time per row of :meth:`FetchLag.table`.
WINDOW_S = 4
#: The two consumers: of every partition, and of partition 0 of each topic.
READERS = ("every partition", "partition 0 only")


@dataclass
class Withheld:
    """A consumer's fetch answers, per partition: those without records while the
    broker's high watermark was past the offset asked."""

    answers: int = 0
    withheld: int = 0
    longest_run: int = 0
    runs: dict[tuple[str, int], int] = field(default_factory=dict)

    def observe(self, topic: str, partition: int, asked: int, high: int, empty: bool) -> None:
        """One partition's part of a fetch answer.

        >>> w = Withheld()
        >>> for high in (5, 9, 9):
        ...     w.observe("t", 0, 5, high, empty=True)
        >>> w.observe("t", 0, 5, 9, empty=False)
        >>> (w.answers, w.withheld, w.longest_run, w.runs[("t", 0)])
        (4, 2, 2, 0)
        """
        self.answers += 1
        key = (topic, partition)
        if empty and high > asked:
            self.withheld += 1
            self.runs[key] = self.runs.get(key, 0) + 1
            self.longest_run = max(self.longest_run, self.runs[key])
        else:
            self.runs[key] = 0

    def watch(self, consumer: AIOKafkaConsumer) -> None:
        """Observe every fetch answer ``consumer`` gets. aiokafka does not expose them:
        its client's ``send`` is wrapped (a request's partitions carry the offset asked
        second; an answer's, the high watermark third and the records last)."""
        client = consumer._client
        send = client.send

        async def observed(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = await send(node_id, request, *args, **kwargs)
            if type(request).__name__.startswith("FetchRequest"):
                asked = {(t, part[0]): part[1] for t, parts in request.topics for part in parts}
                for topic, partitions in response.topics:
                    for partition, _error, high, *rest in partitions:
                        offset = asked.get((topic, partition))
                        if offset is not None:
                            self.observe(topic, partition, offset, high, not rest[-1])
            return response

        client.send = observed

    def row(self) -> str:
        share = self.withheld / self.answers if self.answers else 0.0
        return f"{self.withheld:,} of {self.answers:,} ({share:.1%}) | {self.longest_run}"


@dataclass
class FetchLag:
    rate: float
    partitions: int
    fetch_wait_ms: int
    #: Per reader: (seconds from the first send, lag in ms) of each partition-0 record.
    lags: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {name: [] for name in READERS}
    )
    withheld: dict[str, Withheld] = field(
        default_factory=lambda: {name: Withheld() for name in READERS}
    )

    def table(self) -> str:
        rows = [
            f"{self.rate:,.0f} records/s over {len(TOPICS)} topics of {self.partitions} "
            f"partitions, fetched with a {self.fetch_wait_ms}-ms longest wait; the lag of "
            "partition 0's records",
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
        rows += [
            "",
            "| consumer | partition answers without records, the high watermark past the "
            "offset asked | the longest run of them for one partition |",
            "| --- | ---: | ---: |",
            *(f"| {name} | {self.withheld[name].row()} |" for name in READERS),
        ]
        return "\n".join(rows)


async def run(
    bootstrap: str, rate: float, seconds: float, partitions: int, fetch_wait_ms: int
) -> FetchLag:
    settings = Settings(kafka_bootstrap=bootstrap)
    await create_topics(settings, *(NewTopic(t, partitions, 1) for t in TOPICS))
    result = FetchLag(rate, partitions, fetch_wait_ms)
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=1)
    readers = {
        name: AIOKafkaConsumer(
            **settings.kafka_client_options(),
            enable_auto_commit=False,
            # The topics are new: from their start, or a consumer that resets to their
            # end after the first sends (its first fetch waits up to the wait) misses them.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_wait_ms,
        )
        for name in READERS
    }
    await producer.start()
    for name, consumer in readers.items():
        await consumer.start()
        shown = range(partitions) if name == READERS[0] else range(1)
        consumer.assign([TopicPartition(t, p) for t in TOPICS for p in shown])
        result.withheld[name].watch(consumer)
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


def measure(
    rate: float, seconds: float, partitions: int, fetch_wait_ms: int | None = None
) -> FetchLag:
    """``fetch_wait_ms``: the consumers' longest wait, the worker's by default."""
    wait_ms = Settings().fetch_max_wait_ms if fetch_wait_ms is None else fetch_wait_ms
    with EmbeddedBroker() as broker:
        return asyncio.run(run(broker.bootstrap, rate, seconds, partitions, wait_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=16.0)
    parser.add_argument("--partitions", type=int, default=8, help="of each of the 3 topics")
    parser.add_argument(
        "--fetch-wait-ms", type=int, help="the consumers' longest fetch wait (the worker's)"
    )
    args = parser.parse_args()
    print(measure(args.rate, args.seconds, args.partitions, args.fetch_wait_ms).table())


if __name__ == "__main__":
    main()
