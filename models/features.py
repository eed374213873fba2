"""Per-customer state, updated by one pure function from events in event time.

The state is small, plain and picklable: it lives in a Faust table in the worker and in
a dict in ``replay``, and nothing in it needs Kafka.

>>> from schemas.events import parse_event_object
>>> buy = parse_event_object({"type": "purchase", "event_id": "e1", "customer_id": "c1",
...                           "ts": 1_300_000_000_000, "amount": 20.0, "cost": 5.0})
>>> state = apply_event(None, buy)
>>> state.purchase_count, state.revenue, state.net_value
(1, 20.0, 15.0)
>>> apply_event(state, buy) is None   # the same event again is recognised
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

import orjson

from schemas.events import BrowseEvent, FeedbackEvent, PurchaseEvent

AnyEvent = PurchaseEvent | BrowseEvent | FeedbackEvent

DAY_MS = 86_400_000
#: How many recent event ids a customer remembers, to drop producer-side duplicates.
RECENT_EVENT_IDS = 16
#: Ratings at or below this count as negative feedback.
NEGATIVE_RATING_MAX = 2
#: Distinct products a customer's history keeps (the latest), for next-best-offer.
PRODUCT_HISTORY = 30
#: Half-life of the recency-weighted activity counters.
ACTIVITY_HALF_LIFE_DAYS = 60.0


class SourcePosition(NamedTuple):
    """Where an event was read from; lets redelivered messages be recognised exactly."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class CustomerState:
    """Everything the service keeps about one customer (see docs/privacy in the README).

    Stored as its fields' values in this order (:meth:`to_bytes`): a new field goes last,
    with a default, so that states written before it still load.
    """

    customer_id: str
    first_seen_ms: int
    last_seen_ms: int
    last_event_id: str = ""
    # Purchases: amounts are net of refunds; a refund is not a purchase for recency.
    purchase_count: int = 0
    refund_count: int = 0
    revenue: float = 0.0
    cost: float = 0.0
    first_purchase_ms: int | None = None
    last_purchase_ms: int | None = None
    gap_count: int = 0
    gap_mean_days: float = 0.0
    # The latest PRODUCT_HISTORY distinct products bought (latest last), and the products
    # offered to the customer at their last order (models.offers).
    products: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    # Browsing.
    views: int = 0
    searches: int = 0
    cart_adds: int = 0
    cart_removes: int = 0
    checkouts: int = 0
    last_browse_ms: int | None = None
    # The open cart: items added since the last checkout or purchase, and when the first
    # went in (None when empty); cart_alerted_ms is the cart an abandonment alert was for.
    cart_items: int = 0
    cart_opened_ms: int | None = None
    cart_alerted_ms: int | None = None
    # Recency-weighted activity (exponential decay, half-life ACTIVITY_HALF_LIFE_DAYS),
    # all decayed to decayed_at_ms; read them through decayed().
    purchases_decayed: float = 0.0
    spend_decayed: float = 0.0
    browse_decayed: float = 0.0
    decayed_at_ms: int | None = None
    # Feedback.
    feedback_count: int = 0
    rated_count: int = 0
    rating_sum: int = 0
    negative_feedback_count: int = 0
    last_feedback_ms: int | None = None
    # Sentiment of feedback, P(positive) from the rating or the sentiment model.
    sentiment_sum: float = 0.0
    sentiment_count: int = 0
    # Satisfaction (models.satisfaction): observations weighted by two decays (fast,
    # slow), all decayed to satisfaction_at_ms.
    satisfaction_fast_sum: float = 0.0
    satisfaction_fast_weight: float = 0.0
    satisfaction_slow_sum: float = 0.0
    satisfaction_slow_weight: float = 0.0
    satisfaction_at_ms: int | None = None
    # The customer's current segment (cluster id, -1 before the first), for hysteresis,
    # and its name then (names follow the centroids, so a downgrade compares names).
    segment_id: int = -1
    segment: str = ""
    # The valuable segment the customer was last in, until a downgrade alert is raised.
    valued_segment: str = ""
    # The customer's current churn tier ("" before the first score), for hysteresis.
    churn_tier: str = ""
    # The highest churn tier alerted since the customer's last purchase ("" for none).
    churn_alerted_tier: str = ""
    # Event time of the last alert per kind, for the per-customer cooldown.
    alerted_ms: dict[str, int] = field(default_factory=dict)
    # Idempotence: highest offset applied per "topic:partition", and recent event ids.
    offsets: dict[str, int] = field(default_factory=dict)
    recent_event_ids: list[str] = field(default_factory=list)

    @property
    def net_value(self) -> float:
        """Customer value to date: revenue minus cost to serve."""
        return self.revenue - self.cost

    @property
    def browse_count(self) -> int:
        return self.views + self.searches + self.cart_adds + self.cart_removes + self.checkouts

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.rated_count if self.rated_count else None

    @property
    def mean_sentiment(self) -> float | None:
        return self.sentiment_sum / self.sentiment_count if self.sentiment_count else None

    def decayed(self, value: float, now_ms: int) -> float:
        """One of the ``*_decayed`` counters as seen at event time ``now_ms``."""
        if self.decayed_at_ms is None or now_ms <= self.decayed_at_ms:
            return value
        return value * halving(now_ms - self.decayed_at_ms)

    def days_since_last_purchase(self, now_ms: int) -> float | None:
        if self.last_purchase_ms is None:
            return None
        return max(0.0, (now_ms - self.last_purchase_ms) / DAY_MS)

    def tenure_days(self, now_ms: int) -> float:
        return max(0.0, (now_ms - self.first_seen_ms) / DAY_MS)

    def to_bytes(self) -> bytes:
        """Two bytes of header (the format, and whether the customer bought or has an
        open cart: read without decoding by :func:`may_have_bought` and
        :func:`may_be_rescored`), then the fields' values in order as a JSON array. As
        a JSON object, the benchmark's states took 1,354 bytes, 3.7 us to encode and 5.3
        to decode; so, 605 bytes, 2.2 and 3.0 us (docs/benchmarks.md).

        >>> CustomerState("c", 1, 2, purchase_count=1).to_bytes()[:2]
        b'\\x01\\x01'
        """
        flags = (_BOUGHT if self.purchase_count else 0) | (_OPEN_CART if self.cart_items else 0)
        # Concatenated, a right-sized copy: orjson's own result keeps its whole working
        # buffer (16 KB for a state of 1.2 KB with orjson 3.13), and stores keep the bytes.
        return _HEADERS[flags] + orjson.dumps(_STATE_VALUES(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        if data[:1] == _POSITIONAL:
            values: list[Any] = orjson.loads(memoryview(data)[2:])
            # Fields a later version added at the end: dropped. Missing ones: defaults.
            del values[_FIELD_COUNT:]
            return cls(*values)
        # A JSON object, as versions before the positional format wrote: positional
        # when in the fields' order, a seventh of the time by keyword.
        raw: dict[str, Any] = orjson.loads(data)
        if tuple(raw) == _STATE_ORDER:
            return cls(*raw.values())
        if raw.keys() <= _STATE_FIELDS:
            return cls(**raw)
        return cls(**{k: v for k, v in raw.items() if k in _STATE_FIELDS})


def halving(elapsed_ms: int, half_life_days: float = ACTIVITY_HALF_LIFE_DAYS) -> float:
    """The weight left after ``elapsed_ms`` of event time at this half-life."""
    return float(0.5 ** (elapsed_ms / (half_life_days * DAY_MS)))


def _bump_activity(
    state: CustomerState, ts: int, purchases: float, spend: float, browse: float
) -> None:
    """Decay the activity counters to ``ts`` (never backwards), then add."""
    if state.decayed_at_ms is not None and ts > state.decayed_at_ms:
        factor = halving(ts - state.decayed_at_ms)
        state.purchases_decayed *= factor
        state.spend_decayed *= factor
        state.browse_decayed *= factor
    if state.decayed_at_ms is None or ts > state.decayed_at_ms:
        state.decayed_at_ms = ts
    state.purchases_decayed += purchases
    state.spend_decayed += spend
    state.browse_decayed += browse


def may_have_bought(data: bytes) -> bool:
    """False when a state's bytes (``CustomerState.to_bytes``) say, without decoding
    them, that the customer never bought: a model tick reads only buyers, and reading
    and decoding every customer of the partition was 37% of the ticks in the worker
    (docs/benchmarks.md).

    >>> may_have_bought(CustomerState("c", 0, 0).to_bytes())
    False
    """
    if data[:1] == _POSITIONAL:
        return bool(data[1] & _BOUGHT)
    # A JSON object (an earlier version's): orjson escapes a quote inside a string, so
    # the pattern can only be the key itself.
    return _NEVER_BOUGHT not in data


def may_be_rescored(data: bytes) -> bool:
    """False when a state's bytes say, without decoding them, that the customer never
    bought and has no open cart: a scan re-scores neither
    (``stream.processor.EventProcessor.rescore``), and decoding every customer of the
    partition to find that out was most of a scan's time (docs/benchmarks.md).

    >>> may_be_rescored(CustomerState("c", 0, 0).to_bytes())
    False
    >>> may_be_rescored(CustomerState("c", 0, 0, cart_items=1).to_bytes())
    True
    """
    if data[:1] == _POSITIONAL:
        return bool(data[1] & (_BOUGHT | _OPEN_CART))
    return _NEVER_BOUGHT not in data or _EMPTY_CART not in data


#: The first byte of a state in the positional format (a JSON object starts with "{").
_POSITIONAL = b"\x01"
#: The second byte's flags.
_BOUGHT = 1
_OPEN_CART = 2
_HEADERS = tuple(_POSITIONAL + bytes((flags,)) for flags in range(4))
#: In a JSON object state: the keys, with orjson's separators.
_NEVER_BOUGHT = b'"purchase_count":0,'
_EMPTY_CART = b'"cart_items":0,'


#: The state's field names, and a getter of all their values in declaration order:
#: copying through them costs a fifth of ``dataclasses.replace`` (which walks the fields
#: and calls ``__init__`` by keyword at every event).
_STATE_ORDER = tuple(f.name for f in dataclasses.fields(CustomerState))
_STATE_FIELDS = frozenset(_STATE_ORDER)
_FIELD_COUNT = len(_STATE_ORDER)
_STATE_VALUES = attrgetter(*_STATE_ORDER)


def copy_state(state: CustomerState) -> CustomerState:
    new = CustomerState(*_STATE_VALUES(state))
    new.offsets = dict(state.offsets)
    new.recent_event_ids = list(state.recent_event_ids)
    new.alerted_ms = dict(state.alerted_ms)
    new.products = list(state.products)
    new.offers = list(state.offers)
    return new


def is_duplicate(
    state: CustomerState | None, event: AnyEvent, position: SourcePosition | None
) -> bool:
    """True when this event was already applied (redelivered message or repeated id)."""
    if state is None:
        return False
    if position is not None:
        seen = state.offsets.get(f"{position.topic}:{position.partition}")
        if seen is not None and position.offset <= seen:
            return True
    return event.event_id in state.recent_event_ids


def apply_event(
    state: CustomerState | None, event: AnyEvent, position: SourcePosition | None = None
) -> CustomerState | None:
    """The customer's state after ``event``, or ``None`` if the event was already applied.

    The input state is not modified. Event time drives everything: events may arrive out
    of order across topics, so "last" fields take the maximum event time.
    """
    if is_duplicate(state, event, position):
        return None
    ts = event.ts_ms
    if state is None:
        new = CustomerState(customer_id=event.customer_id, first_seen_ms=ts, last_seen_ms=ts)
    else:
        new = copy_state(state)
        new.first_seen_ms = min(new.first_seen_ms, ts)
        new.last_seen_ms = max(new.last_seen_ms, ts)
    new.last_event_id = event.event_id
    if position is not None:
        new.offsets[f"{position.topic}:{position.partition}"] = position.offset
    new.recent_event_ids.append(event.event_id)
    del new.recent_event_ids[:-RECENT_EVENT_IDS]

    if isinstance(event, PurchaseEvent):
        _apply_purchase(new, event)
    elif isinstance(event, BrowseEvent):
        _apply_browse(new, event)
    else:
        _apply_feedback(new, event)
    return new


def _apply_purchase(state: CustomerState, event: PurchaseEvent) -> None:
    state.revenue += event.amount
    if event.cost is not None:
        state.cost += event.cost
    if event.amount < 0:
        state.refund_count += 1
        return
    ts = event.ts_ms
    state.purchase_count += 1
    if event.skus:
        remember_products(state, event.skus)
    _close_cart(state, ts)
    if state.last_purchase_ms is None or ts >= state.last_purchase_ms:
        state.churn_alerted_tier = ""  # a new purchase cycle
    _bump_activity(state, ts, 1.0, event.amount, 0.0)
    if state.first_purchase_ms is None or ts < state.first_purchase_ms:
        state.first_purchase_ms = ts
    if state.last_purchase_ms is None:
        state.last_purchase_ms = ts
    elif ts > state.last_purchase_ms:
        # Only in-order purchases extend the gap statistics; a late one cannot be placed.
        gap_days = (ts - state.last_purchase_ms) / DAY_MS
        state.gap_count += 1
        state.gap_mean_days += (gap_days - state.gap_mean_days) / state.gap_count
        state.last_purchase_ms = ts


def remember_products(state: CustomerState, products: list[str]) -> None:
    """Add an order's products to the history: each moves to the end, the oldest go."""
    history = dict.fromkeys(state.products)
    for product in products:
        history.pop(product, None)
        history[product] = None
    state.products = list(history)[-PRODUCT_HISTORY:]


def _apply_browse(state: CustomerState, event: BrowseEvent) -> None:
    _bump_activity(state, event.ts_ms, 0.0, 0.0, 1.0)
    match event.action:
        case "view":
            state.views += 1
        case "search":
            state.searches += 1
        case "add_to_cart":
            state.cart_adds += 1
            state.cart_items += 1
            if state.cart_opened_ms is None or event.ts_ms < state.cart_opened_ms:
                state.cart_opened_ms = event.ts_ms
        case "remove_from_cart":
            state.cart_removes += 1
            state.cart_items = max(state.cart_items - 1, 0)
            if state.cart_items == 0:
                state.cart_opened_ms = None
        case "checkout":
            state.checkouts += 1
            _close_cart(state, event.ts_ms)
    if state.last_browse_ms is None or event.ts_ms > state.last_browse_ms:
        state.last_browse_ms = event.ts_ms


def _close_cart(state: CustomerState, ts: int) -> None:
    """A checkout or purchase empties the cart it follows (not one opened after it)."""
    if state.cart_opened_ms is not None and state.cart_opened_ms <= ts:
        state.cart_items = 0
        state.cart_opened_ms = None


def _apply_feedback(state: CustomerState, event: FeedbackEvent) -> None:
    state.feedback_count += 1
    if event.rating is not None:
        state.rated_count += 1
        state.rating_sum += event.rating
        if event.rating <= NEGATIVE_RATING_MAX:
            state.negative_feedback_count += 1
        if event.rating != 3:
            record_sentiment(state, 1.0 if event.rating > 3 else 0.0)
    if state.last_feedback_ms is None or event.ts_ms > state.last_feedback_ms:
        state.last_feedback_ms = event.ts_ms


def record_sentiment(state: CustomerState, proba_positive: float) -> None:
    """Count one feedback's sentiment (from its rating, or predicted when unrated)."""
    state.sentiment_sum += proba_positive
    state.sentiment_count += 1
