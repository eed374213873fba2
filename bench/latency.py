"""Event-to-score and event-to-alert latency of the worker at a fixed input rate, on the
embedded broker: events are produced live (event time = now), paced at ``--rate``;
latency is the output record's Kafka timestamp minus the input record's, and the time a
consumer reading the outputs live receives it minus the same (which includes how long
the record waited in the producer after it was stamped, and the consumer's own fetch).

Side by side, in the same run, a plain consumer reads the input events as they arrive:
the broker's own part, which the worker pays before it sees an event. It reads partition
:data:`SAMPLED_PARTITION` of each input topic only: on the embedded broker every fetch
lists all the record batches of each partition it returns records from (Tansu 0.6's
memory storage, about 0.9 us of broker CPU per stored batch), so a consumer of every
input partition would cost the broker as much as the worker's own fetches. That cost
grows with the broker's log (docs/benchmarks.md), so the results are also given per
window of sending time, with the worker's own fetches' round trip in each
(``crm_fetch_round_trip_seconds``, scraped every :data:`FETCH_SAMPLE_S`). The worker
fetches with its own longest wait (``CRM_FETCH_MAX_WAIT_MS``, 100 ms unless a
``--setting`` says otherwise), and so do the bench's consumers: on the embedded broker
a short wait leaves partitions of a fetch answered without records it has stored
(``bench.fetch_partitions``); at 10 ms the worker's p99 to the alert was twice what it
is at 100 (docs/benchmarks.md).

    python -m bench.latency --rate 1000 [--seconds 60] [--customers 50000]

`python -m bench` runs it at half the throughput measured by bench.throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.compare import FullCollections, env_setting
from bench.throughput import product_env
from bench.workload import mixed_events
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.workerproc import WorkerProcess, bucket_holding

#: The input partition (of each input topic) whose events the plain consumer reads.
SAMPLED_PARTITION = 0
#: Seconds of sending time per row of :meth:`Latency.windows`.
WINDOW_S = 10
#: Seconds between scrapes of the worker's fetch round trips.
FETCH_SAMPLE_S = 2.0
#: The worker's fetches so far and their seconds in all (histogram count and sum).
FETCHES = ("crm_fetch_round_trip_seconds_count", "crm_fetch_round_trip_seconds_sum")


@dataclass(frozen=True)
class Latency:
    rate: float
    sent: int
    scores_ms: list[float]
    alerts_ms: list[float]
    #: The same, as a consumer reading live received them.
    scores_seen_ms: list[float]
    alerts_seen_ms: list[float]
    #: The input events of :data:`SAMPLED_PARTITION`, as a plain consumer reading them
    #: live received them.
    inputs_seen_ms: list[float]
    #: The worker's own part: for the same events, each score's record timestamp minus
    #: when the plain consumer received the event behind it.
    scores_own_ms: list[float]
    #: Seconds from the first send to the event behind each score, each alert, each input
    #: event received and each score with its own part.
    scores_at_s: list[float]
    alerts_at_s: list[float]
    inputs_at_s: list[float]
    own_at_s: list[float]
    #: The worker's full garbage collections while the events were sent and read.
    full_collections: FullCollections
    #: Scrapes of the worker's fetch round trips: (seconds from the first send, fetches
    #: so far, their seconds in all).
    fetches: list[tuple[float, float, float]]
    #: The worker's own count of its alerts by the time the broker had stored them
    #: (``crm_event_to_alert_seconds``, every kind): upper bound in seconds -> alerts.
    alerts_stored: dict[float, float]

    def collections(self) -> str:
        return f"The worker's full garbage collections during the run: {self.full_collections}"

    def table(self) -> str:
        rows = ["| output | records | p50 | p99 |", "| --- | ---: | ---: | ---: |"]
        for name, values in (
            ("event to score (record timestamp)", self.scores_ms),
            ("event to alert (record timestamp)", self.alerts_ms),
            ("event to score, received by a consumer", self.scores_seen_ms),
            ("event to alert, received by a consumer", self.alerts_seen_ms),
            ("the broker's own part: event received by a plain consumer*", self.inputs_seen_ms),
            ("the worker's own part: score's timestamp - event received so*", self.scores_own_ms),
        ):
            rows.append(f"| {name} | {len(values):,} | {p50_p99(values)} |")
        stored = self.alerts_stored.get(math.inf, 0.0)
        rows.append(
            "| event to alert, stored by the broker (the worker's histogram, by bucket) "
            f"| {stored:,.0f} | {bucket_of(self.alerts_stored, 0.5)} "
            f"| {bucket_of(self.alerts_stored, 0.99)} |"
        )
        rows.append(f"\n\\* the events of partition {SAMPLED_PARTITION} of each input topic")
        return "\n".join(rows)

    def windows(self) -> str:
        """p50 and p99 per :data:`WINDOW_S` of sending time: the worker's scores and
        alerts (record timestamp), the broker's own part and the worker's own part."""
        rows = [
            "| sent at | event to score: p50 | p99 | event to alert: p50 | p99 "
            "| broker's own part: p50 | p99 | worker's own part: p50 | p99 "
            "| the worker's fetches: round trip, mean |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        last = max(self.scores_at_s + self.inputs_at_s, default=0.0)
        for start in range(0, math.floor(last) + 1, WINDOW_S):
            scores = _within(self.scores_ms, self.scores_at_s, start)
            alerts = _within(self.alerts_ms, self.alerts_at_s, start)
            inputs = _within(self.inputs_seen_ms, self.inputs_at_s, start)
            own = _within(self.scores_own_ms, self.own_at_s, start)
            if not (scores or inputs):
                continue  # a last window the sending ended just short of
            rows.append(
                f"| {start}-{start + WINDOW_S} s | {p50_p99(scores)} | {p50_p99(alerts)} "
                f"| {p50_p99(inputs)} | {p50_p99(own)} | {self._fetch_mean(start)} |"
            )
        return "\n".join(rows)

    def _fetch_mean(self, start: int) -> str:
        """The mean round trip of the worker's fetches (and how many) between the scrapes
        nearest the window's start and end."""
        if not self.fetches:
            return "-"
        _, n0, s0 = min(self.fetches, key=lambda f: abs(f[0] - start))
        _, n1, s1 = min(self.fetches, key=lambda f: abs(f[0] - start - WINDOW_S))
        if n1 <= n0:
            return "-"
        return f"{(s1 - s0) / (n1 - n0) * 1000:,.1f} ms ({n1 - n0:,.0f})"


