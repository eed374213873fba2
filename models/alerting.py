"""Which changes deserve a person's attention: turns applied events, clock scans and
scores into :class:`~schemas.alerts.RiskAlert` records.

Two moments produce customer alerts: a feedback event (``on_event``), and a scan of
quiet customers as the stream's event-time clock moves on (``on_scan``: churn risk
rises while a customer is silent, a valuable customer falls to a worse segment, a cart
is abandoned by doing nothing). Per
customer and kind, a cooldown in event time keeps the same alert from repeating; it is
kept in the customer's state, so it survives restarts and replays identically.

>>> from datetime import UTC, datetime
>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> from models.scoring import Scores
>>> fb = parse_event_object({"type": "feedback", "event_id": "f1", "customer_id": "c1",
...                          "ts": 1_300_000_000_000, "rating": 1,
...                          "text": "broken on arrival, call me on +44 20 7946 0958"})
>>> decision = AlertPolicy().on_event(None, apply_event(None, fb), fb, Scores(), "m/1",
...                                   datetime.now(UTC))
>>> [(a.kind.value, a.severity.value) for a in decision.alerts]
[('negative_feedback', 'high')]
>>> decision.alerts[0].excerpt
'broken on arrival, call me on [phone]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from models.features import DAY_MS, NEGATIVE_RATING_MAX, AnyEvent, CustomerState
from models.satisfaction import satisfaction_at
from models.scoring import Scores
from models.segments import VALUABLE_SEGMENTS, WORSE_SEGMENTS
from models.surge import Surge
from schemas.alerts import AlertKind, AlertReason, RiskAlert, Severity, SurgeWindow, alert_id_for
from schemas.events import FeedbackEvent

HOUR_MS = 3_600_000
_TIER_RANK = {"low": 0, "medium": 1, "high": 2}
#: A fall counts once the customer is this many times past their usual gap between
#: orders (or past DOWNGRADE_MIN_QUIET_DAYS without one): a segment boundary alone moves
#: with the population, and a customer between two regular orders is not falling.
DOWNGRADE_OVERDUE_FACTOR = 1.5
DOWNGRADE_MIN_QUIET_DAYS = 30.0

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Phone numbers: an optional +, then digits with spaces, dots, dashes or brackets.
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")
_DIGITS = re.compile(r"\d{5,}")
_SPACE = re.compile(r"\s+")


def event_time(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def redact_excerpt(text: str, max_chars: int = 120) -> str:
    """A short excerpt of feedback with e-mail addresses, phone numbers and long digit
    runs (card, order or account numbers) masked; whitespace collapsed.

    >>> redact_excerpt("mail a.b@example.com or card 4111111111111111, order 12")
    'mail [email] or card [number], order 12'
    >>> redact_excerpt("x" * 200, max_chars=10)
    'xxxxxxxxx…'
    """
    masked = _EMAIL.sub("[email]", text)
    masked = _DIGITS.sub("[number]", masked)
    masked = _PHONE.sub("[phone]", masked)
    masked = _SPACE.sub(" ", masked).strip()
    if len(masked) > max_chars:
        # Cut first, then mask again: a cut could leave a digit run shorter than 5.
        masked = _DIGITS.sub("[number]", masked[: max_chars - 1]).rstrip() + "…"
    return masked


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alert thresholds and cooldowns (``CRM_ALERT_*`` settings)."""

    cooldown_days: float = 7.0
    #: The lowest churn tier that alerts; lower tiers only show in the scores.
    churn_min_tier: Literal["medium", "high"] = "high"
    #: Churn alerts wait until the customer has been quiet this long: right after an
    #: order, a high risk is a forecast about a new customer, not one who stopped coming.
    churn_min_quiet_days: float = 7.0
    cart_abandon_hours: float = 24.0
    #: Unrated feedback is negative when the sentiment model's P(positive) is at most this.
    negative_sentiment_max: float = 0.2
    #: satisfaction_drop: the index at least this many points below its baseline, below
    #: satisfaction_max, for a customer whose expected lifetime value is at least this.
    satisfaction_drop_points: float = 15.0
    satisfaction_max: float = 50.0
    satisfaction_min_clv: float = 300.0
    excerpt_chars: int = 120


