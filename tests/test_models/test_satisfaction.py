"""The satisfaction index (models.satisfaction) and its satisfaction_drop alert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.alerting import AlertPolicy
from models.features import DAY_MS, CustomerState
from models.satisfaction import (
    feedback_observation,
    rating_observation,
    record_satisfaction,
    satisfaction_at,
)
from models.scoring import Scores
from schemas.events import FeedbackEvent, parse_event_object
from stream.processor import EventProcessor
from tests.factories import BASE_TS, feedback

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def fresh() -> CustomerState:
    return CustomerState("c", first_seen_ms=BASE_TS, last_seen_ms=BASE_TS)


def test_no_feedback_no_index_and_a_first_one_has_no_trend() -> None:
    state = fresh()
    assert satisfaction_at(state, BASE_TS) is None
    record_satisfaction(state, BASE_TS, rating_observation(5))
    now = satisfaction_at(state, BASE_TS)
    assert now is not None
    # One 5-star rating against the neutral prior: (1 + 0.5) / 2.
    assert now.index == pytest.approx(75.0) and now.trend == pytest.approx(0.0)


def test_recent_bad_feedback_after_good_history_is_a_falling_trend() -> None:
    state = fresh()
    for day in range(0, 180, 20):
        record_satisfaction(state, BASE_TS + day * DAY_MS, rating_observation(5))
    before = satisfaction_at(state, BASE_TS + 180 * DAY_MS)
    record_satisfaction(state, BASE_TS + 180 * DAY_MS, rating_observation(1))
    record_satisfaction(state, BASE_TS + 181 * DAY_MS, rating_observation(1))
    after = satisfaction_at(state, BASE_TS + 181 * DAY_MS)
    assert before is not None and after is not None
    assert after.index < before.index and after.trend < -15 < 0 < before.index


def test_old_feedback_fades_back_to_neutral() -> None:
    state = fresh()
    record_satisfaction(state, BASE_TS, rating_observation(1))
    year_later = satisfaction_at(state, BASE_TS + 365 * DAY_MS)
    assert year_later is not None and year_later.index == pytest.approx(50.0, abs=0.1)


def test_late_feedback_weighs_as_much_as_in_order() -> None:
    in_order, late = fresh(), fresh()
    record_satisfaction(in_order, BASE_TS, 0.0)
    record_satisfaction(in_order, BASE_TS + 10 * DAY_MS, 1.0)
    record_satisfaction(late, BASE_TS + 10 * DAY_MS, 1.0)
    record_satisfaction(late, BASE_TS, 0.0)
    a, b = (
        satisfaction_at(in_order, BASE_TS + 20 * DAY_MS),
        satisfaction_at(late, BASE_TS + 20 * DAY_MS),
    )
    assert a is not None and b is not None
    assert (a.index, a.baseline) == pytest.approx((b.index, b.baseline))


@given(st.lists(st.tuples(st.integers(0, 400), st.floats(0, 1)), min_size=1, max_size=30))
def test_index_and_baseline_stay_within_0_and_100(observations: list[tuple[int, float]]) -> None:
    state = fresh()
    for day, observation in observations:
        record_satisfaction(state, BASE_TS + day * DAY_MS, observation)
    now = satisfaction_at(state, BASE_TS + 500 * DAY_MS)
    assert now is not None
    assert 0 <= now.index <= 100 and 0 <= now.baseline <= 100
    assert now.trend == pytest.approx(now.index - now.baseline)


def test_observations_come_from_ratings_or_a_ready_sentiment_model() -> None:
    def event(**extra: object) -> FeedbackEvent:
        parsed = parse_event_object(feedback("f", "c", BASE_TS, "text", **extra))
        assert isinstance(parsed, FeedbackEvent)
        return parsed

    assert feedback_observation(event(rating=2), Scores()) == 0.25
    ready = Scores(sentiment_proba=0.9, sentiment_ready=True)
    assert feedback_observation(event(), ready) == 0.9
    assert feedback_observation(event(), Scores(sentiment_proba=0.9)) is None


def drop_alerts(clv: float | None) -> list[tuple[str, str]]:
    """Kinds and severities of the alerts when a customer who rated 4 every month for a
    year rates 1 three days running."""
    processor = EventProcessor()
    state = None
    day = 0
    for day in range(0, 360, 30):
        good = feedback(f"g{day}", "c", BASE_TS + day * DAY_MS, "good", rating=4)
        out = processor.process(state, parse_event_object(good))
        assert out is not None
        state = out.state
    kinds: list[tuple[str, str]] = []
    for n in (1, 2, 3):
        bad = feedback(f"b{n}", "c", BASE_TS + (day + n) * DAY_MS, "awful", rating=1)
        event = parse_event_object(bad)
        out = processor.process(state, event)
        assert out is not None and out.score.satisfaction is not None
        state = out.state
        decision = AlertPolicy().on_event(None, state, event, Scores(clv=clv), "m/1", NOW)
        kinds += [(a.kind.value, a.severity.value) for a in decision.alerts]
    return kinds


def test_a_valuable_customer_whose_satisfaction_falls_sharply_alerts() -> None:
    assert ("satisfaction_drop", "medium") in drop_alerts(clv=1_000.0)
    assert all(kind != "satisfaction_drop" for kind, _ in drop_alerts(clv=50.0))
    assert all(kind != "satisfaction_drop" for kind, _ in drop_alerts(clv=None))
