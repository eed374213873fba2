"""A worker's state at scale: resident memory per customer, and the time a new or
restarted worker takes to be ready with that state, on the embedded broker.

    python -m bench.state [--events 300000] [--customers 100000]
    python -m bench.state --data ../shared/data       # real purchases and reviews
    python -m bench.state --batch-bytes 16384         # production's record batches

Workload: bench/workload.py (synthetic customers and stream, real review texts), or a
data set's events (eventdata). The worker runs as the tests run it on this broker (one
record per producer batch, stream/workerproc.py), so that changelog recovery is exact;
the recovered customer count is checked against the input. ``--batch-bytes`` gives the
worker record batches as in production instead: recovery then reads whole batches, as it
would from Apache Kafka, but on this broker it may stop short of the last batch's records
(stream/workerproc.py says why), so only the customer count is checked; and the restart
on the same disk is skipped: Faust refuses it there (a ConsistencyError: the offset it
stored is above the highwater this broker reports).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.workload import mixed_events
from eventdata.events import build_events
from stream.broker import EmbeddedBroker
from stream.producer import produce_lines
from stream.settings import Settings
from stream.workerproc import WorkerProcess, bucket_holding, worker_env

MIB = 1024 * 1024


@dataclass(frozen=True)
class StateResult:
    events: int
    customers: int
    apply_s: float
    #: crm_event_loop_delay_seconds of the first worker, after applying: le -> count.
    loop_delay: dict[float, float]
    ready_rss: float
    loaded_rss: float
    #: crm_rocksdb_memory_bytes then: RocksDB's cached blocks and memtables, a budget
    #: (CRM_ROCKSDB_MEMORY_BYTES) rather than a cost per customer.
    loaded_rocksdb: float
    #: None: not measured (producer batches on this broker, see above).
    restart_ready_s: float | None
    new_disk_ready_s: float
    recovered: float

    def table(self) -> str:
        per_customer = (self.loaded_rss - self.ready_rss) / self.customers
        beside_rocksdb = (self.loaded_rss - self.loaded_rocksdb - self.ready_rss) / self.customers
        restart = (
            "not measured on this broker"
            if self.restart_ready_s is None
            else f"{self.restart_ready_s:,.1f} s"
        )
        return "\n".join(
            [
                "| measure | value |",
                "| --- | ---: |",
                f"| events applied (first worker) | {self.events:,} in {self.apply_s:,.0f} s "
                f"({self.events / self.apply_s:,.0f}/s) |",
                f"| event loop held in one piece while applying: longest | "
                f"{self.longest_delay()} |",
                f"| ... 0.25-s probes late by over 1 s | "
                f"{self.loop_delay[math.inf] - self.loop_delay[1.0]:,.0f} of "
                f"{self.loop_delay[math.inf]:,.0f} |",
                f"| resident memory, ready, no state | {self.ready_rss / MIB:,.0f} MiB |",
                f"| resident memory, {self.customers:,} customers | "
                f"{self.loaded_rss / MIB:,.0f} MiB |",
                f"| ... of which RocksDB's blocks and memtables | "
                f"{self.loaded_rocksdb / MIB:,.0f} MiB |",
                f"| growth per customer | {per_customer:,.0f} B |",
                f"| ... RocksDB left out | {beside_rocksdb:,.0f} B |",
                f"| per 100,000 customers | {per_customer * 100_000 / MIB:,.0f} MiB |",
                f"| restart on the same disk (RocksDB): start to ready | {restart} |",
                f"| new worker, new disk (changelog replay): start to ready | "
                f"{self.new_disk_ready_s:,.1f} s |",
                f"| customers after recovery | {self.recovered:,.0f} of {self.customers:,} |",
            ]
        )

    def longest_delay(self) -> str:
        """The bucket of the longest probe delay (a histogram keeps no maximum)."""
        lower, upper = bucket_holding(self.loop_delay, 1.0)
        return f"over {lower:g} s" if upper == math.inf else f"{lower:g}-{upper:g} s"


def measure(
    events: list[dict[str, Any]], timeout_s: float = 3600, batch_bytes: int | None = None
) -> StateResult:
    customers = len({e["customer_id"] for e in events})
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        disk = Path(tmp) / "disk-1"

        def start(data_dir: Path, name: str) -> tuple[WorkerProcess, float]:
            batches = (
                {} if batch_bytes is None else {"CRM_PRODUCER_MAX_BATCH_BYTES": str(batch_bytes)}
            )
            env = worker_env(broker.bootstrap, data_dir, CRM_TABLE_STORE="rocksdb", **batches)
            worker = WorkerProcess(env, Path(tmp) / f"{name}.log")
            return worker, worker.wait_ready(timeout_s=timeout_s)

        first, _ = start(disk, "first")
        try:
            ready_rss = first.metric("process_resident_memory_bytes")
            started = time.monotonic()
            settings = Settings(kafka_bootstrap=broker.bootstrap)
            asyncio.run(produce_lines(settings, (orjson.dumps(e) for e in events)))
            left_s = timeout_s - (time.monotonic() - started)
            applied = first.wait_metric(
                "crm_events_total", lambda v: v >= len(events), left_s, poll_s=1
            )
            if applied < len(events):
                raise TimeoutError(f"not all {len(events):,} events applied in time")
            apply_s = time.monotonic() - started
            loop_delay = first.buckets("crm_event_loop_delay_seconds")
            # The customer gauge is refreshed every 15 s.
            first.wait_metric("crm_customers", lambda v: v >= customers, 60, poll_s=1)
            loaded_rss = first.metric("process_resident_memory_bytes")
            loaded_rocksdb = first.metric("crm_rocksdb_memory_bytes")
        finally:
            assert first.stop(timeout_s=120) == 0
        restart_s = None
        if batch_bytes is None:
            restarted, restart_s = start(disk, "restarted")
            restarted.stop(timeout_s=120)
        fresh, fresh_s = start(Path(tmp) / "disk-2", "fresh")
        try:
            recovered = fresh.wait_metric("crm_customers", lambda v: v >= customers, 60, poll_s=1)
        finally:
            fresh.stop(timeout_s=120)
    return StateResult(
        len(events),
        customers,
        apply_s,
        loop_delay,
        ready_rss,
        loaded_rss,
        loaded_rocksdb,
        restart_s,
        fresh_s,
        recovered,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="a data set's events instead")
    parser.add_argument(
        "--batch-bytes",
        type=int,
        help="the worker's producer batch size (default: one record per batch, as the tests)",
    )
    args = parser.parse_args()
    if args.data:
        events = build_events(args.data)
        source = f"{args.data} (real purchases and reviews, synthetic browsing)"
    else:
        events = mixed_events(args.events, customers=args.customers)
        source = "bench/workload.py (synthetic customers and stream, real review texts)"
    result = measure(events, batch_bytes=args.batch_bytes)
    batches = (
        "one record per batch"
        if args.batch_bytes is None
        else f"producer batches of {args.batch_bytes:,} bytes"
    )
    print(f"{len(events):,} events from {source}; the worker's records: {batches}")
    print(result.table())


if __name__ == "__main__":
    main()
