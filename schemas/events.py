"""Input events: one JSON object per Kafka message, message key = ``customer_id``.

The wire format is public. Unknown extra fields are ignored (never fatal); anything
that does not validate is rejected by :func:`schemas.wire.decode_event` with a readable
reason and goes to the dead-letter topic.

Versions (semantic: a minor version only adds optional fields; producers that do not
send them stay valid):
- 1.1.0: ``skus`` on purchases (the products in the order).
- 1.0.0: first release.

>>> e = parse_event_object({"type": "purchase", "event_id": "e1", "customer_id": "c1",
...                         "ts": "2011-01-05T10:00:00+00:00", "amount": 12.5})
>>> e.ts_ms, e.amount
(1294221600000, 12.5)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)

EVENT_SCHEMA_VERSION = "1.1.0"

#: Longest feedback text accepted, in characters.
FEEDBACK_TEXT_MAX_CHARS = 5_000
#: Identifiers (event, customer, order, session, sku) are short opaque strings.
ID_MAX_CHARS = 128
#: Events before this or after this are rejected: a clock that far off is a bug.
TS_MIN_MS = int(datetime(1990, 1, 1, tzinfo=UTC).timestamp() * 1000)
TS_MAX_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
#: Most products (SKUs) one purchase may list (Online Retail's largest order has 541).
SKUS_MAX = 1_000
#: Largest absolute money amount in one event.
AMOUNT_MAX_ABS = 1e9

Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS)]
Money = Annotated[float, Field(allow_inf_nan=False, ge=-AMOUNT_MAX_ABS, le=AMOUNT_MAX_ABS)]


def ts_to_ms(value: Any) -> int:
    """Accept RFC 3339 with an explicit offset, or integer epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string or epoch milliseconds, not a boolean")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("ts in epoch milliseconds must be a whole, finite number")
        ms = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"ts is not an RFC 3339 timestamp: {value[:40]!r}") from exc
        if parsed.tzinfo is None:
            raise ValueError("ts must carry a UTC offset (e.g. +00:00 or Z)")
        ms = int(parsed.timestamp() * 1000)
    else:
        raise ValueError("ts must be an RFC 3339 string or epoch milliseconds")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError("ts is outside 1990-01-01 .. 2100-01-01")
    return ms


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)

    event_id: Identifier
    customer_id: Identifier
    ts_ms: Annotated[
        int,
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}],
                "description": "Event time: RFC 3339 with offset, or epoch milliseconds.",
            }
        ),
    ] = Field(alias="ts")

    @field_validator("ts_ms", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> int:
        return ts_to_ms(value)


class PurchaseEvent(_EventBase):
    type: Literal["purchase"]
    amount: Money = Field(description="Revenue of the order; negative for a refund.")
    cost: Money | None = Field(
        default=None, description="Cost to serve, for customer value = revenue - cost."
    )
    order_id: Identifier | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    items: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="Number of items (units) in the order."
    )
    skus: Annotated[list[Identifier], Field(max_length=SKUS_MAX)] | None = Field(
        default=None, description="The products (SKUs) in the order, each once."
    )


BrowseAction = Literal["view", "search", "add_to_cart", "remove_from_cart", "checkout"]


class BrowseEvent(_EventBase):
    type: Literal["browse"]
    action: BrowseAction
    sku: Identifier | None = None
    session_id: Identifier | None = None
    page: Annotated[str, Field(max_length=2_048)] | None = None


class FeedbackEvent(_EventBase):
    type: Literal["feedback"]
    text: Annotated[str, Field(min_length=1, max_length=FEEDBACK_TEXT_MAX_CHARS)]
    rating: Annotated[int, Field(ge=1, le=5, strict=True)] | None = None
    channel: Annotated[str, Field(max_length=64)] | None = None


Event = Annotated[PurchaseEvent | BrowseEvent | FeedbackEvent, Field(discriminator="type")]
EventType = Literal["purchase", "browse", "feedback"]

EVENT_ADAPTER: TypeAdapter[PurchaseEvent | BrowseEvent | FeedbackEvent] = TypeAdapter(Event)


def parse_event_object(obj: Any) -> PurchaseEvent | BrowseEvent | FeedbackEvent:
    """Validate a decoded JSON object as an event (raises ``pydantic.ValidationError``)."""
    return EVENT_ADAPTER.validate_python(obj)


def event_to_wire(event: PurchaseEvent | BrowseEvent | FeedbackEvent) -> dict[str, Any]:
    """The JSON object for an event, with ``ts`` as epoch milliseconds."""
    return event.model_dump(by_alias=True, exclude_none=True)
