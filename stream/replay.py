"""``crm-scorer replay``: run an event file through the worker's own per-event code,
in process, event time as the clock, no broker.

Output contract (other tools depend on these names):
- ``--scores-out``: CSV, one row per customer, scored at ``--as-of``.
- ``--predictions-out``: one JSON line per applied event, predicted before learning it.
- ``--alerts-out``: the alerts, one JSON line each.
"""

from __future__ import annotations

import copy
import csv
import pickle
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from models.alerting import AlertPolicy
from models.features import CustomerState
from models.retention import ModelConfig, RetentionModels
from schemas.alerts import RiskAlert
from schemas.events import FeedbackEvent
from schemas.wire import Rejected, decode_event
from stream.processor import EventProcessor, Processed, SurgeWatch, score_record
from stream.topics import partition_for

SCORE_COLUMNS = [
    "customer_id", "churn_risk", "churn_tier", "segment", "clv", "value_at_risk",
    "net_value", "revenue", "cost", "purchase_count", "refund_count",
    "days_since_last_purchase", "tenure_days", "browse_count", "feedback_count",
    "mean_rating", "sentiment", "satisfaction", "satisfaction_trend",
    "spend_forecast_30d", "offers", "influence", "influence_degree",
]  # fmt: skip


@dataclass
class ReplayResult:
    #: One per partition, as the worker keeps them (docs/operations.md).
    partition_models: list[RetentionModels]
    states: dict[str, CustomerState]
    as_of_ms: int | None
    applied: int = 0
    duplicates: int = 0
    after_as_of: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    scans: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def models(self) -> RetentionModels:
        """The models, when one partition holds every customer."""
        if len(self.partition_models) != 1:
            raise ValueError("replayed with several partitions: use models_of(customer_id)")
        return self.partition_models[0]

    def models_of(self, customer_id: str) -> RetentionModels:
        return self.partition_models[partition_for(customer_id, len(self.partition_models))]


