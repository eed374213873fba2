"""Where the models' memory goes: the workload through one process, with tracemalloc.

    python -m bench.memory [--events 300000] [--customers 100000] [--partitions 8]

Each event of the benchmark workload (bench/workload.py: synthetic customers, stream and
browsing; real review texts) goes through its partition's
:class:`~stream.processor.EventProcessor`, as in the worker, and each customer's state
is kept as the bytes the worker stores (in the worker they are in RocksDB, budgeted, so
they are counted apart). What is still allocated at the end is summed by the file that
allocated it (``models/sentiment.py`` is naive Bayes' counts and n-grams,
``models/influence.py`` the co-purchase graph, and so on) and divided by the customers
seen. bench.state gives the worker's resident memory; this gives its parts.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.pipeline import PartitionedReplay
from bench.workload import described, mixed_events, workload_arguments
from stream.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
#: What the states' bytes are counted as (the worker keeps them in RocksDB).
STATES = "the states' bytes (in the worker: RocksDB)"


@dataclass
class MemoryResult:
    events: int
    customers: int
    #: Bytes still allocated at the end, by the file (in the repository, or a package)
    #: that allocated them.
    by_file: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_file.values())

    @property
    def models(self) -> int:
        return self.total - self.by_file.get(STATES, 0)

    def table(self, rows: int = 12) -> str:
        lines = [
            "| allocated by | MiB | bytes a customer |",
            "| --- | ---: | ---: |",
        ]
        ranked = sorted(self.by_file.items(), key=lambda kv: kv[1], reverse=True)
        for name, size in ranked[:rows]:
            lines.append(f"| {name} | {size / 2**20:,.1f} | {size / self.customers:,.0f} |")
        rest = sum(size for _, size in ranked[rows:])
        if rest:
            lines.append(f"| the rest | {rest / 2**20:,.1f} | {rest / self.customers:,.0f} |")
        for label, size in (("all", self.total), ("all but the states' bytes", self.models)):
            lines.append(
                f"| **{label}** | **{size / 2**20:,.1f}** | **{size / self.customers:,.0f}** |"
            )
        return "\n".join(lines)


def _owner(filename: str) -> str:
    """A file of the repository by its path in it, a package's by the package."""
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    if path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return path.name


def measure(count: int, customers: int, partitions: int) -> MemoryResult:
    # Made and encoded before tracing: the workload is not the worker's memory.
    wire = [(orjson.dumps(e), e["type"]) for e in mixed_events(count, customers=customers)]
    gc.collect()
    tracemalloc.start()
    replay = PartitionedReplay(partitions, Settings())
    for value, kind in wire:
        replay.apply(value, kind)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    by_file: dict[str, int] = defaultdict(int)
    for stat in snapshot.statistics("filename"):
        by_file[_owner(stat.traceback[0].filename)] += stat.size
    # The states' bytes are allocated by the model file that encodes them: counted apart.
    states_bytes = sum(sys.getsizeof(data) for data in replay.states.values())
    by_file["models/features.py"] -= states_bytes
    by_file[STATES] = states_bytes
    # The bench's own: the replay's dicts of states and customers by partition (the
    # worker's are RocksDB), its loop.
    for bench_file in ("bench/pipeline.py", "bench/memory.py"):
        by_file.pop(bench_file, None)
    return MemoryResult(events=count, customers=len(replay.states), by_file=dict(by_file))


def main() -> None:
    parser = workload_arguments(__doc__.splitlines()[0], events=300_000, customers=100_000)
    args = parser.parse_args()
    result = measure(args.events, args.customers, args.partitions)
    print(
        described(result.events, result.customers, args.partitions)
        + ", no Kafka; still allocated at the end (tracemalloc)"
    )
    print(result.table())


if __name__ == "__main__":
    main()