@dataclass(slots=True)
class AlertDecision:
    """Alerts to publish, and the kinds the cooldown held back (counted, not lost)."""

    alerts: list[RiskAlert] = field(default_factory=list)
    suppressed: list[AlertKind] = field(default_factory=list)


class AlertPolicy:
    """The customer alert rules. ``after`` is the state being written: the policy
    records its cooldowns (and the cart it alerted on) in it."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self.cooldown_ms = int(self.config.cooldown_days * DAY_MS)
        self.cart_abandon_ms = int(self.config.cart_abandon_hours * HOUR_MS)

    def on_event(
        self,
        before: CustomerState | None,
        after: CustomerState,
        event: AnyEvent,
        scores: Scores,
        model_version: str,
        emitted_at: datetime,
    ) -> AlertDecision:
        """Alerts an event raises by itself: negative feedback. Churn and segment alerts
        come from scans only: an event means the customer is active (on replayed real
        data, churn alerts raised by an event, mostly the browsing just before an order,
        were right 10% of the time against 69% for those from scans; docs/alerts.md)."""
        candidates: list[RiskAlert | None] = []
        if isinstance(event, FeedbackEvent):
            alert = _AlertBuilder(
                after, event.ts_ms, event.event_id, scores, model_version, emitted_at
            )
            candidates.append(self._negative_feedback(alert, after, event, scores))
            candidates.append(self._satisfaction_drop(alert, after, scores))
        return self._admit(after, event.ts_ms, candidates)

    def on_scan(
        self,
        before: CustomerState,
        after: CustomerState,
        at_ms: int,
        scores: Scores,
        model_version: str,
        emitted_at: datetime,
    ) -> AlertDecision:
        """Alerts for a customer with no event since the last scan, at event time ``at_ms``."""
        alert = _AlertBuilder(after, at_ms, None, scores, model_version, emitted_at)
        candidates = [
            self._churn_risk(alert, after, scores),
            self._segment_downgrade(alert, after, scores),
            self._cart_abandonment(alert, after, at_ms),
        ]
        return self._admit(after, at_ms, candidates)

    def _admit(
        self, state: CustomerState, now_ms: int, candidates: list[RiskAlert | None]
    ) -> AlertDecision:
        decision = AlertDecision()
        for alert in candidates:
            if alert is None:
                continue
            key = _cooldown_key(alert)
            last = state.alerted_ms.get(key)
            # Either side of the last alert: events may arrive out of event-time order.
            if last is not None and abs(now_ms - last) < self.cooldown_ms:
                decision.suppressed.append(alert.kind)
                continue
            state.alerted_ms[key] = now_ms if last is None else max(last, now_ms)
            decision.alerts.append(alert)
        return decision

    def _churn_risk(
        self, alert: _AlertBuilder, state: CustomerState, scores: Scores
    ) -> RiskAlert | None:
        """One alert per tier reached in a purchase cycle (the quiet time after an order),
        from ``churn_min_tier`` up, once the customer has been quiet long enough."""
        tier = scores.churn_tier
        quiet = state.days_since_last_purchase(alert.ts_ms)
        if (
            not scores.churn_ready
            or tier is None
            or _TIER_RANK[tier] < _TIER_RANK[self.config.churn_min_tier]
            or quiet is None
            or quiet < self.config.churn_min_quiet_days
        ):
            return None
        alerted = state.churn_alerted_tier
        if alerted and _TIER_RANK[tier] <= _TIER_RANK[alerted]:
            return None
        state.churn_alerted_tier = tier
        risk = scores.churn_risk or 0.0
        reasons = [
            AlertReason(code="churn_tier", text=f"churn risk {risk:.0%} ({tier} tier)", value=risk)
        ]
        drivers = [
            AlertReason(code=feature, text=text, value=round(push, 3))
            for feature, text, push in scores.churn_drivers
        ]
        if not any(d.code in ("recency_log", "overdue") for d in drivers):
            # How long they have been quiet is the first thing a person asks.
            text = f"no purchase for {quiet:.0f} days"
            reasons.append(AlertReason(code="recency", text=text, value=round(quiet, 1)))
        reasons += drivers
        severity = Severity.HIGH if tier == "high" else Severity.MEDIUM
        return alert.build(AlertKind.CHURN_RISK, severity, reasons)

    def _segment_downgrade(
        self, alert: _AlertBuilder, state: CustomerState, scores: Scores
    ) -> RiskAlert | None:
        """One alert per fall from a valuable segment to a worse one, once overdue."""
        now = scores.segment
        if now in VALUABLE_SEGMENTS:
            # Valuable by behaviour, not by one big first order: a rhythm must exist.
            if state.gap_count:
                state.valued_segment = now
            return None
        was = state.valued_segment
        quiet = state.days_since_last_purchase(alert.ts_ms)
        if not (scores.segment_ready and was and now in WORSE_SEGMENTS and quiet is not None):
            return None
        gap = state.gap_mean_days if state.gap_count else 0.0
        if quiet < max(DOWNGRADE_OVERDUE_FACTOR * gap, DOWNGRADE_MIN_QUIET_DAYS):
            return None
        state.valued_segment = ""
        quiet_text = f"no purchase for {quiet:.0f} days"
        if gap >= 1:
            quiet_text += f", {quiet / gap:.1f}x this customer's usual gap of {gap:.0f} days"
        reasons = [
            AlertReason(code="segment", text=f"fell from {was} to {now}"),
            AlertReason(code="recency", text=quiet_text, value=round(quiet, 1)),
            AlertReason(
                code="net_value",
                text=f"{state.net_value:,.2f} net value in {state.purchase_count} order(s)",
                value=round(state.net_value, 2),
            ),
        ]
        severity = Severity.HIGH if was == "champions" else Severity.MEDIUM
        return alert.build(AlertKind.SEGMENT_DOWNGRADE, severity, reasons)

    def _negative_feedback(
        self,
        alert: _AlertBuilder,
        state: CustomerState,
        event: FeedbackEvent,
        scores: Scores,
    ) -> RiskAlert | None:
        proba = scores.sentiment_proba
        reasons: list[AlertReason] = []
        if event.rating is not None:
            if event.rating > NEGATIVE_RATING_MAX:
                return None
            reasons.append(
                AlertReason(code="rating", text=f"rated {event.rating} of 5", value=event.rating)
            )
            severity = Severity.HIGH if event.rating == 1 else Severity.MEDIUM
        elif scores.sentiment_ready and proba is not None:
            if proba > self.config.negative_sentiment_max:
                return None
            reasons.append(
                AlertReason(
                    code="predicted_sentiment",
                    text=f"unrated; the text reads negative ({1 - proba:.0%} likely)",
                    value=round(proba, 3),
                )
            )
            severity = Severity.MEDIUM
        else:
            return None
        if state.negative_feedback_count > 1:
            reasons.append(
                AlertReason(
                    code="negative_feedback_count",
                    text=f"{state.negative_feedback_count} negative ratings so far",
                    value=state.negative_feedback_count,
                )
            )
        return alert.build(
            AlertKind.NEGATIVE_FEEDBACK,
            severity,
            reasons,
            sentiment_proba=proba,
            excerpt=redact_excerpt(event.text, self.config.excerpt_chars),
        )

    def _satisfaction_drop(
        self, alert: _AlertBuilder, state: CustomerState, scores: Scores
    ) -> RiskAlert | None:
        """A valuable customer's recent feedback sharply worse than their history."""
        now = satisfaction_at(state, alert.ts_ms)
        clv = scores.clv
        if (
            now is None
            or now.trend > -self.config.satisfaction_drop_points
            or now.index >= self.config.satisfaction_max
            or clv is None
            or clv < self.config.satisfaction_min_clv
        ):
            return None
        reasons = [
            AlertReason(
                code="satisfaction",
                text=f"satisfaction {now.index:.0f} of 100, {-now.trend:.0f} points below "
                f"this customer's longer-run {now.baseline:.0f}",
                value=round(now.index, 1),
            ),
            AlertReason(
                code="satisfaction_trend",
                text=f"{now.trend:+.0f} points against the baseline",
                value=round(now.trend, 1),
            ),
            AlertReason(
                code="clv", text=f"expected lifetime value {clv:,.2f}", value=round(clv, 2)
            ),
        ]
        severity = Severity.HIGH if now.index <= 25 else Severity.MEDIUM
        return alert.build(AlertKind.SATISFACTION_DROP, severity, reasons)

    def _cart_abandonment(
        self, alert: _AlertBuilder, state: CustomerState, at_ms: int
    ) -> RiskAlert | None:
        opened = state.cart_opened_ms
        if (
            opened is None
            or state.cart_items <= 0
            or at_ms - opened < self.cart_abandon_ms
            or state.cart_alerted_ms == opened
        ):
            return None
        state.cart_alerted_ms = opened
        hours = (at_ms - opened) / HOUR_MS
        reasons = [
            AlertReason(
                code="cart_items",
                text=f"{state.cart_items} item(s) left in the cart {hours:.0f} hours ago",
                value=state.cart_items,
            )
        ]
        if state.purchase_count:
            reasons.append(
                AlertReason(
                    code="net_value",
                    text=f"{state.net_value:,.2f} net value in {state.purchase_count} order(s)",
                    value=round(state.net_value, 2),
                )
            )
        # The cart's opening, not the scan, identifies the alert: one per abandoned cart.
        return alert.build(
            AlertKind.CART_ABANDONMENT, Severity.LOW, reasons, trigger=f"cart@{opened}"
        )