def replay_lines(
    lines: Iterable[bytes],
    *,
    config: ModelConfig | None = None,
    models: RetentionModels | None = None,
    policy: AlertPolicy | None = None,
    scans: bool = True,
    as_of_ms: int | None = None,
    predictions: IO[bytes] | None = None,
    alerts: IO[bytes] | None = None,
    progress: IO[str] | None = None,
    partitions: int = 1,
) -> ReplayResult:
    """Apply every valid event up to ``as_of_ms`` (all when ``None``), then advance the
    models' clock to the as-of time so that labels mature up to it.

    As in the worker, quiet customers are re-scored at each scan time the clock passes
    (``scans=False`` skips that where only the models matter: it changes no model, and
    costs a re-score of every customer per day of event time), and feedback feeds the
    sentiment-surge detector.

    With ``partitions`` > 1 every partition has its own models (copies of ``models``),
    which learn from that partition's customers only, as in a worker with that many
    input partitions; the clock of every partition moves with each event."""
    states: dict[str, CustomerState] = {}
    models = models or RetentionModels(config)
    partition_states = [states] if partitions == 1 else [{} for _ in range(partitions)]
    partition_models = (
        [models] if partitions == 1 else [copy.deepcopy(models) for _ in range(partitions)]
    )
    processors = [
        EventProcessor(scorer=m, policy=policy, customers=s.values)
        for m, s in zip(partition_models, partition_states, strict=True)
    ]
    surge = SurgeWatch()
    result = ReplayResult(partition_models=partition_models, states=states, as_of_ms=as_of_ms)

    def publish(out: Processed, partition: int) -> None:
        states[out.state.customer_id] = out.state
        partition_states[partition][out.state.customer_id] = out.state
        result.suppressed.update(kind.value for kind in out.suppressed)
        found: list[RiskAlert] = list(out.alerts)
        if out.feedback_negative is not None:
            surge_alert = surge.observe(out.ts_ms, out.feedback_negative)
            if surge_alert is not None:
                found.append(surge_alert)
        for alert in found:
            result.alerts[alert.kind.value] += 1
            if alerts is not None:
                alerts.write(alert.model_dump_json().encode() + b"\n")

    def scan(partition: int, at_ms: int) -> None:
        result.scans += 1
        for state in list(partition_states[partition].values()):
            out = processors[partition].rescore(state, at_ms)
            if out is not None:
                publish(out, partition)

    started = last_report = time.monotonic()
    last_ts: int | None = None
    for number, line in enumerate(lines, start=1):
        try:
            event = decode_event(line)
        except Rejected as rej:
            result.rejected[rej.code.value] += 1
            if progress is not None:
                print(f"line {number} rejected ({rej.code.value}): {rej.reason}", file=progress)
            continue
        if as_of_ms is not None and event.ts_ms > as_of_ms:
            result.after_as_of += 1
            continue
        partition = partition_for(event.customer_id, partitions) if partitions > 1 else 0
        out = processors[partition].process(states.get(event.customer_id), event)
        if out is None:
            result.duplicates += 1
            continue
        result.applied += 1
        last_ts = event.ts_ms if last_ts is None else max(last_ts, event.ts_ms)
        if predictions is not None:
            row: dict[str, Any] = {
                "event_id": event.event_id,
                "customer_id": event.customer_id,
                "type": event.type,
                "churn_risk": out.scores.churn_risk,
            }
            if isinstance(event, FeedbackEvent):
                row["sentiment"] = out.scores.sentiment
                row["sentiment_proba"] = out.scores.sentiment_proba
            predictions.write(orjson.dumps(row) + b"\n")
        publish(out, partition)
        for other, processor in enumerate(processors):
            if other != partition:
                processor.advance(event.ts_ms)
            due = processor.scan_due() if scans else None
            if due is not None:
                scan(other, due)
        if progress is not None and time.monotonic() - last_report > 2:
            last_report = time.monotonic()
            rate = number / (last_report - started)
            print(f"{number:,} lines, {rate:,.0f}/s, {len(states):,} customers", file=progress)
    result.as_of_ms = as_of_ms if as_of_ms is not None else last_ts
    if result.as_of_ms is not None:
        for processor in processors:
            processor.scorer.advance(result.as_of_ms, processor.customers)
    result.seconds = time.monotonic() - started
    return result


def final_scores(result: ReplayResult) -> list[dict[str, Any]]:
    """One row per customer, scored at the as-of time."""
    if result.as_of_ms is None:
        return []
    rows = []
    for state in result.states.values():
        models = result.models_of(state.customer_id)
        scores = models.score_one(state, result.as_of_ms)
        record = score_record(state, scores, result.as_of_ms, models.model_version, None)
        row = record.model_dump()
        row["offers"] = " ".join(row["offers"] or ())  # a CSV cell: SKUs, best first
        rows.append({name: row[name] for name in SCORE_COLUMNS})
    return rows


def write_scores_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def save_models(models: RetentionModels, path: Path) -> None:
    with path.open("wb") as fh:
        pickle.dump(models, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_models(path: Path) -> RetentionModels:
    """Models saved by ``replay --models-out`` (trusted files only: this is pickle)."""
    with path.open("rb") as fh:
        models = pickle.load(fh)
    if not isinstance(models, RetentionModels):
        raise TypeError(f"{path} does not hold RetentionModels")
    return models


def report(result: ReplayResult, out: IO[str] = sys.stderr) -> None:
    rate = result.applied / result.seconds if result.seconds else 0.0
    print(
        f"applied {result.applied:,} events ({rate:,.0f}/s), {len(result.states):,} customers, "
        f"{result.scans:,} scans, alerts {dict(result.alerts)}, "
        f"held back by cooldown {dict(result.suppressed)}, {result.duplicates:,} duplicates, "
        f"{result.after_as_of:,} after as-of, rejected {sum(result.rejected.values()):,} "
        f"{dict(result.rejected) if result.rejected else ''}",
        file=out,
    )
