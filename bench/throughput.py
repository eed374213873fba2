"""Throughput of the product's worker side by side with a hand-written bound, in one run,
on one embedded broker, over the same workload (bench/workload.py: synthetic customers
and stream, real review texts).

    python -m bench.throughput [--events 200000] [--customers 50000] [--partitions 8]
                               [--rounds 3]

(a) ``crm-scorer worker`` in a child process with every model, state in its table
    (RocksDB, changelog) and alerts: the product, production settings (uvloop);
(a2) the same on Python's own asyncio loop, for what uvloop gives;
(b) the bound: one plain aiokafka loop calling the same ``models/`` code through
    :class:`stream.processor.EventProcessor` (one per partition, as the worker), state
    as objects in a dict per partition, scores and alerts produced to their topics, the
    scans of quiet customers when a partition's clock passes a scan time (as the
    worker's scan agent; left out before 2026-12-06), no framework. It reads as the
    worker does: its clock is the input's low watermark (:class:`stream.clock.
    Watermark`), its fetches take as much of each partition (``fetch_partition_bytes``)
    and are handled a record of each partition in turn. Until 2026-12-07 each
    partition's clock was its own events' time, a fetch took up to 4 MiB of a partition
    and was handled a partition after the other: its scans came when few customers were
    quiet, and re-scored none of the 11,986 they looked at (now 922 of 52,797; in
    event-time order 2,445 of 70,101), while the worker's scans took 4% of its CPU;
(c1-c4) the framework's floor (bench/floor.py): Faust workers configured as the product
    doing none of its work, then a table write per event, then also a record sent, then
    the same two written as the product writes them (its record batches).

All read every event from the beginning of the input topics. The ratio a/b is what the
framework and the worker's own plumbing cost, a/c what the product's work costs on top
of the framework's; results in docs/benchmarks.md. (b) and (a) run in turns, ``--rounds``
times, and the ratio is the median of each round's: on a shared 2-core machine the
speed of both drifts by a third within minutes, so one (b) then one (a) could give a
ratio off by as much. (a) runs first in the even rounds, so that a machine slowing down
(or speeding up) through a run favours neither.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from bench.workload import described, mixed_events, workload_arguments
from models.alerting import AlertPolicy
from models.features import CustomerState, SourcePosition
from models.retention import RetentionModels
from schemas.wire import Rejected, decode_event
from stream.broker import EmbeddedBroker
from stream.clock import Watermark
from stream.processor import EventProcessor, Processed
from stream.settings import Settings
from stream.topics import create_topics
from stream.workerproc import WorkerProcess, worker_env


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process (all its threads) has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime, the 14th and 15th fields; the 3rd (state) is fields[0] here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float
    #: CPU seconds of the process doing the work (the bound: this one; the product: the
    #: worker's), and of the broker, while it ran; ``None``: not measured.
    cpu_seconds: float | None = field(default=None, kw_only=True)
    broker_cpu_seconds: float | None = field(default=None, kw_only=True)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float | None:
        """CPU microseconds an event."""
        return None if self.cpu_seconds is None else self.cpu_seconds / self.events * 1e6

    def busy(self, cpu_seconds: float | None) -> str:
        """CPU seconds per second of the run, as a percentage of one core."""
        return "-" if cpu_seconds is None else f"{cpu_seconds / self.seconds:.0%}"


class CpuClock:
    """CPU seconds of a process (the one doing the work) and of the broker's, from when
    it was made to a :meth:`run`."""

    def __init__(self, pid: int, broker_pid: int | None) -> None:
        self.pid = pid
        self.broker_pid = broker_pid
        self.cpu_at = cpu_seconds(pid)
        self.broker_at = None if broker_pid is None else cpu_seconds(broker_pid)

    def run(self, name: str, events: int, seconds: float) -> Run:
        broker = None
        if self.broker_pid is not None and self.broker_at is not None:
            broker = cpu_seconds(self.broker_pid) - self.broker_at
        cpu = cpu_seconds(self.pid) - self.cpu_at
        return Run(name, events, seconds, cpu_seconds=cpu, broker_cpu_seconds=broker)


async def create_bench_topics(settings: Settings, partitions: int) -> None:
    names = [*settings.input_topics, settings.topic_alerts, settings.topic_scores]
    await create_topics(settings, *(NewTopic(n, partitions, 1) for n in names))


async def load(settings: Settings, events: list[dict[str, object]]) -> Run:
    """Produce the workload, keyed by customer, as fast as the broker takes it."""
    topics: dict[str, str] = {kind: name for name, kind in settings.input_topics.items()}
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=20, acks=1)
    await producer.start()
    started = time.perf_counter()
    try:
        for event in events:
            key = str(event["customer_id"]).encode()
            await producer.send(topics[str(event["type"])], orjson.dumps(event), key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return Run("load (producer)", len(events), time.perf_counter() - started)


async def bound(
    settings: Settings, total: int, partitions: int, broker_pid: int | None = None
) -> Run:
    """The hand-written bound: read, decode, apply, score, learn, alert, publish, and the
    scans of quiet customers the worker runs when a partition's clock passes a scan time."""
    expected = settings.input_topics
    watermark = Watermark(settings.watermark_idle_s)
    #: Each partition's customers, as the worker's table partitions hold them.
    states: list[dict[str, CustomerState]] = [{} for _ in range(partitions)]
    policy = AlertPolicy(settings.alerts())

    def processor(p: int) -> EventProcessor:
        return EventProcessor(
            RetentionModels(settings.models()), policy, customers=lambda: states[p].values()
        )

    processors = [processor(p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(
        *expected,
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.fetch_partition_bytes,
    )
    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=5)

    async def publish(customer: str, out: Processed) -> None:
        key = customer.encode()
        await producer.send(settings.topic_scores, out.score_json, key=key)
        for alert in out.alerts:
            await producer.send(settings.topic_alerts, alert.model_dump_json().encode(), key=key)

    await consumer.start()
    await producer.start()
    done = 0
    cpu = CpuClock(os.getpid(), broker_pid)
    started = time.perf_counter()
    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=1000)
            for turn in itertools.zip_longest(*batch.values()):
                for m in turn:
                    if m is None:
                        continue  # this partition's records are done
                    owned, scorer = states[m.partition], processors[m.partition]
                    done += 1
                    try:
                        event = decode_event(m.value, expected_type=expected[m.topic])
                    except Rejected:
                        continue
                    customer = event.customer_id
                    position = SourcePosition(m.topic, m.partition, m.offset)
                    low = watermark.observe((m.topic, m.partition), event.ts_ms)
                    out = scorer.process(owned.get(customer), event, position, low)
                    if out is None:
                        continue
                    owned[customer] = out.state
                    await publish(customer, out)
                    at_ms = scorer.scan_due()
                    if at_ms is not None:
                        for quiet, state in list(owned.items()):
                            rescored = scorer.rescore(state, at_ms)
                            if rescored is not None:
                                owned[quiet] = rescored.state
                                await publish(quiet, rescored)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return cpu.run("(b) bound: aiokafka loop + models/", total, time.perf_counter() - started)


