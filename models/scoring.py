"""The seam between the stream and the learning: a scorer learns from each applied
event and scores a customer's state at an event time.

Models plug in by implementing :class:`CustomerScorer`; nothing in ``stream/`` changes.
``models.retention.RetentionModels`` is the implementation the worker and ``replay`` use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple, Protocol

from models.features import AnyEvent, CustomerState


class Scores(NamedTuple):
    """What the models say about one customer; ``None`` where a model has no opinion.
    Immutable, and a named tuple: one is made per event, in a third of the time a
    frozen dataclass takes (1.2 against 3.1 us; it sets each field through
    ``object.__setattr__``)."""

    churn_risk: float | None = None
    churn_tier: Literal["low", "medium", "high"] | None = None
    segment: str | None = None
    segment_id: int | None = None
    #: The segment model has learned enough for a fall between segments to raise an alert.
    segment_ready: bool = False
    #: The churn model has learned enough for its tiers to raise alerts.
    churn_ready: bool = False
    #: Scored without an event (a scan), with a ready model and a medium or high tier:
    #: what pushed the risk up most, as (feature, text, push on the logit).
    churn_drivers: tuple[tuple[str, str, float], ...] = ()
    sentiment: Literal["positive", "negative"] | None = None
    sentiment_proba: float | None = None
    #: The sentiment model has learned enough for its prediction to raise an alert.
    sentiment_ready: bool = False
    clv: float | None = None
    value_at_risk: float | None = None
    #: Expected spend in the demand horizon (30 days), for a customer who has bought.
    spend_forecast: float | None = None
    #: The demand model has learned enough matured targets for its forecast to be used.
    demand_ready: bool = False
    #: Products to offer, best first: set when an order was just scored, else None.
    offers: tuple[str, ...] | None = None
    #: Co-purchase influence (decayed weight of the orders that followed theirs) and the
    #: number of customers linked to this one.
    influence: float | None = None
    influence_degree: int | None = None


class CustomerScorer(Protocol):
    """Online models over customer state; learns and predicts one event at a time."""

    model_version: str

    def advance(self, now_ms: int, customers: Callable[[], Iterable[CustomerState]]) -> None:
        """Move the models' event-time clock; ``customers`` lists the known states."""

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        """Learn from an event that moved a customer from ``before`` to ``after``."""

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        """Score ``state`` at event time ``now_ms`` (``event``: the one just applied)."""
