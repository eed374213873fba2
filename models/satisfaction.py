"""Satisfaction index per customer: a decayed mean of what their feedback says, on a
0-100 scale, with its trend.

Each feedback gives one observation ``s`` in [0, 1]: a rating ``r`` gives
``(r - 1) / 4`` (1 → 0, 3 → 0.5, 5 → 1); unrated text gives the sentiment model's
P(positive), once that model is ready (before, nothing). With weights that halve every
``H`` days of event time, and a prior of ``m`` pseudo-observations at ``mu``:

    index_H(t) = 100 * (sum_i w_i * s_i + m * mu) / (sum_i w_i + m)
    w_i = 2 ** (-(t - t_i) / H)

``satisfaction`` is ``index_H`` at ``H`` = 30 days, its ``baseline`` at 180 days, and its
``trend`` = satisfaction - baseline, in points: negative when recent feedback is worse
than the customer's longer history. The prior (``m`` = 1 at ``mu`` = 0.5, a rating of 3)
keeps one review from reading as 0 or 100, and pulls the index back to neutral as
feedback ages. A first feedback moves both alike: the trend needs history.

>>> from models.features import CustomerState
>>> state = CustomerState("c1", first_seen_ms=0, last_seen_ms=0)
>>> record_satisfaction(state, 0, rating_observation(5))
>>> record_satisfaction(state, 60 * 86_400_000, rating_observation(5))
>>> record_satisfaction(state, 90 * 86_400_000, rating_observation(1))
>>> now = satisfaction_at(state, 90 * 86_400_000)
>>> round(now.index), round(now.trend)
(43, -15)
"""

from __future__ import annotations

from dataclasses import dataclass

from models.features import CustomerState, halving
from models.scoring import Scores
from schemas.events import FeedbackEvent

FAST_HALF_LIFE_DAYS = 30.0
SLOW_HALF_LIFE_DAYS = 180.0
PRIOR_WEIGHT = 1.0
PRIOR = 0.5


@dataclass(frozen=True, slots=True)
class Satisfaction:
    index: float  # 0-100, half-life FAST_HALF_LIFE_DAYS
    baseline: float  # 0-100, half-life SLOW_HALF_LIFE_DAYS
    trend: float  # index - baseline, points


def rating_observation(rating: int) -> float:
    """A 1-5 rating as an observation in [0, 1]."""
    return (rating - 1) / 4


def feedback_observation(event: FeedbackEvent, scores: Scores) -> float | None:
    """What one feedback says: its rating, else the ready sentiment model's P(positive)."""
    if event.rating is not None:
        return rating_observation(event.rating)
    if scores.sentiment_ready and scores.sentiment_proba is not None:
        return scores.sentiment_proba
    return None


def record_satisfaction(state: CustomerState, ts_ms: int, observation: float) -> None:
    """Add one feedback's observation at event time ``ts_ms`` (late ones weigh less)."""
    at = state.satisfaction_at_ms
    weight_fast = weight_slow = 1.0
    if at is None or ts_ms > at:
        if at is not None:
            fast = halving(ts_ms - at, FAST_HALF_LIFE_DAYS)
            slow = halving(ts_ms - at, SLOW_HALF_LIFE_DAYS)
            state.satisfaction_fast_sum *= fast
            state.satisfaction_fast_weight *= fast
            state.satisfaction_slow_sum *= slow
            state.satisfaction_slow_weight *= slow
        state.satisfaction_at_ms = ts_ms
    else:  # out of event-time order: weigh it as the time since it happened says
        weight_fast = halving(at - ts_ms, FAST_HALF_LIFE_DAYS)
        weight_slow = halving(at - ts_ms, SLOW_HALF_LIFE_DAYS)
    state.satisfaction_fast_sum += weight_fast * observation
    state.satisfaction_fast_weight += weight_fast
    state.satisfaction_slow_sum += weight_slow * observation
    state.satisfaction_slow_weight += weight_slow


def satisfaction_at(state: CustomerState, now_ms: int) -> Satisfaction | None:
    """The index, baseline and trend at event time ``now_ms``; ``None`` before any
    feedback counted."""
    at = state.satisfaction_at_ms
    if at is None:
        return None
    elapsed = max(now_ms - at, 0)
    fast, slow = halving(elapsed, FAST_HALF_LIFE_DAYS), halving(elapsed, SLOW_HALF_LIFE_DAYS)
    index = _index(state.satisfaction_fast_sum * fast, state.satisfaction_fast_weight * fast)
    baseline = _index(state.satisfaction_slow_sum * slow, state.satisfaction_slow_weight * slow)
    return Satisfaction(index, baseline, index - baseline)


def _index(total: float, weight: float) -> float:
    return 100.0 * (total + PRIOR_WEIGHT * PRIOR) / (weight + PRIOR_WEIGHT)