def product_env(bootstrap: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """A worker's env vars with production settings (not the tests' one-record producer
    batches, which only matter to changelog recovery on this broker: no restart here),
    changed by ``settings`` (any of them, these too); in a consumer group of its own,
    named after its data."""
    production = {
        "CRM_APP_ID": f"crm-scorer-{data_dir.name}",
        "CRM_TABLE_STORE": "rocksdb",
        "CRM_PRODUCER_MAX_BATCH_BYTES": "16384",
    }
    return worker_env(bootstrap, data_dir, **(production | settings))


def product(
    broker: EmbeddedBroker,
    total: int,
    data_dir: Path,
    timeout_s: float,
    name: str = "(a) product: crm-scorer worker",
    **settings: str,
) -> Run:
    """The worker (:func:`product_env`) over ``total`` events, timed from when it says
    it is ready: it may apply some before (they are loaded first), which the figures
    leave out (until 2026-12-08 they were counted, in a time that did not include them:
    in the product's favour)."""
    env = product_env(broker.bootstrap, data_dir, **settings)
    worker = WorkerProcess(env, data_dir.parent / "worker.log")
    try:
        worker.wait_ready(timeout_s=120)
        applied_before = worker.metric("crm_events_total")
        cpu = CpuClock(worker.proc.pid, broker.pid)
        started = time.perf_counter()
        if applied_before >= total:
            raise RuntimeError(
                f"the worker applied all {total:,} events before it was ready: "
                "nothing to time (more events)"
            )
        applied = worker.wait_count("crm_events_total", total, timeout_s)
        if applied < total:
            raise TimeoutError(f"the worker did not apply {total:,} events in time")
        return cpu.run(name, int(total - applied_before), time.perf_counter() - started)
    finally:
        worker.stop()


def floor(bootstrap: str, variant: str, total: int, data_dir: Path, timeout_s: float) -> Run:
    """One step of the framework's floor (bench/floor.py), in its own consumer group."""
    env = worker_env(
        bootstrap,
        data_dir,
        CRM_APP_ID=f"floor-{variant}",
        CRM_TABLE_STORE="rocksdb",
        CRM_PRODUCER_MAX_BATCH_BYTES="16384",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.floor", "--variant", variant, "--total", str(total)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        output = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"floor {variant!r} failed ({done.returncode}): {output}")
    return Run(FLOOR_NAMES[variant], total, float(lines[-1]))


FLOOR_NAMES = {
    "agent": "(c1) Faust floor: an agent per topic, decode",
    "table": "(c2) floor + a table write per event",
    "score": "(c3) floor + a table write and a record sent per event",
    "batched": "(c4) floor + the same two through the worker's record batches",
}


@dataclass(frozen=True)
class Round:
    """The bound and the product, one after the other (in either order)."""

    bound: Run
    product: Run

    @property
    def ratio(self) -> float:
        return self.product.rate / self.bound.rate

    @property
    def cpu_ratio(self) -> float | None:
        """The bound's CPU an event over the product's: what the product's work costs
        against the bound's, whatever either side waited for."""
        if self.bound.cpu_us is None or self.product.cpu_us is None:
            return None
        return self.bound.cpu_us / self.product.cpu_us


@dataclass(frozen=True)
class ThroughputResult:
    loaded: Run
    rounds: tuple[Round, ...]
    #: Variants of the product, then the framework's floor.
    floors: tuple[Run, ...] = ()

    @property
    def median(self) -> Round:
        """The round of the median ratio (of an even count, the lower one)."""
        ranked = sorted(self.rounds, key=lambda r: r.ratio)
        return ranked[(len(ranked) - 1) // 2]

    @property
    def bound(self) -> Run:
        return self.median.bound

    @property
    def product(self) -> Run:
        return self.median.product

    @property
    def ratio(self) -> float:
        return self.median.ratio

    def table(self) -> str:
        """The runs, then the ratios. CPU: the process doing the work's (the bound runs
        in this one, the product in its worker), and the broker's, as a share of one
        core over the run; a side below 100% waited for something (the broker, mostly)."""
        rows = [
            "| run | events/s | seconds | CPU an event | CPU | broker's CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        runs = [self.loaded]
        for n, r in enumerate(self.rounds, 1):
            suffix = f", round {n}" if len(self.rounds) > 1 else ""
            runs += [replace(r.bound, name=r.bound.name + suffix)]
            runs += [replace(r.product, name=r.product.name + suffix)]
        for run in (*runs, *self.floors):
            us = "-" if run.cpu_us is None else f"{run.cpu_us:,.0f} us"
            rows.append(
                f"| {run.name} | {run.rate:,.0f} | {run.seconds:,.1f} | {us} "
                f"| {run.busy(run.cpu_seconds)} | {run.busy(run.broker_cpu_seconds)} |"
            )
        if len(self.rounds) > 1:
            each = ", ".join(f"{r.ratio:.2f}" for r in self.rounds)
            rows.append(f"| ratio a/b by round | {each} | | | | |")
            rows.append(f"| **ratio a/b, median** | **{self.ratio:.2f}** | | | | |")
        else:
            rows.append(f"| **ratio a/b** | **{self.ratio:.2f}** | | | | |")
        cpu = [r.cpu_ratio for r in self.rounds]
        if all(c is not None for c in cpu):
            each = ", ".join(f"{c:.2f}" for c in cpu if c is not None)
            rows.append(f"| CPU an event, b/a by round | {each} | | | | |")
        for run in self.floors:
            ratio = self.product.rate / run.rate
            rows.append(f"| ratio a/{run.name[:4]} | {ratio:.2f} | | | | |")
        return "\n".join(rows)


def measure(
    count: int, customers: int, partitions: int, timeout_s: float = 3600, rounds: int = 3
) -> ThroughputResult:
    events = mixed_events(count, customers=customers)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        asyncio.run(create_bench_topics(settings, partitions))
        loaded = asyncio.run(load(settings, events))

        def take_turns(n: int) -> Round:
            def the_bound() -> Run:
                return asyncio.run(bound(settings, len(events), partitions, broker.pid))

            def the_product() -> Run:
                return product(broker, len(events), Path(tmp) / f"w{n}", timeout_s)

            if n % 2:
                first = the_bound()
                return Round(first, the_product())
            first = the_product()
            return Round(the_bound(), first)

        turns = tuple(take_turns(n) for n in range(1, rounds + 1))
        on_asyncio = product(
            broker,
            len(events),
            Path(tmp) / "w-asyncio",
            timeout_s,
            "(a2) product on asyncio's loop (CRM_EVENT_LOOP=asyncio)",
            CRM_EVENT_LOOP="asyncio",
        )
        floors = tuple(
            floor(broker.bootstrap, variant, len(events), Path(tmp) / variant, timeout_s)
            for variant in FLOOR_NAMES
        )
    return ThroughputResult(loaded, turns, (on_asyncio, *floors))


def main() -> None:
    parser = workload_arguments(__doc__.splitlines()[0], events=200_000, customers=50_000)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--rounds", type=int, default=3, help="(b) then (a), this many times")
    args = parser.parse_args()
    result = measure(args.events, args.customers, args.partitions, args.timeout, args.rounds)
    print(described(args.events, args.customers, args.partitions))
    print(result.table())


if __name__ == "__main__":
    main()
