"""Churn risk: online logistic regression on per-customer features, learned from labels
that mature in event time.

A customer *churns* when they make no purchase for ``horizon_days`` (default 90). At
regular ticks of event time (see ``models.retention``) the model takes a snapshot of
each buying customer's features; a snapshot is labelled *stayed* (0) as soon as the
customer buys again within the horizon, and *churned* (1) once the stream's clock
passes the snapshot time plus the horizon with no purchase. Customers with no purchase
for ``max_recency_days`` are not snapshotted any more: they are already gone, and
learning that over and over drowns the cases that matter. Only matured labels are
learned: never the future.

>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> e = parse_event_object({"type": "purchase", "event_id": "p1", "customer_id": "c1",
...                         "ts": 1_300_000_000_000, "amount": 20.0})
>>> model = ChurnModel()
>>> state = apply_event(None, e)
>>> 0.0 <= model.predict_proba(state, e.ts_ms) <= 1.0
True
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from river import compose, linear_model, optim, preprocessing

from models.features import DAY_MS, CustomerState
from models.metrics import roc_auc

Tier = Literal["low", "medium", "high"]
#: How far below a tier's threshold a customer must fall to leave that tier.
TIER_HYSTERESIS = 0.05
#: Matured labels the model needs before its tier changes raise alerts.
MIN_LABELS_FOR_ALERTS = 500
#: Matured labels behind the live (prequential) AUC.
RECENT_LABELS = 2_000
NO_EXTRA: Mapping[str, float] = MappingProxyType({})


class Driver(NamedTuple):
    feature: str
    text: str
    push: float  # contribution to the logit: averaged weight x scaled value


def describe_driver(feature: str, state: CustomerState, now_ms: int) -> str:
    """A feature of :func:`churn_features` as a fact about the customer, in words."""
    quiet = state.days_since_last_purchase(now_ms)
    gap = state.gap_mean_days if state.gap_count else None
    match feature:
        case "recency_log" | "overdue" if quiet is not None:
            text = f"no purchase for {quiet:.0f} days"
            if gap and gap >= 1:
                text += f", {quiet / gap:.1f}x this customer's usual gap of {gap:.0f} days"
            return text
        case "frequency_log":
            return f"{state.purchase_count} order(s) so far"
        case "monetary_log" | "order_value_log":
            return f"{max(state.revenue, 0.0):,.2f} spent in {state.purchase_count} order(s)"
        case "purchases_recent_log" | "spend_recent_log":
            recent = state.decayed(state.purchases_decayed, now_ms)
            return f"{recent:.1f} recent purchases (weighted to the last two months)"
        case "browse_recent_log":
            recent = state.decayed(state.browse_decayed, now_ms)
            if recent < 0.05:
                return "no recent visits to the shop"
            return f"{recent:.1f} recent page views (weighted to the last two months)"
        case "browse_recency_log" if state.last_browse_ms is not None:
            return f"last browsed {(now_ms - state.last_browse_ms) / DAY_MS:.0f} days ago"
        case "open_cart_log":
            if not state.cart_items:
                return "nothing in the cart"
            return f"{state.cart_items} item(s) left in the cart"
        case "negative_feedback_log":
            return f"{state.negative_feedback_count} negative rating(s)"
        case "rating_centered" if state.mean_rating is not None:
            return f"mean rating {state.mean_rating:.1f} of 5"
        case "sentiment_centered" if state.mean_sentiment is not None:
            return f"{state.mean_sentiment:.0%} of feedback sentiment positive"
        case "refund_share":
            return f"{state.refund_count} refund(s) in {state.purchase_count} order(s)"
        case "tenure_log":
            return f"customer for {state.tenure_days(now_ms):.0f} days"
        case "gap_log" if gap and gap >= 1:
            return f"buys every {gap:.0f} days on average"
        case "gap_log":
            return f"{state.purchase_count} orders, all within a day"
        case "influence_log":
            return "how often others' orders follow theirs on the same products (influence)"
    return feature.replace("_", " ")


def churn_features(state: CustomerState, now_ms: int) -> dict[str, float]:
    """Features of a customer at event time ``now_ms`` (log scales for heavy tails)."""
    since = state.last_purchase_ms if state.last_purchase_ms is not None else state.first_seen_ms
    recency = max(0.0, (now_ms - since) / DAY_MS)
    revenue = max(state.revenue, 0.0)
    mean_gap = state.gap_mean_days if state.gap_count else 0.0
    last_browse = state.last_browse_ms
    mean_rating = state.mean_rating
    sentiment = state.mean_sentiment
    return {
        "recency_log": math.log1p(recency),
        "frequency_log": math.log1p(state.purchase_count),
        "monetary_log": math.log1p(revenue),
        "order_value_log": math.log1p(revenue / max(state.purchase_count, 1)),
        "tenure_log": math.log1p(state.tenure_days(now_ms)),
        "gap_log": math.log1p(mean_gap),
        "overdue": min(recency / mean_gap, 10.0) if mean_gap > 0 else 0.0,
        "purchases_recent_log": math.log1p(state.decayed(state.purchases_decayed, now_ms)),
        "spend_recent_log": math.log1p(max(state.decayed(state.spend_decayed, now_ms), 0.0)),
        "browse_recent_log": math.log1p(state.decayed(state.browse_decayed, now_ms)),
        "open_cart_log": math.log1p(state.cart_items),
        "browse_recency_log": math.log1p(max(0.0, (now_ms - last_browse) / DAY_MS))
        if last_browse is not None
        else 0.0,
        "refund_share": state.refund_count / max(state.purchase_count + state.refund_count, 1),
        "negative_feedback_log": math.log1p(state.negative_feedback_count),
        "rating_centered": (mean_rating - 3.0) / 2.0 if mean_rating is not None else 0.0,
        "sentiment_centered": 2.0 * sentiment - 1.0 if sentiment is not None else 0.0,
    }


def snapshot_due(state: CustomerState, at_ms: int, max_recency_ms: int | None) -> bool:
    """Whether a customer is snapshotted at a tick: a buyer by then, not gone for longer
    than ``max_recency_ms`` (learning that they are gone, over and over, teaches nothing)."""
    if state.purchase_count == 0 or state.first_seen_ms > at_ms:
        return False
    last = state.last_purchase_ms
    return max_recency_ms is None or last is None or at_ms - last <= max_recency_ms


#: Feature name tuples, one object per distinct tuple (see FeatureRecord).
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return _NAMES.setdefault(names, names)


def _float32_bytes(values: Iterable[float]) -> bytes:
    return array("f", values).tobytes()


class FeatureRecord:
    """A customer's features at event time ``taken_ms``, kept until its label matures
    (a churn snapshot; a demand target adds its forecast and the spend since). A model
    holds one per buying customer per tick until it matures (up to 13 per customer for
    churn at the defaults, 9.3 after a year of Online Retail), so it is one object: the
    values as the bytes of 32-bit floats (7 significant digits, for features that are
    logs, rates and shares), the names a tuple shared by every record with the same
    features. As a dict of features each took about 1 KB; as a record holding a
    separate features object with an array, 48 bytes more (docs/benchmarks.md).

    >>> record = FeatureRecord("c1", 0, {"recency_log": 1.5, "frequency_log": 0.5})
    >>> record.features()
    {'recency_log': 1.5, 'frequency_log': 0.5}
    >>> record.names is FeatureRecord("c2", 0, {"recency_log": 0.0, "frequency_log": 0.0}).names
    True

    A record of the same customer and time whose features begin with another's shares
    its values (``beside``):

    >>> fewer = FeatureRecord("c1", 0, {"recency_log": 1.5}, beside=record)
    >>> fewer.values is record.values, fewer.features()
    (True, {'recency_log': 1.5})
    """

    __slots__ = ("customer_id", "names", "resolved", "taken_ms", "values")
    #: The attributes a pickle holds, in order (a subclass adds its own).
    _fields: tuple[str, ...] = __slots__
    customer_id: str
    taken_ms: int
    names: tuple[str, ...]
    values: bytes
    resolved: bool

    def __init__(
        self,
        customer_id: str,
        taken_ms: int,
        features: Mapping[str, float],
        beside: FeatureRecord | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.taken_ms = taken_ms
        self.names = names = _shared_names(tuple(features))
        self.resolved = False
        if (
            beside is not None
            and beside.customer_id == customer_id
            and beside.taken_ms == taken_ms
            and beside.names[: len(names)] == names
        ):
            # The same customer's features at the same time, and more: the same values
            # (a demand target beside its churn snapshot, 3.3 MiB in a worker).
            self.values = beside.values
        else:
            self.values = _float32_bytes(features.values())

    def features(self) -> dict[str, float]:
        values = memoryview(self.values).cast("f")[: len(self.names)]
        return dict(zip(self.names, values, strict=True))

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        if state[0] is None:
            # Pickled by d3b3595 or earlier as a slotted dataclass, (None, {slot:
            # value}): its features a PackedFeatures or (before 2e39126) a dict.
            slots = state[1]
            assert isinstance(slots, dict)
            for name, value in slots.items():
                if isinstance(value, PackedFeatures):
                    self.names, self.values = value.names, value.values
                elif name == "features":
                    self.names = _shared_names(tuple(value))
                    self.values = _float32_bytes(value.values())
                else:
                    setattr(self, name, value)
            return
        for name, value in zip(self._fields, state, strict=True):
            setattr(self, name, value)
        self.names = _shared_names(self.names)


class PackedFeatures:
    """The features of a record pickled by 2e39126 to d3b3595 (a names tuple and an
    array): unpickled only to become a :class:`FeatureRecord`'s own."""

    __slots__ = ("names", "values")

    def __setstate__(self, state: tuple[tuple[str, ...], array[float]]) -> None:
        names, values = state
        self.names = _shared_names(names)
        self.values = _float32_bytes(values)