def p50_p99(values: list[float]) -> str:
    """Two table cells: the median and the 99th percentile of milliseconds ("-" for
    fewer than 2)."""
    if len(values) < 2:
        return "- | -"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:,.0f} ms | {cuts[98]:,.0f} ms"


def bucket_of(buckets: dict[float, float], q: float) -> str:
    """The histogram bucket (cumulative counts by upper bound, in seconds) holding its
    ``q`` quantile, in milliseconds ("-" when empty)."""
    if not buckets.get(math.inf, 0.0):
        return "-"
    lower, upper = bucket_holding(buckets, q)
    if upper == math.inf:
        return f"over {lower * 1000:,.0f} ms"
    return f"{lower * 1000:,.0f}-{upper * 1000:,.0f} ms"


def alerts_stored(worker: WorkerProcess, timed: int, timeout_s: float = 10.0) -> dict[float, float]:
    """``crm_event_to_alert_seconds``'s buckets, every kind together, once they count
    ``timed`` alerts (the worker counts one as its delivery is answered, which may come a
    moment after a consumer read it), or ``timeout_s`` on."""
    deadline = time.monotonic() + timeout_s
    while True:
        buckets = worker.buckets("crm_event_to_alert_seconds")
        if buckets.get(math.inf, 0.0) >= timed or time.monotonic() > deadline:
            return buckets
        time.sleep(0.1)


def _within(values: list[float], at_s: list[float], start: int) -> list[float]:
    return [v for v, t in zip(values, at_s, strict=True) if start <= t < start + WINDOW_S]


async def paced(
    settings: Settings, events: list[dict[str, Any]], rate: float
) -> tuple[dict[str, int], int]:
    """Send at ``rate`` events/s with event time = now: the send time per event id, and
    how many went to :data:`SAMPLED_PARTITION`."""
    topics: dict[str, str] = {kind: name for name, kind in settings.input_topics.items()}
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=1)
    sent_at: dict[str, int] = {}
    deliveries: list[asyncio.Future[Any]] = []
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
            delivery = await producer.send(
                topics[str(event["type"])],
                orjson.dumps(event),
                key=str(event["customer_id"]).encode(),
                timestamp_ms=now_ms,
            )
            deliveries.append(delivery)
        await producer.flush()
    finally:
        await producer.stop()
    sampled = sum(d.result().partition == SAMPLED_PARTITION for d in deliveries)
    return sent_at, sampled


def live_consumer(settings: Settings, *topics: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **settings.kafka_client_options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )


