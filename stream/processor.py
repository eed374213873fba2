"""The per-event work of the worker, with no Kafka in it: state update, learning,
scoring and alert rules. The Faust agents and ``replay`` both call this, so what is
tested here is what runs in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from models.alerting import AlertDecision, AlertPolicy, event_time, surge_alert
from models.features import (
    DAY_MS,
    NEGATIVE_RATING_MAX,
    AnyEvent,
    CustomerState,
    SourcePosition,
    apply_event,
    copy_state,
    record_sentiment,
)
from models.retention import RetentionModels
from models.satisfaction import feedback_observation, record_satisfaction, satisfaction_at
from models.scoring import CustomerScorer, Scores
from models.surge import SentimentSurge
from schemas.alerts import AlertKind, RiskAlert
from schemas.events import FeedbackEvent
from schemas.scores import CustomerScore, score_json


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Processed(NamedTuple):
    """The outcome of one applied event (or one scan of a quiet customer). A named tuple,
    as :class:`models.scoring.Scores` is: cheaper to make than a frozen dataclass."""

    state: CustomerState
    ts_ms: int  # event time of the event, or of the scan
    scores: Scores
    #: The public score record, as published (``schemas.scores.score_json``).
    score_json: bytes
    alerts: list[RiskAlert]
    #: Alert kinds the per-customer cooldown held back.
    suppressed: list[AlertKind]
    #: For feedback: negative (rating, or predicted when unrated) or not; else None.
    feedback_negative: bool | None = None

    @property
    def score(self) -> CustomerScore:
        """The published record, parsed (for tests and tools; the worker sends the JSON)."""
        return CustomerScore.model_validate_json(self.score_json)


def feedback_negative(event: AnyEvent, scores: Scores) -> bool | None:
    """Whether feedback counts as negative for the surge detector (None: no opinion)."""
    if not isinstance(event, FeedbackEvent):
        return None
    if event.rating is not None:
        return event.rating <= NEGATIVE_RATING_MAX
    if scores.sentiment_ready and scores.sentiment_proba is not None:
        return scores.sentiment_proba < 0.5
    return None


class SurgeWatch:
    """The sentiment-surge detector over all customers' feedback, with its alerts."""

    def __init__(
        self,
        detector: SentimentSurge | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.detector = detector or SentimentSurge()
        self.clock = clock or wall_clock

    def observe(self, ts_ms: int, negative: bool) -> RiskAlert | None:
        surge = self.detector.learn_one(ts_ms, negative)
        if surge is None:
            return None
        return surge_alert(surge, SentimentSurge.VERSION, self.clock())


def score_fields(
    state: CustomerState,
    scores: Scores,
    now_ms: int,
    model_version: str,
    event_id: str | None,
) -> dict[str, Any]:
    """The fields of the public ``CustomerScore`` for a state and what the models say
    about it."""
    satisfaction = satisfaction_at(state, now_ms)
    return dict(
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
        satisfaction=None if satisfaction is None else round(satisfaction.index, 2),
        satisfaction_trend=None if satisfaction is None else round(satisfaction.trend, 2),
        spend_forecast_30d=round(scores.spend_forecast, 2)
        if scores.demand_ready and scores.spend_forecast is not None
        else None,
        offers=state.offers or None,
        influence=None if scores.influence is None else round(scores.influence, 3),
        influence_degree=scores.influence_degree,
    )


def score_record(
    state: CustomerState,
    scores: Scores,
    now_ms: int,
    model_version: str,
    event_id: str | None,
) -> CustomerScore:
    """The public ``CustomerScore`` for a state and what the models say about it."""
    return CustomerScore(**score_fields(state, scores, now_ms, model_version, event_id))


class EventProcessor:
    """Applies one validated event to a customer's state and says what to publish.

    ``customers`` lists the customer states this processor owns (the worker's table
    partitions, or replay's dict); the models read it at their event-time ticks, which
    skip customers who never bought (they may be left out).

    The event-time clock is the event's own time in ``replay``, and the low watermark of
    the input partitions in the worker. Every ``scan_interval_days`` of it,
    :meth:`scan_due` says a scan of quiet customers is due (:meth:`rescore` each).

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
        scan_interval_days: float = 1.0,
    ) -> None:
        self.scorer: CustomerScorer = scorer if scorer is not None else RetentionModels()
        self.policy = policy if policy is not None else AlertPolicy()
        self.clock = clock
        self.customers = customers
        self.scan_interval_ms = int(scan_interval_days * DAY_MS)
        self.clock_ms: int | None = None
        self.next_scan_ms: int | None = None

    def advance(self, now_ms: int) -> None:
        """Move the event-time clock (never backwards) and the models' with it."""
        if self.clock_ms is None or now_ms > self.clock_ms:
            self.clock_ms = now_ms
            self.scorer.advance(now_ms, self.customers)

    def scan_due(self) -> int | None:
        """The scan time the clock reached since the last call, if any: one scan, however
        far the clock jumped (a restarted worker catches up with one scan)."""
        if self.clock_ms is None:
            return None
        boundary = self.clock_ms - self.clock_ms % self.scan_interval_ms
        if self.next_scan_ms is not None and boundary < self.next_scan_ms:
            return None
        self.next_scan_ms = boundary + self.scan_interval_ms
        return boundary

    def process(
        self,
        before: CustomerState | None,
        event: AnyEvent,
        position: SourcePosition | None = None,
        watermark_ms: int | None = None,
    ) -> Processed | None:
        """``None`` when the event was already applied (a redelivery): publish nothing."""
        after = apply_event(before, event, position)
        if after is None:
            return None
        self.advance(event.ts_ms if watermark_ms is None else watermark_ms)
        # Test-then-train: score with what the models knew before this event.
        scores = self.scorer.score_one(after, event.ts_ms, event)
        _remember(after, scores)
        if isinstance(event, FeedbackEvent):
            if event.rating is None and scores.sentiment_proba is not None:
                record_sentiment(after, scores.sentiment_proba)
            observation = feedback_observation(event, scores)
            if observation is not None:
                record_satisfaction(after, event.ts_ms, observation)
        self.scorer.learn_one(before, after, event)
        version = self.scorer.model_version
        decision = self.policy.on_event(before, after, event, scores, version, self.clock())
        score = score_json(score_fields(after, scores, event.ts_ms, version, event.event_id))
        negative = feedback_negative(event, scores)
        return _processed(after, event.ts_ms, scores, score, decision, negative)

    def rescore(self, before: CustomerState, at_ms: int) -> Processed | None:
        """Score a customer with no event since before ``at_ms``; ``None`` when nothing
        changed (no new tier, segment or alert), so a scan publishes only news. A
        customer who never bought and has no open cart has no news (a scan skips them
        undecoded: ``models.features.may_be_rescored``)."""
        if before.last_seen_ms >= at_ms or not (before.purchase_count or before.cart_items):
            return None
        after = copy_state(before)
        scores = self.scorer.score_one(after, at_ms)
        _remember(after, scores)
        version = self.scorer.model_version
        decision = self.policy.on_scan(before, after, at_ms, scores, version, self.clock())
        if after == before:
            return None
        score = score_json(score_fields(after, scores, at_ms, version, None))
        return _processed(after, at_ms, scores, score, decision, None)


def _remember(state: CustomerState, scores: Scores) -> None:
    """Keep what the next score's hysteresis (and a downgrade) compares with."""
    if scores.segment_id is not None and scores.segment is not None:
        state.segment_id = scores.segment_id
        state.segment = scores.segment
    if scores.churn_tier is not None:
        state.churn_tier = scores.churn_tier
    if scores.offers is not None:
        state.offers = list(scores.offers)


def _processed(
    state: CustomerState,
    ts_ms: int,
    scores: Scores,
    score: bytes,
    decision: AlertDecision,
    negative: bool | None,
) -> Processed:
    return Processed(
        state=state,
        ts_ms=ts_ms,
        scores=scores,
        score_json=score,
        alerts=decision.alerts,
        suppressed=decision.suppressed,
        feedback_negative=negative,
    )
