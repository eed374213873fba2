"""Demand forecast: each customer's spend in the next 30 days, learned online from
targets that mature in event time.

At the same event-time ticks as the churn snapshots (``models.retention``), the model
records each buying customer's features (:func:`models.churn.churn_features`) and what
it predicts for them. Every purchase in the following ``horizon_days`` adds its amount
(net of refunds) to that record; once the stream's clock passes the record's time plus
the horizon, the spend is known and learned. Only matured targets are learned: never
the future. Spend is heavy-tailed, so the regressor learns ``log1p(spend)`` and predicts
``expm1`` of it: a typical (median-like) spend rather than a mean that a few wholesale
orders drag up, which is also what the mean absolute error rewards.

>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> buy = parse_event_object({"type": "purchase", "event_id": "p1", "customer_id": "c1",
...                           "ts": 1_300_000_000_000, "amount": 50.0})
>>> state = apply_event(None, buy)
>>> model = DemandForecast()
>>> model.snapshot(state, buy.ts_ms + 1)
>>> model.on_purchase("c1", buy.ts_ms + 5 * 86_400_000, 80.0)
>>> model.mature(buy.ts_ms + 40 * 86_400_000)
>>> model.targets_learned, round(model.predict(state, buy.ts_ms + 1) > 0)
(1, 1)
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Mapping

from river import compose, preprocessing, tree

from models.churn import FeatureRecord, MaturingRecords, churn_features, snapshot_due
from models.features import DAY_MS, CustomerState

#: Matured targets behind the live (prequential) error.
RECENT_TARGETS = 2_000
#: Matured targets the model needs before its forecasts are published as ready.
MIN_TARGETS = 500
#: The cap of forecasts for models pickled before they kept the largest target learned
#: (log1p of a billion: no customer's 30 days, and far from overflowing ``expm1``).
LOG_SPEND_CAP = math.log1p(1e9)


class DemandTarget(FeatureRecord):
    """One customer's features at ``taken_ms``, the forecast then, and the spend since."""

    __slots__ = ("predicted", "spend")
    _fields = FeatureRecord._fields + __slots__
    predicted: float
    spend: float

    def __init__(
        self,
        customer_id: str,
        taken_ms: int,
        features: Mapping[str, float],
        predicted: float,
        beside: FeatureRecord | None = None,
    ) -> None:
        super().__init__(customer_id, taken_ms, features, beside)
        self.predicted = predicted
        self.spend = 0.0


class DemandForecast(MaturingRecords[DemandTarget]):
    """Hoeffding tree regressor (River, scaled features) on the churn features, one
    matured target at a time; the spend in the ``horizon_days`` after each snapshot is
    the target."""

    VERSION = "demand-hoeffding/1"
    #: The largest target learned, log1p of a spend: forecasts stay at or below it.
    max_log_spend: float = LOG_SPEND_CAP

    def __init__(
        self,
        horizon_days: float = 30.0,
        max_recency_days: float | None = 180.0,
        grace_period: int = 200,
        max_depth: int = 8,
    ) -> None:
        self.horizon_ms = int(horizon_days * DAY_MS)
        self.max_recency_ms = None if max_recency_days is None else int(max_recency_days * DAY_MS)
        # Leaves choose between their mean and a linear model of the scaled features,
        # whichever has erred less (River's "adaptive"): 265.7 against 273.5 for means
        # alone on Online Retail (docs/models.md).
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            tree.HoeffdingTreeRegressor(grace_period=grace_period, max_depth=max_depth),
        )
        super().__init__()
        self.targets_learned = 0
        self.max_log_spend = 0.0
        #: (forecast when taken, spend) of the latest matured targets.
        self.recent: deque[tuple[float, float]] = deque(maxlen=RECENT_TARGETS)
        #: When a list, every matured target is appended to it (``crm-scorer evaluate``).
        self.log: list[DemandTarget] | None = None

    @property
    def ready(self) -> bool:
        return self.targets_learned >= MIN_TARGETS

    def predict(self, state: CustomerState, now_ms: int) -> float:
        """Expected spend in the ``horizon_days`` after ``now_ms``."""
        return self._predict(churn_features(state, now_ms))

    def _predict(self, features: dict[str, float]) -> float:
        if not self.targets_learned:
            return 0.0
        # A leaf's linear model extrapolates without bound on features far from those
        # it learned (a replay of Online Retail met one whose expm1 overflowed): no
        # forecast above the largest spend learned.
        log_spend = min(self.model.predict_one(features), self.max_log_spend)
        return max(math.expm1(log_spend), 0.0)

    def recent_mae(self) -> float | None:
        """Mean absolute error of the latest matured forecasts (each made before its
        target was learned); ``None`` before the first."""
        if not self.recent:
            return None
        return sum(abs(p - y) for p, y in self.recent) / len(self.recent)

    def snapshot(
        self, state: CustomerState, at_ms: int, beside: FeatureRecord | None = None
    ) -> None:
        """Remember a buying customer's features and forecast at ``at_ms``; ``beside``:
        the churn snapshot taken with it, whose values it shares."""
        if not snapshot_due(state, at_ms, self.max_recency_ms):
            return
        features = churn_features(state, at_ms)
        customer_id = sys.intern(state.customer_id)  # one object for all their targets
        target = DemandTarget(customer_id, at_ms, features, self._predict(features), beside)
        self._await(target)

    def on_purchase(self, customer_id: str, ts_ms: int, amount: float) -> None:
        """Add a purchase (or a refund, negative) to the open targets it falls after."""
        for target in self.open.of(customer_id):
            if target.taken_ms < ts_ms < target.taken_ms + self.horizon_ms:
                target.spend += amount

    def mature(self, now_ms: int) -> None:
        """Learn every target whose horizon ended by ``now_ms``."""
        for target in self._matured(now_ms):
            target.resolved = True
            spend = max(target.spend, 0.0)
            self.recent.append((target.predicted, spend))
            if self.log is not None:
                self.log.append(target)
            self.model.learn_one(target.features(), math.log1p(spend))
            self.max_log_spend = max(self.max_log_spend, math.log1p(spend))
            self.targets_learned += 1