class _Snapshot(FeatureRecord):
    """A churn snapshot (the name under which checkpoints hold them)."""

    __slots__ = ()


Record = TypeVar("Record", bound=FeatureRecord)


class OpenRecords(Generic[Record]):
    """Each customer's records not matured yet, oldest first. A customer's only record
    is held as itself, several in a list: a list for each customer's one open record
    took 3.2 MiB in the churn model and 3.7 MiB in demand's, of a worker of 8 partitions
    (docs/benchmarks.md).

    >>> open_ = OpenRecords()
    >>> first, second = FeatureRecord("c1", 1, {}), FeatureRecord("c1", 2, {})
    >>> open_.add(first); open_.add(second)
    >>> [r.taken_ms for r in open_.of("c1")], "c1" in open_, len(open_)
    ([1, 2], True, 1)
    >>> open_.remove(first); open_.of("c1") == (second,)
    True
    """

    __slots__ = ("by_customer",)

    def __init__(self) -> None:
        self.by_customer: dict[str, Record | list[Record]] = {}

    @classmethod
    def from_lists(cls, lists: Mapping[str, list[Record]]) -> OpenRecords[Record]:
        """Records held a list per customer (models pickled by d3b3595 or earlier)."""
        records: OpenRecords[Record] = cls()
        for customer_id, held in lists.items():
            records.keep(customer_id, held)
        return records

    def __len__(self) -> int:
        return len(self.by_customer)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self.by_customer

    def of(self, customer_id: str) -> Sequence[Record]:
        held = self.by_customer.get(customer_id)
        if held is None:
            return ()
        return held if isinstance(held, list) else (held,)

    def add(self, record: Record) -> None:
        held = self.by_customer.get(record.customer_id)
        if held is None:
            self.by_customer[record.customer_id] = record
        elif isinstance(held, list):
            held.append(record)
        else:
            self.by_customer[record.customer_id] = [held, record]

    def keep(self, customer_id: str, records: Sequence[Record]) -> None:
        """Only ``records`` stay open for the customer."""
        if not records:
            self.by_customer.pop(customer_id, None)
        elif len(records) == 1:
            self.by_customer[customer_id] = records[0]
        else:
            self.by_customer[customer_id] = list(records)

    def remove(self, record: Record) -> None:
        held = self.by_customer[record.customer_id]
        if isinstance(held, list):
            held.remove(record)
            if len(held) == 1:
                self.by_customer[record.customer_id] = held[0]
        else:
            del self.by_customer[record.customer_id]

    def pop(self, customer_id: str) -> bool:
        """Drop the customer's records; whether they had any."""
        return self.by_customer.pop(customer_id, None) is not None

    def __getstate__(self) -> dict[str, Record | list[Record]]:
        return self.by_customer

    def __setstate__(self, state: dict[str, Record | list[Record]]) -> None:
        self.by_customer = state


