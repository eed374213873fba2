"""The per-event work of the worker, with no Kafka in it: state update, learning,
scoring and alert rules. The Faust agents and ``replay`` both call this, so what is
tested here is what runs in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from models.alerting import AlertPolicy, event_time
from models.features import AnyEvent, CustomerState, SourcePosition, apply_event, record_sentiment
from models.retention import RetentionModels
from models.scoring import CustomerScorer, Scores
from schemas.alerts import RiskAlert
from schemas.events import FeedbackEvent
from schemas.scores import CustomerScore


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of one applied event."""

    state: CustomerState
    scores: Scores
    score: CustomerScore
    alerts: list[RiskAlert]


def score_record(
    state: CustomerState,
    scores: Scores,
    now_ms: int,
    model_version: str,
    event_id: str | None,
) -> CustomerScore:
    """The public ``CustomerScore`` for a state and what the models say about it."""
    return CustomerScore(
        customer_id=state.customer_id,
        as_of=event_time(now_ms),
        event_id=event_id,
        model_version=model_version,
        first_seen=event_time(state.first_seen_ms),
        last_seen=event_time(state.last_seen_ms),
        last_purchase=None
        if state.last_purchase_ms is None
        else event_time(state.last_purchase_ms),
        days_since_last_purchase=state.days_since_last_purchase(now_ms),
        tenure_days=state.tenure_days(now_ms),
        purchase_count=state.purchase_count,
        refund_count=state.refund_count,
        revenue=state.revenue,
        cost=state.cost,
        net_value=state.net_value,
        browse_count=state.browse_count,
        cart_adds=state.cart_adds,
        feedback_count=state.feedback_count,
        mean_rating=state.mean_rating,
        churn_risk=scores.churn_risk,
        churn_tier=scores.churn_tier,
        segment=scores.segment,
        sentiment=None
        if state.mean_sentiment is None
        else "positive"
        if state.mean_sentiment >= 0.5
        else "negative",
        clv=scores.clv,
        value_at_risk=scores.value_at_risk,
    )


class EventProcessor:
    """Applies one validated event to a customer's state and says what to publish.

    ``customers`` lists every customer state this processor owns (the worker's table
    partitions, or replay's dict); the models read it at their event-time ticks.

    >>> from schemas.events import parse_event_object
    >>> e = parse_event_object({"type": "browse", "event_id": "b1", "customer_id": "c9",
    ...                         "ts": "2011-03-01T09:00:00Z", "action": "add_to_cart"})
    >>> out = EventProcessor().process(None, e)
    >>> out.state.cart_adds, out.score.customer_id, out.alerts
    (1, 'c9', [])
    """

    def __init__(
        self,
        scorer: CustomerScorer | None = None,
        policy: AlertPolicy | None = None,
        clock: Callable[[], datetime] = wall_clock,
        customers: Callable[[], Iterable[CustomerState]] = tuple,
    ) -> None:
        self.scorer: CustomerScorer = scorer if scorer is not None else RetentionModels()
        self.policy = policy if policy is not None else AlertPolicy()
        self.clock = clock
        self.customers = customers

    def process(
        self,
        before: CustomerState | None,
        event: AnyEvent,
        position: SourcePosition | None = None,
    ) -> Processed | None:
        """``None`` when the event was already applied (a redelivery): publish nothing."""
        after = apply_event(before, event, position)
        if after is None:
            return None
        self.scorer.advance(event.ts_ms, self.customers)
        # Test-then-train: score with what the models knew before this event.
        scores = self.scorer.score_one(after, event.ts_ms, event)
        if scores.segment_id is not None:
            after.segment_id = scores.segment_id
        if scores.churn_tier is not None:
            after.churn_tier = scores.churn_tier
        if (
            isinstance(event, FeedbackEvent)
            and event.rating is None
            and scores.sentiment_proba is not None
        ):
            record_sentiment(after, scores.sentiment_proba)
        self.scorer.learn_one(before, after, event)
        version = self.scorer.model_version
        alerts = self.policy.evaluate(before, after, event, scores, version, self.clock())
        score = score_record(after, scores, event.ts_ms, version, event.event_id)
        return Processed(state=after, scores=scores, score=score, alerts=alerts)