def surge_alert(surge: Surge, model_version: str, emitted_at: datetime) -> RiskAlert:
    """The global alert for a sentiment surge, identified by its window."""
    rise = surge.share - surge.baseline_share
    reasons = [
        AlertReason(
            code="negative_share",
            text=f"{surge.share:.0%} of {surge.feedback} feedback negative in the window, "
            f"against {surge.baseline_share:.0%} of {surge.baseline_feedback} before it",
            value=round(surge.share, 4),
        ),
        AlertReason(
            code="z_score",
            text=f"a rise of {rise * 100:.0f} points, z = {surge.z:.1f}",
            value=round(surge.z, 2),
        ),
    ]
    return RiskAlert(
        alert_id=alert_id_for(AlertKind.SENTIMENT_SURGE, f"window@{surge.window_end_ms}"),
        kind=AlertKind.SENTIMENT_SURGE,
        severity=Severity.CRITICAL if rise >= 0.25 else Severity.HIGH,
        scope="global",
        ts=event_time(surge.window_end_ms),
        emitted_at=emitted_at,
        model_version=model_version,
        reasons=reasons,
        window=SurgeWindow(
            start=event_time(surge.window_start_ms),
            end=event_time(surge.window_end_ms),
            feedback=surge.feedback,
            negative=surge.negative,
            negative_share=round(surge.share, 4),
            baseline_feedback=surge.baseline_feedback,
            baseline_negative_share=round(surge.baseline_share, 4),
            z_score=round(surge.z, 3),
        ),
    )


