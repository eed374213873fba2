"""The worker's per-event work in one process, with no Kafka: what any design of the
worker pays per event before the framework's own costs, and what to profile first.

    python -m bench.pipeline [--events 100000] [--customers 50000] [--partitions 8]
    py-spy record -o pipeline.svg -- python -m bench.pipeline     # `profile` extra

Each event of the benchmark workload (bench/workload.py: synthetic customers, stream and
browsing; real review texts) is encoded as the producer sends it, then decoded, routed
to its partition's :class:`~stream.processor.EventProcessor` (one per partition, as in
the worker), applied, and its state and score serialised as the worker writes them. The
run is split in a warm-up (the models fill up, as on a long-running worker) and the
measured part; the table gives both, per event and per kind.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from bench.workload import described, mixed_events, workload_arguments
from models.alerting import AlertPolicy
from models.features import CustomerState, SourcePosition
from models.retention import RetentionModels
from schemas.events import EventType
from schemas.wire import decode_event
from stream.processor import EventProcessor
from stream.settings import Settings
from stream.topics import partition_for


@dataclass
class PipelineResult:
    warmup: int
    events: int
    seconds: float
    #: Seconds spent per event type in the measured part, and how many.
    by_type: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    alerts: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def us_per_event(self) -> float:
        return 1e6 * self.seconds / self.events

    def table(self) -> str:
        rows = [
            "| events | us per event | events/s |",
            "| --- | ---: | ---: |",
            f"| all ({self.events:,}, after {self.warmup:,} warm-up) "
            f"| {self.us_per_event:,.0f} | {self.rate:,.0f} |",
        ]
        for kind in sorted(self.by_type):
            n = self.counts[kind]
            us = 1e6 * self.by_type[kind] / n
            rows.append(f"| {kind} ({n:,}) | {us:,.0f} | {1e6 / us:,.0f} |")
        return "\n".join(rows)


def measure(
    count: int, customers: int, partitions: int, warmup_share: float = 0.5
) -> PipelineResult:
    """Run ``count`` events; time the part after the first ``warmup_share`` of them."""
    settings = Settings()
    events = mixed_events(count, customers=customers)
    states: dict[str, CustomerState] = {}
    owned: dict[int, list[str]] = defaultdict(list)
    policy = AlertPolicy(settings.alerts())

    def processor(p: int) -> EventProcessor:
        def customers_of() -> list[CustomerState]:
            return [states[c] for c in owned[p]]

        return EventProcessor(RetentionModels(settings.models()), policy, customers=customers_of)

    processors = {p: processor(p) for p in range(partitions)}
    wire: list[tuple[bytes, EventType]] = [(orjson.dumps(e), e["type"]) for e in events]
    warmup = int(count * warmup_share)
    result = PipelineResult(warmup=warmup, events=count - warmup, seconds=0.0)
    offsets: dict[int, int] = defaultdict(int)
    for n, (value, kind) in enumerate(wire):
        started = time.perf_counter()
        event = decode_event(value, expected_type=kind)
        customer = event.customer_id
        p = partition_for(customer, partitions)
        offsets[p] += 1
        before = states.get(customer)
        out = processors[p].process(before, event, SourcePosition(kind, p, offsets[p]))
        if out is None:
            continue
        state_bytes = out.state.to_bytes()
        for alert in out.alerts:
            alert.model_dump_json()
        states[customer] = CustomerState.from_bytes(state_bytes)
        if before is None:
            owned[p].append(customer)
        if n >= warmup:
            spent = time.perf_counter() - started
            result.seconds += spent
            result.by_type[kind] = result.by_type.get(kind, 0.0) + spent
            result.counts[kind] = result.counts.get(kind, 0) + 1
            result.alerts += len(out.alerts)
    return result


def main() -> None:
    parser = workload_arguments(__doc__.splitlines()[0], events=100_000, customers=50_000)
    args = parser.parse_args()
    result = measure(args.events, args.customers, args.partitions)
    print(described(args.events, args.customers, args.partitions) + ", no Kafka")
    print(result.table())


if __name__ == "__main__":
    main()
