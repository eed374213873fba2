from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.dead_letter import RejectReason
from schemas.wire import Rejected, decode_event
from tests.factories import BASE_TS, browse, purchase
from tests.hostile import CATEGORIES, RANDOM_BYTES_REASONS, hostile_messages


def reject_code(raw: bytes | None, **kw: object) -> RejectReason:
    with pytest.raises(Rejected) as info:
        decode_event(raw, **kw)  # type: ignore[arg-type]
    assert info.value.reason  # always a readable reason
    return info.value.code


def test_reasons() -> None:
    good = orjson.dumps(purchase("e", "c", BASE_TS, 5.0))
    assert decode_event(good).event_id == "e"
    assert reject_code(None) is RejectReason.EMPTY
    assert reject_code(b"") is RejectReason.EMPTY
    assert reject_code(good, max_bytes=10) is RejectReason.OVERSIZED
    assert reject_code(b"\xff\xfe{") is RejectReason.NOT_JSON
    assert reject_code(b'{"a": NaN}') is RejectReason.NOT_JSON
    assert reject_code(b"[" * 5000 + b"]" * 5000) is RejectReason.NOT_JSON  # too deep
    assert reject_code(b"[1, 2]") is RejectReason.NOT_OBJECT
    assert reject_code(b'{"type": "purchase"}') is RejectReason.INVALID
    assert reject_code(good, expected_type="browse") is RejectReason.WRONG_TOPIC


def test_invalid_reason_names_the_fields() -> None:
    raw = orjson.dumps(browse("e", "c", BASE_TS, "teleport") | {"ts": "soon"})
    with pytest.raises(Rejected) as info:
        decode_event(raw)
    assert info.value.reason.startswith("ts: ") or "ts:" in info.value.reason
    assert "action:" in info.value.reason
    assert "browse." not in info.value.reason  # the union tag is not a field


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["purchase", "browse", "feedback", "x"])},
    optional={
        "event_id": json_values,
        "customer_id": json_values,
        "ts": json_values,
        "amount": json_values,
        "action": json_values,
        "text": json_values,
        "rating": json_values,
    },
)


@settings(max_examples=300)
@given(st.binary(max_size=300) | event_like.map(lambda d: json.dumps(d).encode()))
def test_any_bytes_either_decode_or_are_rejected_with_a_reason(raw: bytes) -> None:
    try:
        event = decode_event(raw)
    except Rejected as rej:
        assert rej.reason
        assert isinstance(rej.code, RejectReason)
    else:
        assert event.customer_id and event.event_id


def test_every_fuzzed_bad_message_is_rejected_with_its_reason() -> None:
    seen = set()
    for name, kind, _, value, reason in hostile_messages(seed=7, count=3_000):
        seen.add(name)
        try:
            decode_event(value, expected_type=kind)  # type: ignore[arg-type]
        except Rejected as rej:
            assert rej.code.value in (RANDOM_BYTES_REASONS if reason == "*" else {reason}), name
        else:
            raise AssertionError(f"{name} accepted: {value[:80]!r}")
    assert seen == set(CATEGORIES)
