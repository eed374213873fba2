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

import math
from datetime import datetime
from typing import Any, Literal, get_args, get_origin

import orjson
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


def _checks() -> tuple[
    list[tuple[str, float, float]], list[tuple[str, frozenset[object]]], list[tuple[str, int]]
]:
    """The model's own bounds, choices and lengths, read from its fields."""
    bounded: list[tuple[str, float, float]] = []
    choices: list[tuple[str, frozenset[object]]] = []
    lengths: list[tuple[str, int]] = []
    for name, field in CustomerScore.model_fields.items():
        low, high = -math.inf, math.inf
        for rule in field.metadata:  # annotated_types' Ge, Le and MaxLen
            if hasattr(rule, "ge"):
                low = float(rule.ge)
            elif hasattr(rule, "le"):
                high = float(rule.le)
            elif hasattr(rule, "max_length"):
                lengths.append((name, int(rule.max_length)))
            else:  # a new kind of rule must be checked below before it is used
                raise TypeError(f"{name}: a rule score_json does not check: {rule!r}")
        if (low, high) != (-math.inf, math.inf):
            bounded.append((name, low, high))
        literals = [arg for arg in get_args(field.annotation) if get_origin(arg) is Literal]
        if get_origin(field.annotation) is Literal:
            literals.append(field.annotation)
        if literals and name != "schema_version":
            allowed = {value for literal in literals for value in get_args(literal)}
            if type(None) in get_args(field.annotation):
                allowed.add(None)
            choices.append((name, frozenset(allowed)))
    return bounded, choices, lengths


_BOUNDED, _CHOICES, _LENGTHS = _checks()
_FIELDS = frozenset(CustomerScore.model_fields) - {"schema_version"}
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


def score_json(fields: dict[str, Any]) -> bytes:
    """``CustomerScore(**fields).model_dump_json()``, the same JSON (a property test
    compares them), at a sixth of the cost: a score per event, it was 5% of the worker's
    time. ``fields`` names every field but ``schema_version``, with values of their
    types; a value the model would refuse (out of its bounds, NaN included, not one of
    its choices, too long) raises ``ValueError``, as the model does.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2011, 3, 13, tzinfo=UTC)
    >>> fields = {name: None for name in sorted(_FIELDS)} | dict(
    ...     customer_id="c1", as_of=t, model_version="m", first_seen=t, last_seen=t,
    ...     tenure_days=0.0, purchase_count=0, refund_count=0, revenue=0.0, cost=0.0,
    ...     net_value=0.0, browse_count=1, cart_adds=0, feedback_count=0, churn_risk=0.5)
    >>> orjson.loads(score_json(fields)) == orjson.loads(CustomerScore(**fields).model_dump_json())
    True
    >>> score_json(fields | {"churn_risk": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: churn_risk=1.5 is outside [0.0, 1.0]
    """
    if fields.keys() != _FIELDS:
        raise ValueError(f"score fields differ from the model's: {sorted(fields.keys() ^ _FIELDS)}")
    for name, low, high in _BOUNDED:
        value = fields[name]
        if value is not None and not low <= value <= high:
            raise ValueError(f"{name}={value!r} is outside [{low}, {high}]")
    for name, allowed in _CHOICES:
        if fields[name] not in allowed:
            raise ValueError(f"{name}={fields[name]!r} is not one of {sorted(map(str, allowed))}")
    for name, longest in _LENGTHS:
        value = fields[name]
        if value is not None and len(value) > longest:
            raise ValueError(f"{name} has {len(value)} items, over {longest}")
    return orjson.dumps({"schema_version": SCORE_SCHEMA_VERSION, **fields}, option=_JSON_OPTIONS)