def _cooldown_key(alert: RiskAlert) -> str:
    # A rise to a higher tier is news even inside the cooldown of the lower one.
    if alert.kind is AlertKind.CHURN_RISK and alert.severity is Severity.HIGH:
        return "churn_risk:high"
    return alert.kind.value


@dataclass(frozen=True, slots=True)
class _AlertBuilder:
    """What every alert about one customer at one moment shares."""

    state: CustomerState
    ts_ms: int
    event_id: str | None
    scores: Scores
    model_version: str
    emitted_at: datetime

    def build(
        self,
        kind: AlertKind,
        severity: Severity,
        reasons: list[AlertReason],
        sentiment_proba: float | None = None,
        excerpt: str | None = None,
        trigger: str | None = None,
    ) -> RiskAlert:
        # An event triggers at most one alert per kind; a scan is identified by the
        # customer and its event time.
        if trigger is None:
            trigger = self.event_id or f"scan@{self.ts_ms}"
        return RiskAlert(
            alert_id=alert_id_for(kind, f"{self.state.customer_id}\x00{trigger}"),
            kind=kind,
            severity=severity,
            customer_id=self.state.customer_id,
            event_id=self.event_id,
            ts=event_time(self.ts_ms),
            emitted_at=self.emitted_at,
            model_version=self.model_version,
            reasons=reasons,
            churn_risk=self.scores.churn_risk,
            churn_tier=self.scores.churn_tier,
            segment=self.scores.segment,
            clv=self.scores.clv,
            value_at_risk=self.scores.value_at_risk,
            sentiment_proba=sentiment_proba,
            excerpt=excerpt,
            offers=self.state.offers or None,
        )
