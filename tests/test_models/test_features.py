from __future__ import annotations

import pickle
import tracemalloc

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.features import (
    DAY_MS,
    RECENT_EVENT_IDS,
    CustomerState,
    SourcePosition,
    apply_event,
    may_be_rescored,
    may_have_bought,
)
from schemas.events import parse_event_object
from tests.factories import BASE_TS, browse, feedback, purchase


def fold(raw_events: list[dict[str, object]]) -> CustomerState:
    state = None
    for raw in raw_events:
        new = apply_event(state, parse_event_object(raw))
        assert new is not None
        state = new
    assert state is not None
    return state


def test_purchases_refunds_and_gaps() -> None:
    state = fold(
        [
            purchase("p1", "c", BASE_TS, 100.0, cost=30.0),
            purchase("p2", "c", BASE_TS + 10 * DAY_MS, 50.0, cost=10.0),
            purchase("r1", "c", BASE_TS + 11 * DAY_MS, -20.0),
            purchase("p3", "c", BASE_TS + 30 * DAY_MS, 10.0),
        ]
    )
    assert state.purchase_count == 3
    assert state.refund_count == 1
    assert state.revenue == pytest.approx(140.0)
    assert state.cost == pytest.approx(40.0)
    assert state.net_value == pytest.approx(100.0)
    assert state.last_purchase_ms == BASE_TS + 30 * DAY_MS
    assert state.gap_count == 2
    assert state.gap_mean_days == pytest.approx(15.0)
    assert state.days_since_last_purchase(BASE_TS + 40 * DAY_MS) == pytest.approx(10.0)
    assert state.tenure_days(BASE_TS + 40 * DAY_MS) == pytest.approx(40.0)


def test_browsing_and_feedback() -> None:
    state = fold(
        [
            browse("b1", "c", BASE_TS, "view"),
            browse("b2", "c", BASE_TS + 1, "add_to_cart"),
            browse("b3", "c", BASE_TS + 2, "remove_from_cart"),
            browse("b4", "c", BASE_TS + 3, "search"),
            browse("b5", "c", BASE_TS + 4, "checkout"),
            feedback("f1", "c", BASE_TS + 5, "bad", rating=1),
            feedback("f2", "c", BASE_TS + 6, "fine", rating=4),
            feedback("f3", "c", BASE_TS + 7, "no rating"),
        ]
    )
    assert (state.views, state.cart_adds, state.cart_removes, state.searches, state.checkouts) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert state.browse_count == 5
    assert state.feedback_count == 3
    assert state.rated_count == 2
    assert state.mean_rating == pytest.approx(2.5)
    assert state.negative_feedback_count == 1
    assert state.last_feedback_ms == BASE_TS + 7


def test_out_of_order_events_keep_first_and_last_by_event_time() -> None:
    state = fold(
        [
            purchase("p2", "c", BASE_TS + 5 * DAY_MS, 10.0),
            purchase("p1", "c", BASE_TS, 10.0),
        ]
    )
    assert state.first_seen_ms == BASE_TS
    assert state.last_seen_ms == BASE_TS + 5 * DAY_MS
    assert state.first_purchase_ms == BASE_TS
    assert state.last_purchase_ms == BASE_TS + 5 * DAY_MS
    assert state.gap_count == 0  # a late purchase cannot be placed among the gaps


def test_redelivered_offsets_and_repeated_event_ids_are_not_applied_twice() -> None:
    e1 = parse_event_object(purchase("p1", "c", BASE_TS, 10.0))
    e2 = parse_event_object(purchase("p2", "c", BASE_TS + 1, 10.0))
    s1 = apply_event(None, e1, SourcePosition("t", 3, 100))
    assert s1 is not None
    assert apply_event(s1, e2, SourcePosition("t", 3, 100)) is None  # same offset
    assert apply_event(s1, e2, SourcePosition("t", 3, 99)) is None  # older offset
    assert apply_event(s1, e1, SourcePosition("t", 3, 101)) is None  # same event id
    s2 = apply_event(s1, e2, SourcePosition("t", 3, 101))
    assert s2 is not None and s2.purchase_count == 2
    assert s1.purchase_count == 1  # the input state is not modified


