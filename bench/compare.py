"""Workers of two or more checkouts side by side on one broker and one workload: the A/B
of a change, and the profile that should come before it.

    git worktree add ../before main          # beside ../shared, as the checkout is
    python -m bench.compare ../before . [--events 100000] [--rounds 3] [--profile DIR]
    python -m bench.compare . .,CRM_GC_FREEZE_SURVIVORS=false     # settings, too

Each checkout's worker (with the settings that follow its path, if any) runs in turn
from its own directory (its ``stream``, ``models``
and ``schemas`` first on the path; this checkout's venv), in a consumer group of its own,
reading the same events (bench/workload.py: synthetic customers and stream, real review
texts) from the beginning with production's settings, ``--rounds`` times. Reported for
each: events/s, CPU microseconds an event (the worker's
``process_cpu_seconds_total``, start-up excluded), and how much its resident memory grew
from ready to the last event and at its peak, by round and the median. With
``--profile DIR``, py-spy (the ``profile`` extra) samples each worker of the last round
at 200 Hz; its collapsed stacks go to ``DIR/<n>.txt`` and the functions in the most
samples are printed. A worker on this machine drifts by a third within minutes: compare
only runs alternated like these.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.throughput import Run, create_bench_topics, load, product_env
from bench.workload import mixed_events
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.workerproc import WorkerProcess, bucket_holding

#: The venv's py-spy (the ``profile`` extra), else one on the path.
PY_SPY = shutil.which(
    "py-spy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


def env_setting(text: str) -> tuple[str, str]:
    """A worker setting given as ``KEY=VALUE`` (an env var)."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise ValueError(f"not KEY=VALUE: {text!r}")
    return key, value


@dataclass(frozen=True)
class Variant:
    """A checkout, and settings (env vars) of its worker: ``PATH[,KEY=VALUE...]``."""

    code: Path
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        path, *settings = text.split(",")
        try:
            pairs = tuple(env_setting(setting) for setting in settings)
        except ValueError:
            raise ValueError(f"not PATH[,KEY=VALUE...]: {text!r}") from None
        return cls(Path(path).resolve(), pairs)

    def __str__(self) -> str:
        return ",".join([str(self.code), *(f"{k}={v}" for k, v in self.env)])


@dataclass(frozen=True)
class FullCollections:
    """A worker's full garbage collections between two scrapes: how many, their seconds
    (``crm_gc_pause_seconds``; 0 for a checkout from before it), and the upper bound of
    the histogram bucket holding the longest."""

    count: int = 0
    seconds: float = 0.0
    longest_s: float = 0.0

    @staticmethod
    def scrape(worker: WorkerProcess) -> tuple[float, float, dict[float, float]]:
        """What :meth:`since` takes as ``before``."""
        return (
            worker.metric("python_gc_collections_total", generation="2"),
            worker.metric("crm_gc_pause_seconds_sum", generation="2"),
            worker.buckets("crm_gc_pause_seconds", generation="2"),
        )

    @classmethod
    def since(
        cls, worker: WorkerProcess, before: tuple[float, float, dict[float, float]]
    ) -> FullCollections:
        count, seconds, buckets = cls.scrape(worker)
        return cls(int(count - before[0]), seconds - before[1], longest_in(before[2], buckets))

    def __str__(self) -> str:
        return (
            f"{self.count} full collections, {self.seconds:.2f} s in all, the longest "
            f"<= {self.longest_s * 1000:,.1f} ms"
        )


@dataclass(frozen=True, kw_only=True)
class WorkerRun(Run):
    """One worker applying every event of the workload (``name``: its variant);
    ``events``: those it applied after it was ready, which the figures cover."""

    variant: Variant
    full_collections: FullCollections
    #: Resident memory grown from ready to the last event applied, and to its peak.
    grown_bytes: float
    peak_bytes: float

    @property
    def cpu_us(self) -> float:
        """CPU microseconds an event (always measured here)."""
        if self.cpu_seconds is None:
            raise ValueError(f"{self.name}: no CPU time")
        return self.cpu_seconds / self.events * 1e6


def run_worker(
    variant: Variant, bootstrap: str, total: int, data_dir: Path, profile: Path | None = None
) -> WorkerRun:
    """The worker of ``variant`` over the ``total`` events already loaded."""
    env = product_env(bootstrap, data_dir, PYTHONPATH=str(variant.code), **dict(variant.env))
    worker = WorkerProcess(env, data_dir.parent / f"{data_dir.name}.log", cwd=variant.code)
    spy = None
    try:
        worker.wait_ready(timeout_s=120)
        # The events are loaded first, so a worker may apply some before it says it is
        # ready (a 1,000-event test run: all of them): the figures cover the rest.
        applied_before = worker.metric("crm_events_total")
        cpu = worker.metric("process_cpu_seconds_total")
        ready_rss = worker.metric("process_resident_memory_bytes")
        collections = FullCollections.scrape(worker)
        started = time.perf_counter()
        if profile is not None:
            command = [str(PY_SPY), "record", "--pid", str(worker.proc.pid), "--rate", "200"]
            command += ["--format", "raw", "--output", str(profile)]
            spy = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        applied = worker.wait_count("crm_events_total", total, 3600)
        seconds = time.perf_counter() - started
        if applied < total:
            raise TimeoutError(f"the worker of {variant} did not apply {total:,} events in time")
        used = worker.metric("process_cpu_seconds_total") - cpu
        rss = worker.metric("process_resident_memory_bytes")
        # Linux raises its high-water mark (VmHWM) only when memory is unmapped: a
        # resident size read before it may be higher (seen in a run of 1,000 events).
        peak = max(worker.peak_rss_bytes(), rss) - ready_rss
        grown = rss - ready_rss
        full = FullCollections.since(worker, collections)
        measured = int(total - applied_before)
        return WorkerRun(
            str(variant),
            measured,
            seconds,
            cpu_seconds=used,
            variant=variant,
            full_collections=full,
            grown_bytes=grown,
            peak_bytes=peak,
        )
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            spy.wait(timeout=60)
        worker.stop()