class MaturingRecords(Generic[Record]):
    """A model's records awaiting their label or target: ``pending`` in the order taken,
    which is the order they mature in, and ``open`` by customer (a purchase resolves a
    customer's own). The churn and demand models' shared bookkeeping; ``horizon_ms`` is
    how long a record waits."""

    horizon_ms: int

    def __init__(self) -> None:
        self.pending: deque[Record] = deque()
        self.open: OpenRecords[Record] = OpenRecords()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.open, dict):  # pickled by d3b3595 or earlier
            self.open = OpenRecords.from_lists(self.open)

    def _await(self, record: Record) -> None:
        self.pending.append(record)
        self.open.add(record)

    def _matured(self, now_ms: int) -> Iterator[Record]:
        """The records not yet resolved whose horizon ended by ``now_ms``, oldest first,
        each no longer open as it comes."""
        while self.pending and self.pending[0].taken_ms + self.horizon_ms <= now_ms:
            record = self.pending.popleft()
            if not record.resolved:
                self.open.remove(record)
                yield record

    def forget(self, customer_id: str) -> None:
        """Drop the customer's records not yet labelled (their features are personal
        data); what the model already learned from them stays, as aggregate weights."""
        if self.open.pop(customer_id):
            self.pending = deque(r for r in self.pending if r.customer_id != customer_id)


