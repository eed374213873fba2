from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import (
    FEEDBACK_TEXT_MAX_CHARS,
    SKUS_MAX,
    BrowseEvent,
    FeedbackEvent,
    PurchaseEvent,
    event_to_wire,
    parse_event_object,
)
from tests.factories import BASE_TS, browse, feedback, purchase


def test_rfc3339_with_offset_and_epoch_ms_are_the_same_instant() -> None:
    a = parse_event_object(purchase("e", "c", BASE_TS, 1.0))
    iso = datetime.fromtimestamp(BASE_TS / 1000, tz=timezone(timedelta(hours=5))).isoformat()
    b = parse_event_object(purchase("e", "c", 0, 1.0) | {"ts": iso})
    z = parse_event_object(
        purchase("e", "c", 0, 1.0)
        | {"ts": datetime.fromtimestamp(BASE_TS / 1000, UTC).isoformat().replace("+00:00", "Z")}
    )
    assert a.ts_ms == b.ts_ms == z.ts_ms == BASE_TS


@pytest.mark.parametrize(
    "ts",
    ["2011-03-13T10:00:00", "yesterday", True, 1.5e12 + 0.5, math.nan, None, [], 0, 10**15],
)
def test_bad_timestamps_are_rejected(ts: object) -> None:
    with pytest.raises(ValidationError):
        parse_event_object(purchase("e", "c", BASE_TS, 1.0) | {"ts": ts})


def test_each_type_parses_to_its_class_and_extra_fields_are_ignored() -> None:
    assert isinstance(parse_event_object(purchase("e", "c", BASE_TS, -3.0)), PurchaseEvent)
    b = parse_event_object(browse("e", "c", BASE_TS, "checkout", extra_field={"x": 1}))
    assert isinstance(b, BrowseEvent)
    assert not hasattr(b, "extra_field")
    f = parse_event_object(feedback("e", "c", BASE_TS, "好评", rating=5))
    assert isinstance(f, FeedbackEvent)
    assert f.rating == 5


@pytest.mark.parametrize(
    "event",
    [
        purchase("e", "c", BASE_TS, math.inf),
        purchase("e", "c", BASE_TS, 1e12),
        purchase("e", "", BASE_TS, 1.0),
        purchase("e", "c" * 129, BASE_TS, 1.0),
        purchase("e", "c", BASE_TS, 1.0, skus=["x"] * (SKUS_MAX + 1)),
        purchase("e", "c", BASE_TS, 1.0, skus=[""]),
        browse("e", "c", BASE_TS, "teleport"),
        feedback("e", "c", BASE_TS, ""),
        feedback("e", "c", BASE_TS, "x" * (FEEDBACK_TEXT_MAX_CHARS + 1)),
        feedback("e", "c", BASE_TS, "ok", rating=6),
        feedback("e", "c", BASE_TS, "ok", rating="5"),
        feedback("e", "c", BASE_TS, "ok", rating=4.0),
        {"type": "refund", "event_id": "e", "customer_id": "c", "ts": BASE_TS},
        {"event_id": "e", "customer_id": "c", "ts": BASE_TS, "amount": 1.0},
    ],
)
def test_invalid_events_are_rejected(event: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_event_object(event)


ids = st.text(min_size=1, max_size=128)
timestamps = st.integers(min_value=631_152_000_000, max_value=4_102_444_799_999)
money = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
events = st.one_of(
    st.builds(purchase, ids, ids, timestamps, money),
    st.builds(purchase, ids, ids, timestamps, money, skus=st.lists(ids, max_size=20)),
    st.builds(
        browse,
        ids,
        ids,
        timestamps,
        st.sampled_from(["view", "search", "add_to_cart", "remove_from_cart", "checkout"]),
    ),
    st.builds(
        feedback, ids, ids, timestamps, st.text(min_size=1, max_size=300), rating=st.integers(1, 5)
    ),
)


@given(events)
def test_valid_events_round_trip_through_the_wire(event: dict[str, object]) -> None:
    parsed = parse_event_object(orjson.loads(orjson.dumps(event)))
    again = parse_event_object(orjson.loads(orjson.dumps(event_to_wire(parsed))))
    assert again == parsed
    assert event_to_wire(parsed)["ts"] == event["ts"]