def test_recent_event_ids_are_bounded() -> None:
    state = fold([browse(f"b{i}", "c", BASE_TS + i, "view") for i in range(100)])
    assert len(state.recent_event_ids) == RECENT_EVENT_IDS
    assert state.recent_event_ids[-1] == "b99"


@given(
    st.lists(
        st.tuples(st.sampled_from(["p", "b", "f"]), st.integers(0, 10**9)), min_size=1, max_size=30
    )
)
def test_bytes_and_pickle_round_trip(steps: list[tuple[str, int]]) -> None:
    raws = []
    for i, (kind, dt) in enumerate(steps):
        ts = BASE_TS + dt
        raws.append(
            purchase(f"e{i}", "c", ts, 9.5, cost=1.0)
            if kind == "p"
            else browse(f"e{i}", "c", ts, "add_to_cart")
            if kind == "b"
            else feedback(f"e{i}", "c", ts, "ok", rating=2)
        )
    state = fold(raws)
    assert CustomerState.from_bytes(state.to_bytes()) == state
    assert pickle.loads(pickle.dumps(state)) == state
    assert may_have_bought(state.to_bytes()) == (state.purchase_count > 0)
    assert may_be_rescored(state.to_bytes()) == bool(state.purchase_count or state.cart_items)


def as_json_object(state: CustomerState) -> bytes:
    """A state's bytes as versions before the positional format wrote them."""
    return orjson.dumps(state)


@given(st.text(), st.integers(0, 2), st.integers(0, 2), st.lists(st.text(max_size=30), max_size=5))
def test_whether_a_state_bought_or_may_be_rescored_is_read_from_its_bytes(
    name: str, purchases: int, cart_items: int, products: list[str]
) -> None:
    """Without decoding, in both formats, and not fooled by ids and products that spell
    the JSON object's keys."""
    spelled = ['"purchase_count":0,', '"cart_items":0,']
    state = CustomerState(
        f"c{name}{spelled}",
        BASE_TS,
        BASE_TS,
        last_event_id=spelled[1],
        purchase_count=purchases,
        products=[*products, *spelled],
        cart_items=cart_items,
    )
    for data in (state.to_bytes(), as_json_object(state)):
        assert may_have_bought(data) == (purchases > 0)
        assert may_be_rescored(data) == bool(purchases or cart_items)
        assert CustomerState.from_bytes(data) == state


def test_state_bytes_hold_no_more_memory_than_they_need() -> None:
    """The memory store keeps these bytes for as long as the customer: orjson's own
    result held 16 KB for a state of about 1 KB."""
    state = fold([purchase(f"p{i}", "c", BASE_TS + i, 10.0, skus=[f"s{i}"]) for i in range(30)])
    tracemalloc.start()
    try:
        kept = [state.to_bytes() for _ in range(100)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(kept) < len(kept[0]) + 200


def test_state_from_older_or_newer_versions_loads() -> None:
    state = fold([purchase("p1", "c", BASE_TS, 10.0)])
    positional = state.to_bytes()
    assert positional[:1] == b"\x01" and positional.endswith(b"]")
    # A later version's field, added at the end: dropped.
    assert CustomerState.from_bytes(positional[:-1] + b',"field_from_the_future"]') == state
    # An earlier version, without the last field: its default.
    fresh = CustomerState("c", BASE_TS, BASE_TS)
    values = orjson.loads(fresh.to_bytes()[2:])
    assert CustomerState.from_bytes(fresh.to_bytes()[:2] + orjson.dumps(values[:-1])) == fresh
    # The JSON objects of versions before the positional format: as written, with a
    # field this version does not know, without one, and in another order.
    data = as_json_object(state)
    assert CustomerState.from_bytes(data) == state
    newer = data.replace(b'"views":0,', b'"views":0,"field_from_the_future":1,')
    assert CustomerState.from_bytes(newer) == state
    older = data.replace(b'"cart_removes":0,', b"")
    assert CustomerState.from_bytes(older) == state
    reordered = orjson.dumps(dict(reversed(orjson.loads(data).items())))
    assert CustomerState.from_bytes(reordered) == state