async def live(
    settings: Settings,
    events: list[dict[str, Any]],
    rate: float,
    timeout_s: float,
    fetch_totals: Callable[[], tuple[float, float]],
) -> tuple[
    dict[str, int],
    list[tuple[Any, float]],
    list[tuple[Any, float]],
    list[tuple[float, float, float]],
]:
    """Send the events paced while one consumer reads the scores and alerts live, until
    every event has its score (scans publish scores of their own, with no event id), and
    another the input events of :data:`SAMPLED_PARTITION`, until it has them all: the
    send times, and each output and each sampled input record with the time it was
    received (ms); meanwhile ``fetch_totals`` (the worker's fetches so far and their
    seconds) every :data:`FETCH_SAMPLE_S`, with the time of the scrape (ms)."""
    outputs = live_consumer(settings, settings.topic_scores, settings.topic_alerts)
    inputs = live_consumer(settings)
    await outputs.start()
    await inputs.start()
    inputs.assign([TopicPartition(topic, SAMPLED_PARTITION) for topic in settings.input_topics])
    got: list[tuple[Any, float]] = []
    got_inputs: list[tuple[Any, float]] = []
    missing = {str(event["event_id"]) for event in events}
    sampled: list[int] = []  # how many inputs the plain consumer gets, once all are sent
    deadline = time.monotonic() + timeout_s

    async def read() -> None:
        while missing and time.monotonic() < deadline:
            for messages in (await outputs.getmany(timeout_ms=500)).values():
                received_ms = time.time() * 1000
                for message in messages:
                    got.append((message, received_ms))
                    if message.topic == settings.topic_scores:
                        missing.discard(orjson.loads(message.value).get("event_id"))

    async def read_inputs() -> None:
        while (not sampled or len(got_inputs) < sampled[0]) and time.monotonic() < deadline:
            for messages in (await inputs.getmany(timeout_ms=500)).values():
                received_ms = time.time() * 1000
                got_inputs.extend((message, received_ms) for message in messages)

    fetches: list[tuple[float, float, float]] = []

    async def scrape_fetches() -> None:
        while True:
            at_ms = time.time() * 1000  # the first before the first send
            count, seconds = await asyncio.to_thread(fetch_totals)
            fetches.append((at_ms, count, seconds))
            await asyncio.sleep(FETCH_SAMPLE_S)

    readers = [asyncio.create_task(read()), asyncio.create_task(read_inputs())]
    scraper = asyncio.create_task(scrape_fetches())
    try:
        sent_at, sampled_count = await paced(settings, events, rate)
        sampled.append(sampled_count)
        await asyncio.gather(*readers)
    finally:
        for task in (*readers, scraper):  # when sending failed: none outlives its consumer
            task.cancel()
        await outputs.stop()
        await inputs.stop()
    return sent_at, got, got_inputs, fetches


def measure(
    rate: float, seconds: float, customers: int, worker_settings: dict[str, str] | None = None
) -> Latency:
    """``worker_settings``: env vars of the worker beyond the bench's own."""
    events = mixed_events(int(rate * seconds), customers=customers, seed=11)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        env = product_env(broker.bootstrap, Path(tmp) / "w1", **(worker_settings or {}))
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        if "CRM_FETCH_MAX_WAIT_MS" in env:  # the bench's consumers wait alike
            wait_ms = int(env["CRM_FETCH_MAX_WAIT_MS"])
            settings = settings.model_copy(update={"fetch_max_wait_ms": wait_ms})
        worker = WorkerProcess(env, Path(tmp) / "worker.log")
        try:
            worker.wait_ready(timeout_s=120)
            before = FullCollections.scrape(worker)

            def fetch_totals() -> tuple[float, float]:
                totals = worker.totals(*FETCHES)
                return totals[FETCHES[0]], totals[FETCHES[1]]

            sent_at, records, inputs, fetches = asyncio.run(
                live(settings, events, rate, seconds + 120, fetch_totals)
            )
            full = FullCollections.since(worker, before)
            # The alerts read that the worker times: those behind an event.
            timed = sum(
                record.topic == settings.topic_alerts
                and orjson.loads(record.value).get("event_id") is not None
                for record, _ in records
            )
            stored = alerts_stored(worker, timed)
        finally:
            worker.stop()
    first_ms = min(sent_at.values(), default=0)
    at_s = [((at_ms - first_ms) / 1000, n, s) for at_ms, n, s in fetches]
    latency = Latency(rate, len(events), [], [], [], [], [], [], [], [], [], [], full, at_s, stored)
    input_received_ms: dict[str, float] = {}
    for record, received_ms in inputs:
        # The input record's timestamp is its send time (paced sets both).
        latency.inputs_seen_ms.append(received_ms - record.timestamp)
        latency.inputs_at_s.append((record.timestamp - first_ms) / 1000)
        input_received_ms[orjson.loads(record.value)["event_id"]] = received_ms
    for record, received_ms in records:
        body = orjson.loads(record.value)
        sent = sent_at.get(body.get("event_id") or "")
        if sent is None:
            continue
        if record.topic == settings.topic_scores:
            latency.scores_ms.append(record.timestamp - sent)
            latency.scores_seen_ms.append(received_ms - sent)
            latency.scores_at_s.append((sent - first_ms) / 1000)
            received = input_received_ms.get(body["event_id"])
            if received is not None:  # an event of the sampled partition
                latency.scores_own_ms.append(record.timestamp - received)
                latency.own_at_s.append((sent - first_ms) / 1000)
        else:
            latency.alerts_ms.append(record.timestamp - sent)
            latency.alerts_at_s.append((sent - first_ms) / 1000)
            latency.alerts_seen_ms.append(received_ms - sent)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        type=env_setting,
        help="KEY=VALUE, an env var of the worker",
    )
    args = parser.parse_args()
    worker_settings = dict(args.setting)
    result = measure(args.rate, args.seconds, args.customers, worker_settings)
    print(f"{result.sent:,} events at {args.rate:,.0f}/s, live event time")
    print(result.table())
    print()
    print(result.windows())
    print()
    print(result.collections())


if __name__ == "__main__":
    main()
