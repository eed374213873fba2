"""A seeded fuzzer of bad input messages, each with the reason the worker must give.

Every category is a way real producers break: random bytes, broken UTF-8, JSON that is
not an object, missing fields, wrong types, NaN and infinities, huge values, deep
nesting, timestamps far in the past or future, events on the wrong topic, empty values.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from tests.factories import BASE_TS, browse, feedback, purchase

#: Reasons a bad message may get where the category alone does not fix one.
RANDOM_BYTES_REASONS = frozenset({"empty", "not_json", "not_object"})

Message = tuple[str, bytes | None, bytes, str]  # topic kind, key, value, expected reason


def _valid(rng: random.Random, kind: str) -> dict[str, Any]:
    eid = f"h-{rng.getrandbits(48):x}"
    customer = f"hc-{rng.randrange(500)}"
    ts = BASE_TS + rng.randrange(200) * 86_400_000
    if kind == "purchase":
        return purchase(eid, customer, ts, round(rng.uniform(1, 100), 2))
    if kind == "browse":
        return browse(eid, customer, ts, "view")
    return feedback(eid, customer, ts, "fine", rating=4)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _random_bytes(rng: random.Random, kind: str) -> tuple[bytes, str]:
    return rng.randbytes(rng.randrange(1, 200)), "*"


def _bad_utf8(rng: random.Random, kind: str) -> tuple[bytes, str]:
    raw = _dumps(_valid(rng, kind))
    cut = raw.index(b'"customer_id":"') + len(b'"customer_id":"')
    return raw[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82"]) + raw[
        cut:
    ], ("not_json")


def _not_object(rng: random.Random, kind: str) -> tuple[bytes, str]:
    value = rng.choice([[], [_valid(rng, kind)], 42, -1.5, "purchase", None, True, ""])
    return _dumps(value), "not_object"


def _missing_field(rng: random.Random, kind: str) -> tuple[bytes, str]:
    event = _valid(rng, kind)
    required = {"purchase": "amount", "browse": "action", "feedback": "text"}[kind]
    del event[rng.choice(["event_id", "customer_id", "ts", "type", required])]
    return _dumps(event), "invalid"


def _wrong_type(rng: random.Random, kind: str) -> tuple[bytes, str]:
    event = _valid(rng, kind)
    per_kind: dict[str, list[tuple[str, Any]]] = {
        "purchase": [("amount", "lots"), ("amount", None), ("items", -1)],
        "browse": [("action", "hover"), ("action", 3)],
        "feedback": [("rating", "5"), ("rating", 2.5), ("rating", 0), ("text", "")],
    }
    field, value = rng.choice(
        [
            ("customer_id", 12345),
            ("event_id", None),
            ("ts", [BASE_TS]),
            ("ts", True),
            ("ts", "last tuesday"),
            ("ts", "2011-03-01T10:00:00"),  # no offset
            ("type", "refund"),
            *per_kind[kind],
        ]
    )
    event[field] = value
    return _dumps(event), "invalid"


def _nan_or_infinity(rng: random.Random, kind: str) -> tuple[bytes, str]:
    token = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
    raw = _dumps(_valid(rng, "purchase") | {"amount": 0.5})
    return raw.replace(b'"amount":0.5', b'"amount":' + token), "not_json"


def _huge(rng: random.Random, kind: str) -> tuple[bytes, str]:
    event = _valid(rng, kind)
    event["page" if kind == "browse" else "note"] = "x" * (70_000 + rng.randrange(10_000))
    return _dumps(event), "oversized"


def _long_fields(rng: random.Random, kind: str) -> tuple[bytes, str]:
    event = _valid(rng, kind)
    if kind == "feedback" and rng.random() < 0.5:
        event["text"] = "y" * 5_001
    else:
        event["customer_id"] = "c" * 129
    return _dumps(event), "invalid"


def _deep(rng: random.Random, kind: str) -> tuple[bytes, str]:
    depth = rng.randrange(1_100, 5_000)
    nested = b"[" * depth + b"]" * depth
    raw = _dumps(_valid(rng, kind) | {"extra": 0})
    return raw.replace(b'"extra":0', b'"extra":' + nested), "not_json"


def _far_time(rng: random.Random, kind: str) -> tuple[bytes, str]:
    event = _valid(rng, kind)
    event["ts"] = rng.choice(
        [0, -1, 10**18, 4_102_444_800_000, "1899-12-31T23:59:59Z", "2200-01-01T00:00:00+00:00"]
    )
    return _dumps(event), "invalid"


def _wrong_topic(rng: random.Random, kind: str) -> tuple[bytes, str]:
    other = rng.choice([k for k in ("purchase", "browse", "feedback") if k != kind])
    return _dumps(_valid(rng, other)), "wrong_topic"


def _empty(rng: random.Random, kind: str) -> tuple[bytes, str]:
    return b"", "empty"


CATEGORIES: dict[str, Callable[[random.Random, str], tuple[bytes, str]]] = {
    "random_bytes": _random_bytes,
    "bad_utf8": _bad_utf8,
    "not_object": _not_object,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "nan_or_infinity": _nan_or_infinity,
    "huge": _huge,
    "long_fields": _long_fields,
    "deep_nesting": _deep,
    "far_time": _far_time,
    "wrong_topic": _wrong_topic,
    "empty": _empty,
}
#: Huge values are few: each is 70-80 KB on the broker.
WEIGHTS = {name: 1 for name in CATEGORIES} | {"huge": 0.1}


def hostile_messages(seed: int, count: int) -> list[tuple[str, str, bytes | None, bytes, str]]:
    """``count`` bad messages as (category, topic kind, key, value, expected reason);
    ``*`` as the reason: any of :data:`RANDOM_BYTES_REASONS`."""
    rng = random.Random(seed)
    names = list(CATEGORIES)
    weights = [WEIGHTS[n] for n in names]
    out = []
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        kind = rng.choice(["purchase", "browse", "feedback"])
        value, reason = CATEGORIES[name](rng, kind)
        key = None if rng.random() < 0.2 else f"hc-{rng.randrange(500)}".encode()
        out.append((name, kind, key, value, reason))
    return out
