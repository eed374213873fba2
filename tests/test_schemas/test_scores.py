"""``score_json`` writes what ``CustomerScore(...).model_dump_json()`` writes, and refuses
what the model refuses."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.scores import CustomerScore, score_json

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
TIMES = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
#: Mostly in bounds, now and then out of them (NaN and the infinities included).
COUNTS = st.integers(0, 2**53) | st.integers(-3, -1)
FRACTIONS = st.floats(0.0, 1.0) | ANY_FLOAT


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


FIELDS = st.fixed_dictionaries(
    {
        "customer_id": TEXT,
        "as_of": TIMES,
        "event_id": optional(TEXT),
        "model_version": TEXT,
        "first_seen": TIMES,
        "last_seen": TIMES,
        "last_purchase": optional(TIMES),
        "days_since_last_purchase": optional(st.floats(0, 1e4) | ANY_FLOAT),
        "tenure_days": st.floats(0, 1e4) | ANY_FLOAT,
        "purchase_count": COUNTS,
        "refund_count": COUNTS,
        "revenue": ANY_FLOAT,
        "cost": ANY_FLOAT,
        "net_value": ANY_FLOAT,
        "browse_count": COUNTS,
        "cart_adds": COUNTS,
        "feedback_count": COUNTS,
        "mean_rating": optional(st.floats(1, 5) | ANY_FLOAT),
        "churn_risk": optional(FRACTIONS),
        "churn_tier": st.sampled_from(["low", "medium", "high", None, "severe"]),
        "segment": optional(TEXT),
        "sentiment": st.sampled_from(["positive", "negative", None, "neutral"]),
        "clv": optional(ANY_FLOAT),
        "value_at_risk": optional(ANY_FLOAT),
        "satisfaction": optional(st.floats(0, 100) | ANY_FLOAT),
        "satisfaction_trend": optional(st.floats(-100, 100) | ANY_FLOAT),
        "spend_forecast_30d": optional(st.floats(0, 1e6) | ANY_FLOAT),
        "offers": optional(st.lists(TEXT, max_size=12)),
        "influence": optional(st.floats(0, 1e3) | ANY_FLOAT),
        "influence_degree": optional(COUNTS),
    }
)


@settings(max_examples=500)
@given(FIELDS)
def test_score_json_is_the_models_json_or_its_refusal(fields: dict[str, Any]) -> None:
    try:
        expected = orjson.loads(CustomerScore(**fields).model_dump_json())
    except ValidationError:
        with pytest.raises(ValueError):
            score_json(fields)
        return
    assert orjson.loads(score_json(fields)) == expected


def test_a_missing_or_unknown_field_is_refused() -> None:
    t = datetime(2011, 3, 13, tzinfo=UTC)
    fields: dict[str, Any] = {name: None for name in CustomerScore.model_fields} | dict(
        customer_id="c", as_of=t, model_version="m", first_seen=t, last_seen=t,
        tenure_days=0.0, purchase_count=0, refund_count=0, revenue=0.0, cost=0.0,
        net_value=0.0, browse_count=0, cart_adds=0, feedback_count=0,
    )  # fmt: skip
    del fields["schema_version"]
    assert orjson.loads(score_json(fields))["schema_version"] == "1.2.0"
    with pytest.raises(ValueError, match="differ"):
        score_json({k: v for k, v in fields.items() if k != "segment"})
    with pytest.raises(ValueError, match="differ"):
        score_json(fields | {"churn": 0.5})
    with pytest.raises(ValueError, match="outside"):
        score_json(fields | {"churn_risk": math.nan})
