"""The worker's per-event work in one process, with no Kafka: what any design of the
worker pays per event before the framework's own costs, and what to profile first.

    python -m bench.pipeline [--events 100000] [--customers 50000] [--partitions 8]
    py-spy record -o pipeline.svg -- python -m bench.pipeline     # `profile` extra

Each event of the benchmark workload (bench/workload.py: synthetic customers, stream and
browsing; real review texts) is encoded as the producer sends it, then decoded, routed
to its partition's :class:`~stream.processor.EventProcessor` (one per partition, as in
the worker), applied, and its state and score serialised as the worker writes them (the
state kept as those bytes and decoded for the customer's next event and the models'
ticks, as the worker reads its table: :class:`PartitionedReplay`). The run is split in
a warm-up (the models fill up, as on a long-running worker) and the measured part; the
table gives both, per event and per kind.
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
from stream.processor import EventProcessor, Processed
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


class PartitionedReplay:
    """Events through one :class:`~stream.processor.EventProcessor` per partition, routed
    as the worker routes them, each customer's state kept as the bytes the worker
    stores (decoded for each event and for the models' ticks, as the worker reads them
    from its table). The per-event work of bench.pipeline and bench.memory."""

    def __init__(self, partitions: int, settings: Settings) -> None:
        self.partitions = partitions
        self.states: dict[str, bytes] = {}
        self.owned: dict[int, list[str]] = defaultdict(list)
        self.offsets: dict[int, int] = defaultdict(int)
        policy = AlertPolicy(settings.alerts())

        def processor(p: int) -> EventProcessor:
            def customers_of() -> list[CustomerState]:
                return [CustomerState.from_bytes(self.states[c]) for c in self.owned[p]]

            return EventProcessor(
                RetentionModels(settings.models()), policy, customers=customers_of
            )

        self.processors = {p: processor(p) for p in range(partitions)}

    def apply(self, value: bytes, kind: EventType) -> Processed | None:
        """One event as the producer sent it; ``None`` for a duplicate."""
        event = decode_event(value, expected_type=kind)
        customer = event.customer_id
        p = partition_for(customer, self.partitions)
        self.offsets[p] += 1
        stored = self.states.get(customer)
        before = CustomerState.from_bytes(stored) if stored is not None else None
        out = self.processors[p].process(before, event, SourcePosition(kind, p, self.offsets[p]))
        if out is None:
            return None
        self.states[customer] = out.state.to_bytes()
        if stored is None:
            self.owned[p].append(customer)
        return out


def measure(
    count: int, customers: int, partitions: int, warmup_share: float = 0.5
) -> PipelineResult:
    """Run ``count`` events; time the part after the first ``warmup_share`` of them."""
    replay = PartitionedReplay(partitions, Settings())
    wire: list[tuple[bytes, EventType]] = [
        (orjson.dumps(e), e["type"]) for e in mixed_events(count, customers=customers)
    ]
    warmup = int(count * warmup_share)
    result = PipelineResult(warmup=warmup, events=count - warmup, seconds=0.0)
    for n, (value, kind) in enumerate(wire):
        started = time.perf_counter()
        out = replay.apply(value, kind)
        if out is None:
            continue
        for alert in out.alerts:
            alert.model_dump_json()
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
