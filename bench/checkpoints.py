"""How big a partition's model checkpoint gets, and how long it takes to write and to
restore, after replaying a data set with the worker's partitioning.

    python -m bench.checkpoints [--data ../shared/data] [--partitions 8]

Real purchases and review texts; the browsing is synthetic (eventdata/browsing.py).
Scans are off: they change no model. Results in docs/operations.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import orjson

from eventdata.events import DEMO_DATA, build_events
from models.checkpoint import ModelCheckpoint, compress, pickle_model
from models.retention import MODEL_VERSION, RetentionModels
from stream.replay import replay_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_DATA)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    events = build_events(args.data)
    result = replay_lines(
        (orjson.dumps(e) for e in events), partitions=args.partitions, scans=False
    )
    sizes: list[int] = []
    pickles: list[float] = []
    zlibs: list[float] = []
    restores: list[float] = []
    for partition, models in enumerate(result.partition_models):
        started = time.perf_counter()
        pickled = pickle_model(models)
        pickles.append(time.perf_counter() - started)
        started = time.perf_counter()
        payload = compress(pickled)
        zlibs.append(time.perf_counter() - started)
        data = ModelCheckpoint.build(
            payload, MODEL_VERSION, partition=partition, offsets={}, clock_ms=None,
            next_scan_ms=None, written_at_ms=0,
        ).to_bytes()  # fmt: skip
        started = time.perf_counter()
        ModelCheckpoint.from_bytes(data).restore(RetentionModels, MODEL_VERSION)
        restores.append(time.perf_counter() - started)
        sizes.append(len(data))
    customers = len(result.states)
    print(f"{len(events):,} events, {customers:,} customers, {args.partitions} partitions")
    print("| per partition | median | max |\n| --- | ---: | ---: |")
    print(f"| checkpoint bytes | {statistics.median(sizes):,.0f} | {max(sizes):,} |")
    print(
        f"| pickle s (in the event loop) | {statistics.median(pickles):.3f} | {max(pickles):.3f} |"
    )
    print(f"| compress s (in a thread) | {statistics.median(zlibs):.3f} | {max(zlibs):.3f} |")
    print(f"| restore s | {statistics.median(restores):.3f} | {max(restores):.3f} |")
    print(f"all partitions: {sum(sizes):,} bytes, {sum(sizes) / customers:,.0f} bytes per customer")


if __name__ == "__main__":
    main()
