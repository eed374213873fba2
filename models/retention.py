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

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from models.churn import ChurnModel, Driver
from models.features import DAY_MS, AnyEvent, CustomerState
from models.scoring import Scores
from models.segments import SegmentModel, segment_features
from models.sentiment import SentimentModel, rating_label
from models.value import expected_clv, value_at_risk
from schemas.events import FeedbackEvent, PurchaseEvent

#: What a checkpoint of these models must have been written by.
MODEL_VERSION = "+".join((ChurnModel.VERSION, SegmentModel.VERSION, SentimentModel.VERSION))


@dataclass(frozen=True, slots=True)
class ModelConfig:
    churn_horizon_days: float = 90.0
    snapshot_interval_days: float = 7.0
    churn_tier_medium: float = 0.4
    churn_tier_high: float = 0.7
    segments: int = 5
    segment_halflife: float = 0.03
    seed: int = 7


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
        self.model_version = MODEL_VERSION
        self.interval_ms = int(self.config.snapshot_interval_days * DAY_MS)
        self.next_tick_ms: int | None = None
        self.clock_ms: int | None = None
        self.rng = random.Random(self.config.seed)

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
        (churn training examples, segment centroids)."""
        if self.clock_ms is not None and now_ms <= self.clock_ms:
            return
        self.clock_ms = now_ms
        if self.next_tick_ms is None:
            self.next_tick_ms = now_ms - now_ms % self.interval_ms + self.interval_ms
        while now_ms >= self.next_tick_ms:
            at = self.next_tick_ms
            buyers = [s for s in customers() if s.purchase_count and s.first_seen_ms <= at]
            for state in buyers:
                self.churn.snapshot(state, at)
            # k-means updates are order-sensitive: the state order (oldest customers first)
            # would pull every centroid towards the newest customers.
            self.rng.shuffle(buyers)
            for state in buyers:
                self.segments.learn_one(segment_features(state, at))
            self.next_tick_ms += self.interval_ms
        # After the ticks: snapshots taken just now mature too if the clock jumped past
        # their horizon (a gap in the stream), in time order behind the older ones.
        self.churn.mature(now_ms)

    def score_one(self, state: CustomerState, now_ms: int, event: AnyEvent | None = None) -> Scores:
        churn = self.churn.predict_proba(state, now_ms)
        tier = self.churn.tier(churn, state.churn_tier or None)
        # Drivers only where an alert may need them (computing them costs a prediction):
        # churn alerts come from scans, which score without an event.
        drivers: tuple[Driver, ...] = ()
        if event is None and self.churn.ready and tier != "low" and state.purchase_count:
            drivers = tuple(self.churn.drivers(state, now_ms))
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
        )

    def forget(self, customer_id: str) -> None:
        """Keep nothing about the customer (only the churn model holds per-customer data)."""
        self.churn.forget(customer_id)

    def learn_one(
        self, before: CustomerState | None, after: CustomerState, event: AnyEvent
    ) -> None:
        if isinstance(event, PurchaseEvent) and event.amount > 0:
            self.churn.on_purchase(event.customer_id, event.ts_ms)
        elif isinstance(event, FeedbackEvent):
            label = rating_label(event.rating)
            if label is not None:
                self.sentiment.learn_one(event.text, label)
