"""Bytes on the wire to validated events, and the reason when that fails.

>>> decode_event(b'{"type":"browse","event_id":"e","customer_id":"c","ts":0,"action":"view"}')
Traceback (most recent call last):
...
schemas.wire.Rejected: invalid: ts: Value error, ts is outside 1990-01-01 .. 2100-01-01
"""

from __future__ import annotations

import typing
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.dead_letter import RejectReason
from schemas.events import BrowseEvent, EventType, FeedbackEvent, PurchaseEvent, parse_event_object

#: Default largest accepted message value, in bytes.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

AnyEvent = PurchaseEvent | BrowseEvent | FeedbackEvent
_EVENT_TYPES = frozenset(typing.get_args(EventType))


class Rejected(Exception):
    """An input message that is not processed; ``code`` says why, ``reason`` in words."""

    def __init__(self, code: RejectReason, reason: str) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason


def _describe(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = err["loc"]
        if loc and loc[0] in _EVENT_TYPES:  # the discriminator tag, not a field
            loc = loc[1:]
        where = ".".join(str(p) for p in loc) or "event"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def decode_event(
    raw: bytes | None,
    *,
    expected_type: EventType | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> AnyEvent:
    """Decode and validate one message value; raise :class:`Rejected` with the reason."""
    if not raw:
        raise Rejected(RejectReason.EMPTY, "message has no value")
    if len(raw) > max_bytes:
        raise Rejected(
            RejectReason.OVERSIZED, f"message is {len(raw)} bytes, the limit is {max_bytes}"
        )
    try:
        obj: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(RejectReason.NOT_JSON, f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    try:
        event = parse_event_object(obj)
    except ValidationError as exc:
        raise Rejected(RejectReason.INVALID, _describe(exc)) from None
    if expected_type is not None and event.type != expected_type:
        raise Rejected(
            RejectReason.WRONG_TOPIC,
            f"a {event.type!r} event on the topic for {expected_type!r} events",
        )
    return event
