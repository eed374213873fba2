"""The seam between the stream and the learning: a scorer learns from each applied
event and scores a customer's state at an event time.

Models plug in by implementing :class:`CustomerScorer`; nothing in ``stream/`` changes.

>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> e = parse_event_object({"type": "purchase", "event_id": "e1", "customer_id": "c1",
...                         "ts": 1_300_000_000_000, "amount": 20.0})
>>> scorer = StateOnlyScorer()
>>> state = apply_event(None, e)
>>> scorer.learn_one(None, state, e)
>>> scorer.score_one(state, e.ts_ms) == Scores()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from models.features import AnyEvent, CustomerState


@dataclass(frozen=True, slots=True)
class Scores:
    """What the models say about one customer; ``None`` where a model has no opinion."""

    churn_risk: float | None = None
    churn_tier: Literal["low", "medium", "high"] | None = None
    segment: str | None = None
    sentiment: Literal["positive", "negative"] | None = None
    sentiment_proba: float | None = None
    clv: float | None = None
    value_at_risk: float | None = None


class CustomerScorer(Protocol):
    """Online models over customer state; learns and predicts one event at a time."""

    model_version: str

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        """Learn from an event that moved a customer from ``before`` to ``after``."""

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        """Score ``state`` at event time ``now_ms`` (``event``: the one just applied)."""


class StateOnlyScorer:
    """A scorer with no models: the stream still carries state and value, scores stay null."""

    model_version = "state-only/1"

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        return None

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        return Scores()
