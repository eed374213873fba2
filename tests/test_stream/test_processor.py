from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import orjson

from bench.workload import mixed_events
from models.features import AnyEvent, CustomerState, SourcePosition, may_be_rescored
from models.scoring import Scores
from schemas.events import parse_event_object
from schemas.scores import CustomerScore
from stream.processor import EventProcessor, score_fields
from tests.factories import BASE_TS, DAY, feedback, purchase


class RecordingScorer:
    """A scorer that records the order of calls, to pin test-then-train."""

    model_version = "recording/1"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def advance(self, now_ms: int, customers: Callable[[], Iterable[CustomerState]]) -> None:
        self.calls.append("advance")

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        self.calls.append(f"learn:{event.event_id}")

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        self.calls.append(f"score:{event.event_id if event else '-'}")
        return Scores(churn_risk=0.25, churn_tier="low", clv=100.0, value_at_risk=25.0)


def test_scores_before_learning_and_fills_the_public_record() -> None:
    scorer = RecordingScorer()
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    processor = EventProcessor(scorer=scorer, clock=lambda: fixed)
    first = processor.process(None, parse_event_object(purchase("p1", "c", BASE_TS, 40.0)))
    assert first is not None
    out = processor.process(
        first.state,
        parse_event_object(feedback("f1", "c", BASE_TS + 2 * DAY, "no", rating=1)),
        SourcePosition("crm.feedback", 0, 7),
    )
    assert out is not None
    assert scorer.calls == ["advance", "score:p1", "learn:p1", "advance", "score:f1", "learn:f1"]
    score = out.score
    assert score.model_version == "recording/1"
    assert score.days_since_last_purchase == 2.0
    assert score.purchase_count == 1 and score.feedback_count == 1
    assert score.churn_risk == 0.25 and score.value_at_risk == 25.0
    assert [a.kind.value for a in out.alerts] == ["negative_feedback"]
    assert out.alerts[0].emitted_at == fixed
    assert out.alerts[0].churn_risk == 0.25


def test_a_redelivered_event_publishes_nothing() -> None:
    processor = EventProcessor()
    event = parse_event_object(purchase("p1", "c", BASE_TS, 40.0))
    first = processor.process(None, event, SourcePosition("t", 0, 1))
    assert first is not None
    assert processor.process(first.state, event, SourcePosition("t", 0, 1)) is None


class RisingScorer(RecordingScorer):
    """Every score after the first says: high tier."""

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        super().score_one(state, now_ms, event)
        first = not state.churn_tier
        return Scores(
            churn_risk=0.2 if first else 0.9,
            churn_tier="low" if first else "high",
            churn_ready=True,
            churn_drivers=(("recency_log", "no purchase for 3 days", 1.0),),
        )


class FlippingScorer(RecordingScorer):
    """Every score changes the customer's tier."""

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        return Scores(churn_tier="low" if state.churn_tier == "high" else "high")


def test_scans_are_due_once_per_interval_however_far_the_clock_jumps() -> None:
    processor = EventProcessor(scorer=RecordingScorer(), scan_interval_days=1.0)
    assert processor.scan_due() is None
    processor.advance(BASE_TS)
    day_start = BASE_TS - BASE_TS % DAY
    assert processor.scan_due() == day_start  # a (re)started processor catches up at once
    assert processor.scan_due() is None
    processor.advance(BASE_TS + DAY // 2)
    due = []
    for step in (DAY, 2 * DAY, 2 * DAY + 1, 30 * DAY):
        processor.advance(BASE_TS + step)
        due.append(processor.scan_due())
    assert due == [day_start + DAY, day_start + 2 * DAY, None, day_start + 30 * DAY]
    processor.advance(BASE_TS)  # never backwards
    assert processor.clock_ms == BASE_TS + 30 * DAY


def test_a_quiet_customer_is_rescored_and_alerted_once() -> None:
    processor = EventProcessor(scorer=RisingScorer())
    first = processor.process(None, parse_event_object(purchase("p1", "c", BASE_TS, 40.0)))
    assert first is not None and first.alerts == []
    state = first.state
    assert processor.rescore(state, BASE_TS) is None  # seen at that time: not quiet
    early = processor.rescore(state, BASE_TS + 3 * DAY)
    assert early is not None and early.alerts == []  # high now, but quiet for 3 days only
    assert early.state.churn_tier == "high" and state.churn_tier == "low"  # input untouched
    out = processor.rescore(early.state, BASE_TS + 10 * DAY)  # a week quiet: the alert
    assert out is not None
    [alert] = out.alerts
    assert (alert.kind.value, alert.event_id, alert.churn_tier) == ("churn_risk", None, "high")
    assert out.score.event_id is None and out.score.churn_tier == "high"
    assert processor.rescore(out.state, BASE_TS + 11 * DAY) is None  # nothing new: silent


def test_a_scan_skips_undecoded_only_customers_a_rescore_skips() -> None:
    """``may_be_rescored`` (read from a state's bytes) rules out no customer a rescore
    would publish for, on 3,000 events of the bench's workload, a week later, with a
    scorer whose every score is news."""
    processor = EventProcessor(scorer=FlippingScorer())
    states: dict[str, CustomerState] = {}
    for n, raw in enumerate(mixed_events(3_000, customers=300)):
        event = parse_event_object(raw)
        out = processor.process(states.get(event.customer_id), event, SourcePosition("t", 0, n))
        assert out is not None
        states[event.customer_id] = out.state
    later = max(s.last_seen_ms for s in states.values()) + 7 * DAY
    outcomes = {
        (may_be_rescored(s.to_bytes()), processor.rescore(s, later) is not None)
        for s in states.values()
    }
    assert outcomes == {(False, False), (True, True)}


def test_the_published_score_is_the_models_json_on_the_bench_workload() -> None:
    """Every score of 3,000 events of the bench's mixed workload (synthetic customers,
    real review texts), as published, parses to what ``CustomerScore`` would write."""
    processor = EventProcessor()
    states: dict[str, CustomerState] = {}
    compared = 0
    for n, raw in enumerate(mixed_events(3_000, customers=300)):
        event = parse_event_object(raw)
        out = processor.process(states.get(event.customer_id), event, SourcePosition("t", 0, n))
        assert out is not None
        states[event.customer_id] = out.state
        version = processor.scorer.model_version
        fields = score_fields(out.state, out.scores, out.ts_ms, version, event.event_id)
        record = CustomerScore(**fields).model_dump_json()
        assert orjson.loads(out.score_json) == orjson.loads(record)
        compared += 1
    assert compared == 3_000
