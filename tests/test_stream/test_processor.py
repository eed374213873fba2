from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from models.features import AnyEvent, CustomerState, SourcePosition
from models.scoring import Scores
from schemas.events import parse_event_object
from stream.processor import EventProcessor
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