class FoldedWeights(NamedTuple):
    """:meth:`ChurnModel._fold`'s answer, and what it was made for."""

    labels: int
    names: tuple[str, ...]
    intercept: float
    coefs: tuple[float, ...]


class ChurnModel(MaturingRecords[_Snapshot]):
    """Scaled logistic regression with event-time label maturation."""

    VERSION = "churn-lr/1"

    def __init__(
        self,
        horizon_days: float = 90.0,
        tier_thresholds: tuple[float, float] = (0.4, 0.7),
        learning_rate: float = 0.01,
        optimizer: optim.base.Optimizer | None = None,
        l2: float = 0.0,
        averaging_window: int = 20_000,
        max_recency_days: float | None = 180.0,
    ) -> None:
        self.max_recency_ms = None if max_recency_days is None else int(max_recency_days * DAY_MS)
        self.horizon_ms = int(horizon_days * DAY_MS)
        self.tier_thresholds = tier_thresholds
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optimizer or optim.SGD(learning_rate), l2=l2),
        )
        super().__init__()
        # Predictions use a running average of the SGD weights (Polyak averaging over
        # about the last `averaging_window` labels): single-pass SGD weights wander with
        # the order labels mature in, and their probabilities come out far from observed
        # churn rates; the average ranks about as well and is calibrated (docs/models.md).
        self.averaging_window = averaging_window
        self.avg_weights: dict[str, float] = {}
        self.avg_intercept = 0.0
        self.labels_learned = {0: 0, 1: 0}
        #: (prediction before learning, outcome) of the latest matured labels.
        self.recent: deque[tuple[float, bool]] = deque(maxlen=RECENT_LABELS)
        #: The weights predictions use, as of the labels learned (not pickled).
        self._folded: FoldedWeights | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_folded"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._folded = None

    def predict_proba(
        self, state: CustomerState, now_ms: int, extra: Mapping[str, float] = NO_EXTRA
    ) -> float:
        """P(no purchase in the horizon); ``extra``: features from other models."""
        return self._proba({**churn_features(state, now_ms), **extra})

    def _proba(self, features: dict[str, float]) -> float:
        names = tuple(features)
        folded = self._folded
        if folded is None or folded.labels != self.learned or folded.names != names:
            folded = self._folded = self._fold(names)
        logit = folded.intercept + sum(map(operator.mul, folded.coefs, features.values()))
        return 1.0 / (1.0 + math.exp(-min(max(logit, -30.0), 30.0)))

    @property
    def learned(self) -> int:
        """Labels learned, of both outcomes."""
        return self.labels_learned[0] + self.labels_learned[1]

    def _fold(self, names: tuple[str, ...]) -> FoldedWeights:
        """The averaged weights with the scaler folded in, for features in this order:
        the weight of ``(x - mean) / std`` is ``weight / std`` of ``x``, less ``weight *
        mean / std`` of the intercept. Scaling each feature into a dict of its own at
        each prediction took 40% of it."""
        scaler = self.model["StandardScaler"]
        intercept, coefs = self.avg_intercept, []
        for name in names:
            var = scaler.vars.get(name, 0.0)
            coef = self.avg_weights.get(name, 0.0) / var**0.5 if var else 0.0
            intercept -= coef * scaler.means.get(name, 0.0)
            coefs.append(coef)
        return FoldedWeights(self.learned, names, intercept, tuple(coefs))

    def recent_auc(self) -> float | None:
        """Prequential AUC over the last matured labels (each predicted before it was
        learned); ``None`` until both outcomes are among them."""
        labels = [churned for _, churned in self.recent]
        if len(set(labels)) < 2:
            return None
        return roc_auc(labels, [proba for proba, _ in self.recent])

    def tier(self, proba: float, current: str | None = None) -> Tier:
        """The tier of ``proba``; a customer stays in ``current`` until the probability
        falls ``TIER_HYSTERESIS`` below that tier's threshold (no flapping)."""
        medium, high = self.tier_thresholds
        tier: Tier = "high" if proba >= high else "medium" if proba >= medium else "low"
        if current == "high" and tier != "high" and proba >= high - TIER_HYSTERESIS:
            return "high"
        if current == "medium" and tier == "low" and proba >= medium - TIER_HYSTERESIS:
            return "medium"
        return tier

    @property
    def ready(self) -> bool:
        """Enough matured labels for its opinion to be worth an alert."""
        return self.learned >= MIN_LABELS_FOR_ALERTS

    def drivers(
        self,
        state: CustomerState,
        now_ms: int,
        top: int = 3,
        extra: Mapping[str, float] = NO_EXTRA,
    ) -> list[Driver]:
        """The features that push this customer's risk up the most (weight x scaled
        value), in words."""
        features = {**churn_features(state, now_ms), **extra}
        if not state.gap_count:
            # With one order there is no gap: the same fact as frequency, said twice.
            del features["gap_log"]
        scaled = self.model["StandardScaler"].transform_one(features)
        pushes = sorted(
            ((self.avg_weights.get(name, 0.0) * value, name) for name, value in scaled.items()),
            reverse=True,
        )
        return [
            Driver(name, describe_driver(name, state, now_ms), push)
            for push, name in pushes[:top]
            if push > 0
        ]

    def on_purchase(self, customer_id: str, ts_ms: int) -> None:
        """A purchase matures the customer's open snapshots taken before it as *stayed*."""
        snapshots = self.open.of(customer_id)
        if not snapshots:
            return
        keep = []
        for snap in snapshots:
            if snap.taken_ms < ts_ms:
                self._learn(snap, churned=False)
            else:
                keep.append(snap)
        self.open.keep(customer_id, keep)

    def mature(self, now_ms: int) -> None:
        """Label *churned* every open snapshot whose horizon ended by ``now_ms``."""
        for snap in self._matured(now_ms):
            self._learn(snap, churned=True)

    def snapshot(
        self, state: CustomerState, at_ms: int, extra: Mapping[str, float] = NO_EXTRA
    ) -> FeatureRecord | None:
        """Remember a buying customer's features at ``at_ms``, labelled once it matures;
        the snapshot taken, if the customer is due one."""
        if not snapshot_due(state, at_ms, self.max_recency_ms):
            return None
        # One object per customer id for all their snapshots (each state read decodes
        # its own copy).
        customer_id = sys.intern(state.customer_id)
        snap = _Snapshot(customer_id, at_ms, {**churn_features(state, at_ms), **extra})
        self._await(snap)
        return snap

    def _learn(self, snap: _Snapshot, *, churned: bool) -> None:
        snap.resolved = True
        features = snap.features()
        self.recent.append((self._proba(features), churned))
        self.model.learn_one(features, churned)
        self.labels_learned[int(churned)] += 1
        regression = self.model["LogisticRegression"]
        rate = max(1.0 / self.learned, 1.0 / self.averaging_window)
        for name, weight in regression.weights.items():
            avg = self.avg_weights.get(name, 0.0)
            self.avg_weights[name] = avg + rate * (weight - avg)
        self.avg_intercept += rate * (regression.intercept - self.avg_intercept)