def longest_in(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the first cumulative bucket holding every observation made
    between two scrapes of a histogram (0 if none was made)."""
    added = {le: n - before.get(le, 0.0) for le, n in after.items()}
    return bucket_holding(added, 1.0)[1] if added.get(math.inf, 0.0) else 0.0


def top_functions(collapsed: Path, count: int = 25) -> list[tuple[str, float]]:
    """The functions in the most samples of py-spy's collapsed stacks, with their share
    of all samples (a function counted once a sample however deep it recurs)."""
    samples = 0
    inclusive: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        samples += int(n)
        functions = {_function(frame) for frame in stack.split(";")}
        for function in functions:
            inclusive[function] += int(n)
    ranked = sorted(inclusive.items(), key=lambda item: (-item[1], item[0]))[:count]
    return [(name, n / samples) for name, n in ranked]


def measure(
    variants: list[Variant],
    count: int,
    customers: int,
    partitions: int,
    rounds: int,
    profile: Path | None = None,
) -> list[list[WorkerRun]]:
    """Each variant's worker over the same ``count`` events, in turns, ``rounds`` times;
    with ``profile``, py-spy on each worker of the last round (``profile/<n>.txt``).
    The runs of each variant, in the order given."""
    events = mixed_events(count, customers=customers)
    runs: list[list[WorkerRun]] = [[] for _ in variants]
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        asyncio.run(create_bench_topics(settings, partitions))
        asyncio.run(load(settings, events))
        for r in range(1, rounds + 1):
            for n, variant in enumerate(variants, 1):
                spied = profile / f"{n}.txt" if profile is not None and r == rounds else None
                data_dir = Path(tmp) / f"w{r}-{n}"
                run = run_worker(variant, broker.bootstrap, count, data_dir, spied)
                runs[n - 1].append(run)
                print(
                    f"round {r}, {n}. {variant}: {run.rate:,.0f} events/s, "
                    f"{run.cpu_us:.0f} us CPU an event, {run.grown_bytes / 2**20:,.0f} MiB "
                    f"grown ({run.peak_bytes / 2**20:,.0f} at the peak), {run.full_collections}",
                    flush=True,
                )
    return runs


def table(runs: list[list[WorkerRun]]) -> str:
    rows = [
        "| worker | events/s by round | median | CPU us an event, median "
        "| resident memory grown by round, MiB | the same at its peak |"
    ]
    rows.append("| --- | --- | ---: | ---: | --- | --- |")
    for n, each in enumerate(runs, 1):
        rates = ", ".join(f"{run.rate:,.0f}" for run in each)
        median = statistics.median(run.rate for run in each)
        cpu = statistics.median(run.cpu_us for run in each)
        grown = ", ".join(f"{run.grown_bytes / 2**20:,.0f}" for run in each)
        peak = ", ".join(f"{run.peak_bytes / 2**20:,.0f}" for run in each)
        rows.append(
            f"| {n}. {each[0].variant} | {rates} | {median:,.0f} | {cpu:.0f} | {grown} | {peak} |"
        )
    return "\n".join(rows)


def _function(frame: str) -> str:
    """``name (file)`` of py-spy's ``name (file:line)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rpartition(':')[0]})" if ":" in where else frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "variant", nargs="+", type=Variant.parse, help="a checkout: PATH[,KEY=VALUE...]"
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy the last round into this folder")
    args = parser.parse_args()
    if args.profile is not None:
        if PY_SPY is None:
            parser.error('--profile needs py-spy: pip install -e ".[profile]"')
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = measure(
        args.variant, args.events, args.customers, args.partitions, args.rounds, args.profile
    )
    print(f"\n{args.events:,} events, {args.customers:,} customers, {args.partitions} partitions")
    print(table(runs))
    if args.profile is not None:
        for n, variant in enumerate(args.variant, 1):
            print(f"\nprofile of {n}. {variant} ({args.profile / f'{n}.txt'}):")
            for name, share in top_functions(args.profile / f"{n}.txt"):
                print(f"{share:6.1%}  {name}")


if __name__ == "__main__":
    main()
