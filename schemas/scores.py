"""``CustomerScore``: the latest scores of one customer, keyed by ``customer_id`` on the
compacted scores topic. Model fields are null until a model has an opinion.

Versions (semantic: a minor version only adds optional fields; subscribers ignore
fields they do not know):
- 1.1.0: ``satisfaction`` and ``satisfaction_trend`` added.
- 1.0.0: first release.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCORE_SCHEMA_VERSION: Literal["1.1.0"] = "1.1.0"


class CustomerScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal["1.1.0"] = SCORE_SCHEMA_VERSION
    customer_id: str
    as_of: datetime = Field(description="Event time the scores are computed for (UTC).")
    event_id: str | None = Field(default=None, description="The event that caused this update.")
    model_version: str

    first_seen: datetime
    last_seen: datetime
    last_purchase: datetime | None = None
    days_since_last_purchase: float | None = Field(default=None, ge=0.0)
    tenure_days: float = Field(ge=0.0)
    purchase_count: int = Field(ge=0)
    refund_count: int = Field(ge=0)
    revenue: float = Field(description="Sum of purchase amounts, refunds subtracted.")
    cost: float = Field(description="Sum of cost to serve.")
    net_value: float = Field(description="revenue - cost.")
    browse_count: int = Field(ge=0)
    cart_adds: int = Field(ge=0)
    feedback_count: int = Field(ge=0)
    mean_rating: float | None = Field(default=None, ge=1.0, le=5.0)

    churn_risk: float | None = Field(default=None, ge=0.0, le=1.0)
    churn_tier: Literal["low", "medium", "high"] | None = None
    segment: str | None = None
    sentiment: Literal["positive", "negative"] | None = None
    clv: float | None = Field(default=None, description="Expected lifetime value.")
    value_at_risk: float | None = Field(default=None, description="churn_risk x clv.")
    satisfaction: float | None = Field(
        default=None,
        ge=0.0,
        le=100.0,
        description="Satisfaction index 0-100: feedback (ratings, predicted sentiment) "
        "weighted with a 30-day half-life (docs/models.md).",
    )
    satisfaction_trend: float | None = Field(
        default=None,
        ge=-100.0,
        le=100.0,
        description="satisfaction minus its 180-day-half-life baseline, in points: "
        "negative when recent feedback is worse than the customer's history.",
    )
