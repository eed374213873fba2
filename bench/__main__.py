"""The benchmark suite in one command; prints the tables for docs/benchmarks.md.

    python -m bench            # 200,000 events / 50,000 customers; 100,000 customers of state
    python -m bench --quick    # a small run, as the test suite's smoke test does

1. throughput: the worker (a) against the hand-written bound (b), same workload, in turns
   (the ratio: the median of the rounds');
2. latency: event to score and to alert, at half the worker's measured throughput;
3. state: resident memory per customer, and restart and recovery time to ready;
4. memory: where the models' part of it goes (one process, tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass

from bench import latency, memory, state, throughput
from bench.workload import mixed_events


@dataclass(frozen=True)
class Sizes:
    events: int
    customers: int
    latency_s: float
    state_events: int
    state_customers: int
    rounds: int


FULL = Sizes(200_000, 50_000, 60.0, 300_000, 100_000, 3)
QUICK = Sizes(2_000, 500, 5.0, 2_000, 500, 1)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, broker: embedded Tansu on loopback"
    )


def run(sizes: Sizes) -> Iterator[str]:
    """The report, a section at a time as each is measured (a later part that fails
    does not take the earlier figures with it)."""
    yield f"Machine: {machine()}\n"
    tp = throughput.measure(sizes.events, sizes.customers, partitions=8, rounds=sizes.rounds)
    yield (
        f"### Throughput ({sizes.events:,} events, {sizes.customers:,} customers, "
        f"8 partitions)\n\n{tp.table()}\n"
    )
    rate = tp.product.rate / 2
    lat = latency.measure(rate, sizes.latency_s, sizes.customers)
    yield (
        f"### Latency at {rate:,.0f} events/s (half the worker's throughput), "
        f"{sizes.latency_s:.0f} s\n\n{lat.table()}\n\n{lat.windows()}\n\n{lat.collections()}\n"
    )
    events = mixed_events(sizes.state_events, customers=sizes.state_customers)
    st = state.measure(events)
    yield f"### State ({sizes.state_events:,} events)\n\n{st.table()}\n"
    parts = memory.measure(sizes.state_events, sizes.state_customers, partitions=8)
    yield (
        f"### Memory by the file that allocated it ({sizes.state_events:,} events, one "
        f"process)\n\n{parts.table()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for section in run(QUICK if args.quick else FULL):
        print(section, flush=True)


if __name__ == "__main__":
    main()
