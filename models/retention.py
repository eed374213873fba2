"""All retention models behind the :class:`~models.scoring.CustomerScorer` seam:
churn risk, segments, sentiment and customer value, with one event-time clock.

>>> from schemas.events import parse_event_object
>>> from models.features import apply_event
>>> models = RetentionModels()
>>> e = parse_event_object({"type": "purchase", "event_id": "p1", "customer_id": "c1",
...                         "ts": 1_300_000_000_000, "amount": 20.0})
>>> state = apply_event(None, e)
>>> models.advance(e.ts_ms, lambda: [state])
>>> scores = models.score_one(state, e.ts_ms, e)
>>> scores.churn_tier in ("low", "medium", "high"), scores.clv is not None
(True, True)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Literal

from models.checkpoint import collections_paused
from models.churn import ChurnModel, Driver
from models.demand import DemandForecast
from models.features import DAY_MS, AnyEvent, CustomerState
from models.influence import CoPurchaseInfluence
from models.offers import CoPurchaseOffers
from models.scoring import Scores
from models.segments import SegmentModel, segment_features
from models.sentiment import SentimentModel, rating_label
from models.value import expected_clv, value_at_risk
from schemas.events import FeedbackEvent, PurchaseEvent

#: What a checkpoint of these models must have been written by.
MODEL_VERSION = "+".join(
    (
        ChurnModel.VERSION,
        SegmentModel.VERSION,
        SentimentModel.VERSION,
        DemandForecast.VERSION,
        CoPurchaseOffers.VERSION,
        CoPurchaseInfluence.VERSION,
    )
)
#: Versions whose checkpoints and model files load, with the models they lack new.
UPGRADES_FROM = frozenset(
    {
        "churn-lr/1+segments-kmeans/1+sentiment-mnb/1",
        # Sentiment's counts keyed by n-gram: its checkpoints load hashed (models/sentiment.py).
        "churn-lr/1+segments-kmeans/1+sentiment-mnb/1+demand-hoeffding/1+offers-cooc/1"
        "+influence-copurchase/1",
    }
)
#: Products offered per customer (the hit rate in docs/models.md is at 10).
OFFERS = 10


@dataclass(frozen=True, slots=True)
class ModelConfig:
    churn_horizon_days: float = 90.0
    snapshot_interval_days: float = 7.0
    churn_tier_medium: float = 0.4
    churn_tier_high: float = 0.7
    segments: int = 5
    segment_halflife: float = 0.03
    seed: int = 7
    # Fields added later go last: a pickled config (slots) is restored by position.
    demand_horizon_days: float = 30.0
    #: Co-purchase influence as a churn feature (docs/models.md: measured either way).
    churn_uses_influence: bool = False


class RetentionModels:
    """Online models, learned and scored one event at a time, in event time."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self.churn = ChurnModel(
            horizon_days=self.config.churn_horizon_days,
            tier_thresholds=(self.config.churn_tier_medium, self.config.churn_tier_high),
        )
        self.segments = SegmentModel(
            n_clusters=self.config.segments, halflife=self.config.segment_halflife
        )
        self.sentiment = SentimentModel()
        self._add_missing_models()
        self.model_version = MODEL_VERSION
        self.interval_ms = int(self.config.snapshot_interval_days * DAY_MS)
        self.next_tick_ms: int | None = None
        self.clock_ms: int | None = None
        self.rng = random.Random(self.config.seed)

    def _add_missing_models(self) -> None:
        """The models added after the first version, new where a checkpoint of an older
        version lacks them."""
        if not hasattr(self, "demand"):
            self.demand = DemandForecast(horizon_days=self.config.demand_horizon_days)
        if not hasattr(self, "offers"):
            self.offers = CoPurchaseOffers()
        if not hasattr(self, "influence"):
            self.influence = CoPurchaseInfluence()

    def __setstate__(self, state: dict[str, object]) -> None:
        """Unpickle, bringing models saved by an older version (UPGRADES_FROM) up to
        date: what they learned stays, the models added since start new."""
        self.__dict__.update(state)
        if self.model_version == MODEL_VERSION:
            return
        if self.model_version not in UPGRADES_FROM:
            raise ValueError(f"models of {self.model_version} cannot be upgraded")
        old = self.config
        self.config = ModelConfig(
            **{f.name: getattr(old, f.name) for f in fields(ModelConfig) if hasattr(old, f.name)}
        )
        self._add_missing_models()
        self.model_version = MODEL_VERSION

    def adopt(self, config: ModelConfig) -> bool:
        """Take the tier thresholds of ``config`` (set after this model was saved); False,
        changing nothing, when a setting that shaped what it learned differs."""
        retuned = replace(
            self.config,
            churn_tier_medium=config.churn_tier_medium,
            churn_tier_high=config.churn_tier_high,
        )
        if retuned != config:
            return False
        self.config = config
        self.churn.tier_thresholds = (config.churn_tier_medium, config.churn_tier_high)
        return True

    def advance(self, now_ms: int, customers: Callable[[], Iterable[CustomerState]]) -> None:
        """Move the clock: mature churn labels, and at each tick snapshot every customer
        who bought (churn training examples, segment centroids); ``customers`` may leave
        out those who never did."""
        if self.clock_ms is not None and now_ms <= self.clock_ms:
            return
        self.clock_ms = now_ms
        if self.next_tick_ms is None:
            self.next_tick_ms = now_ms - now_ms % self.interval_ms + self.interval_ms
        while now_ms >= self.next_tick_ms:
            at = self.next_tick_ms
            with collections_paused():
                buyers = [s for s in customers() if s.purchase_count and s.first_seen_ms <= at]
                for state in buyers:
                    taken = self.churn.snapshot(state, at, self._churn_extra(state, at))
                    self.demand.snapshot(state, at, beside=taken)
                # k-means updates are order-sensitive: the state order (oldest customers
                # first) would pull every centroid towards the newest customers.
                self.rng.shuffle(buyers)
                for state in buyers:
                    self.segments.learn_one(segment_features(state, at))
            self.next_tick_ms += self.interval_ms
        # After the ticks: snapshots taken just now mature too if the clock jumped past
        # their horizon (a gap in the stream), in time order behind the older ones.
        self.churn.mature(now_ms)
        self.demand.mature(now_ms)

    def _churn_extra(self, state: CustomerState, now_ms: int) -> dict[str, float]:
        """Churn features from the other models, where configured."""
        if not self.config.churn_uses_influence:
            return {}
        influence = self.influence.influence(state.customer_id, now_ms)
        return {"influence_log": math.log1p(influence)}

    def churn_risk(self, state: CustomerState, now_ms: int) -> float:
        return self.churn.predict_proba(state, now_ms, self._churn_extra(state, now_ms))

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        extra = self._churn_extra(state, now_ms)
        churn = self.churn.predict_proba(state, now_ms, extra)
        tier = self.churn.tier(churn, state.churn_tier or None)
        # Drivers only where an alert may need them (computing them costs a prediction):
        # churn alerts come from scans, which score without an event.
        drivers: tuple[Driver, ...] = ()
        if event is None and self.churn.ready and tier != "low" and state.purchase_count:
            drivers = tuple(self.churn.drivers(state, now_ms, extra=extra))
        segment_id = segment = None
        if self.segments.seen and state.purchase_count:
            current = state.segment_id if state.segment_id >= 0 else None
            segment_id = self.segments.assign(segment_features(state, now_ms), current)
            segment = self.segments.names()[segment_id]
        sentiment_proba: float | None = None
        sentiment: Literal["positive", "negative"] | None = None
        if isinstance(event, FeedbackEvent):
            sentiment_proba = self.sentiment.predict_proba(event.text)
            sentiment = "positive" if sentiment_proba >= 0.5 else "negative"
        clv = expected_clv(
            state.net_value, state.tenure_days(now_ms), churn, self.config.churn_horizon_days
        )
        spend_forecast = self.demand.predict(state, now_ms) if state.purchase_count else None
        # Offers change with the customer's products: recomputed at each order (the
        # ranking costs 40-50 us, docs/benchmarks.md), kept in the state in between.
        offers: tuple[str, ...] | None = None
        if isinstance(event, PurchaseEvent) and event.amount > 0 and event.skus:
            offers = tuple(self.offers.recommend(state.products, OFFERS))
        return Scores(
            churn_risk=churn,
            churn_tier=tier,
            churn_ready=self.churn.ready,
            churn_drivers=drivers,
            segment=segment,
            segment_id=segment_id,
            segment_ready=self.segments.ready,
            sentiment=sentiment,
            sentiment_proba=sentiment_proba,
            sentiment_ready=self.sentiment.ready,
            clv=clv,
            value_at_risk=value_at_risk(churn, clv),
            spend_forecast=spend_forecast,
            demand_ready=self.demand.ready,
            offers=offers,
            influence=self.influence.influence(state.customer_id, now_ms),
            influence_degree=self.influence.degree(state.customer_id),
        )

    def forget(self, customer_id: str) -> None:
        """Keep nothing about the customer (the churn, demand and influence models hold
        per-customer data; the offers model counts products only)."""
        self.churn.forget(customer_id)
        self.demand.forget(customer_id)
        self.influence.forget(customer_id)

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        if isinstance(event, PurchaseEvent):
            self.demand.on_purchase(event.customer_id, event.ts_ms, event.amount)
            if event.amount > 0:
                self.churn.on_purchase(event.customer_id, event.ts_ms)
                if event.skus:
                    earlier = before.products if before is not None else []
                    self.offers.learn_one(earlier, event.skus)
                    self.influence.learn_one(event.customer_id, event.ts_ms, event.skus)
        elif isinstance(event, FeedbackEvent):
            label = rating_label(event.rating)
            if label is not None:
                self.sentiment.learn_one(event.text, label)
