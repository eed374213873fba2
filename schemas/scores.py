"""``CustomerScore``: the latest scores of one customer, keyed by ``customer_id`` on the
compacted scores topic. Model fields are null until a model has an opinion.

Versions (semantic: a minor version only adds optional fields; subscribers ignore
fields they do not know):
- 1.2.0: ``spend_forecast_30d``, ``offers``, ``influence`` and ``influence_degree``
  added (the demand forecast, next-best-offer and co-purchase influence models).
- 1.1.0: ``satisfaction`` and ``satisfaction_trend`` added.
- 1.0.0: first release.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCORE_SCHEMA_VERSION: Literal["1.2.0"] = "1.2.0"


class CustomerScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal["1.2.0"] = SCORE_SCHEMA_VERSION
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
    spend_forecast_30d: float | None = Field(
        default=None,
        ge=0.0,
        description="Expected spend in the next 30 days of event time (online Hoeffding "
        "tree, docs/models.md); null before the customer's first order or while the "
        "model has learned fewer than 500 matured targets.",
    )
    offers: list[str] | None = Field(
        default=None,
        max_length=10,
        description="Products (SKUs) to offer, best first: ones the customer has not "
        "bought, ranked by item-to-item co-occurrence at their latest order; null before "
        "an order that listed its products.",
    )
    influence: float | None = Field(
        default=None,
        ge=0.0,
        description="Co-purchase influence: decayed (90-day half-life) number of other "
        "customers' orders that followed this customer's on the same products within 14 "
        "days (docs/models.md).",
    )
    influence_degree: int | None = Field(
        default=None,
        ge=0,
        description="Customers linked to this one by co-purchases, either way (bounded).",
    )
