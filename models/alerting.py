"""Which events deserve a person's attention: turns applied events and scores into
:class:`~schemas.alerts.RiskAlert` records.

>>> from datetime import UTC, datetime
>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> from models.scoring import Scores
>>> fb = parse_event_object({"type": "feedback", "event_id": "f1", "customer_id": "c1",
...                          "ts": 1_300_000_000_000, "text": "broken on arrival", "rating": 1})
>>> alerts = AlertPolicy().evaluate(None, apply_event(None, fb), fb, Scores(), "m/1",
...                                 datetime.now(UTC))
>>> [(a.kind.value, a.severity.value) for a in alerts]
[('negative_feedback', 'high')]
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.features import NEGATIVE_RATING_MAX, AnyEvent, CustomerState
from models.scoring import Scores
from schemas.alerts import AlertKind, AlertReason, RiskAlert, Severity, alert_id_for
from schemas.events import FeedbackEvent


def event_time(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


class AlertPolicy:
    """Alert rules evaluated after each applied event."""

    def evaluate(
        self,
        before: CustomerState | None,
        after: CustomerState,
        event: AnyEvent,
        scores: Scores,
        model_version: str,
        emitted_at: datetime,
    ) -> list[RiskAlert]:
        alerts: list[RiskAlert] = []
        if scores.churn_tier_rose:
            alerts.append(self._churn_risk(after, event, scores, model_version, emitted_at))
        if isinstance(event, FeedbackEvent):
            alert = self._negative_feedback(after, event, scores, model_version, emitted_at)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _churn_risk(
        self,
        state: CustomerState,
        event: AnyEvent,
        scores: Scores,
        model_version: str,
        emitted_at: datetime,
    ) -> RiskAlert:
        risk = scores.churn_risk or 0.0
        reasons = [
            AlertReason(
                code="churn_tier",
                text=f"churn risk {risk:.0%}, now {scores.churn_tier}",
                value=risk,
            )
        ]
        reasons += [
            AlertReason(code=feature, text=text, value=round(push, 3))
            for feature, text, push in scores.churn_drivers
        ]
        severity = Severity.HIGH if scores.churn_tier == "high" else Severity.MEDIUM
        return _customer_alert(
            AlertKind.CHURN_RISK, severity, reasons, state, event, scores, model_version, emitted_at
        )

    def _negative_feedback(
        self,
        state: CustomerState,
        event: FeedbackEvent,
        scores: Scores,
        model_version: str,
        emitted_at: datetime,
    ) -> RiskAlert | None:
        if event.rating is None or event.rating > NEGATIVE_RATING_MAX:
            return None
        reasons = [
            AlertReason(code="rating", text=f"rated {event.rating} of 5", value=event.rating)
        ]
        if state.negative_feedback_count > 1:
            reasons.append(
                AlertReason(
                    code="negative_feedback_count",
                    text=f"{state.negative_feedback_count} negative ratings so far",
                    value=state.negative_feedback_count,
                )
            )
        severity = Severity.HIGH if event.rating == 1 else Severity.MEDIUM
        return _customer_alert(
            AlertKind.NEGATIVE_FEEDBACK,
            severity,
            reasons,
            state,
            event,
            scores,
            model_version,
            emitted_at,
            sentiment_proba=scores.sentiment_proba,
        )


def _customer_alert(
    kind: AlertKind,
    severity: Severity,
    reasons: list[AlertReason],
    state: CustomerState,
    event: AnyEvent,
    scores: Scores,
    model_version: str,
    emitted_at: datetime,
    sentiment_proba: float | None = None,
) -> RiskAlert:
    """An alert about one customer, triggered by ``event`` (its id makes the alert id)."""
    return RiskAlert(
        alert_id=alert_id_for(kind, event.event_id),
        kind=kind,
        severity=severity,
        customer_id=state.customer_id,
        event_id=event.event_id,
        ts=event_time(event.ts_ms),
        emitted_at=emitted_at,
        model_version=model_version,
        reasons=reasons,
        churn_risk=scores.churn_risk,
        value_at_risk=scores.value_at_risk,
        sentiment_proba=sentiment_proba,
    )
