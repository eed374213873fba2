"""``RiskAlert``: the record on the alerts topic, a public contract for subscribers.

``alert_id`` is derived from the alert kind and what triggered it (the customer and
event, the customer and scan time, or the surge window), so the same alert is
recognisable after a worker restart or a rebalance; subscribers may de-duplicate on it.

Versions (semantic: a minor version only adds optional fields; subscribers ignore
fields they do not know):
- 1.3.0: ``offers`` added: the products to offer the customer (next-best-offer), for
  the retention team acting on the alert.
- 1.2.0: the kind ``satisfaction_drop`` (a valuable customer's satisfaction index fell
  sharply below its baseline; docs/alerts.md). Subscribers that check ``kind`` against
  a fixed list must accept it, or skip kinds they do not know.
- 1.1.0: ``churn_tier``, ``segment``, ``clv``, ``excerpt`` and ``window`` added.
- 1.0.0: first release.

>>> alert_id_for("negative_feedback", "evt-1") == alert_id_for("negative_feedback", "evt-1")
True
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION: Literal["1.3.0"] = "1.3.0"


class AlertKind(StrEnum):
    CHURN_RISK = "churn_risk"
    NEGATIVE_FEEDBACK = "negative_feedback"
    SEGMENT_DOWNGRADE = "segment_downgrade"
    SENTIMENT_SURGE = "sentiment_surge"
    CART_ABANDONMENT = "cart_abandonment"
    SATISFACTION_DROP = "satisfaction_drop"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlertReason(BaseModel):
    """One driver of an alert, in words a person understands."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable machine-readable driver name.")
    text: str = Field(description="The driver in plain words.")
    value: float | None = Field(default=None, description="The driver's value, if numeric.")


class SurgeWindow(BaseModel):
    """The figures behind a ``sentiment_surge``: the window against its own baseline."""

    model_config = ConfigDict(frozen=True)

    start: datetime = Field(description="Start of the event-time window (UTC).")
    end: datetime = Field(description="End of the window: event time of the latest feedback.")
    feedback: int = Field(ge=0, description="Feedback events in the window.")
    negative: int = Field(ge=0, description="Negative ones among them.")
    negative_share: float = Field(ge=0.0, le=1.0)
    baseline_feedback: int = Field(ge=0, description="Feedback in the baseline before it.")
    baseline_negative_share: float = Field(ge=0.0, le=1.0)
    z_score: float = Field(description="Two-proportion z statistic, window vs baseline.")


class RiskAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal["1.3.0"] = ALERT_SCHEMA_VERSION
    alert_id: str = Field(description="Deterministic: same triggering event and kind, same id.")
    kind: AlertKind
    severity: Severity
    scope: Literal["customer", "global"] = "customer"
    customer_id: str | None = Field(default=None, description="Null for global alerts.")
    event_id: str | None = Field(default=None, description="The triggering event.")
    ts: datetime = Field(description="Event time of the triggering event (UTC).")
    emitted_at: datetime = Field(description="Wall-clock time the worker emitted it (UTC).")
    model_version: str
    reasons: list[AlertReason] = Field(default_factory=list)
    churn_risk: float | None = Field(default=None, ge=0.0, le=1.0)
    churn_tier: Literal["low", "medium", "high"] | None = None
    segment: str | None = Field(default=None, description="The customer's segment now.")
    clv: float | None = Field(default=None, description="Expected lifetime value.")
    value_at_risk: float | None = Field(
        default=None, description="churn_risk x clv: rank alerts by money with it."
    )
    sentiment_proba: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Probability that the feedback is positive."
    )
    excerpt: str | None = Field(
        default=None,
        max_length=200,
        description="Feedback excerpt with e-mail addresses, phone and long numbers masked.",
    )
    window: SurgeWindow | None = Field(default=None, description="For sentiment_surge.")
    offers: list[str] | None = Field(
        default=None,
        max_length=10,
        description="Products (SKUs) to offer the customer, best first, as ranked at their "
        "latest order (next-best-offer, docs/models.md); null when none are known.",
    )


def alert_id_for(kind: str, trigger: str) -> str:
    """A stable id from the alert kind and what triggered it (an event id or a window)."""
    return hashlib.sha256(f"{kind}\x00{trigger}".encode()).hexdigest()[:32]
