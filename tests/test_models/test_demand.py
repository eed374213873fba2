"""The demand forecast (models.demand): matured 30-day spend targets, learned online."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from models.demand import MIN_TARGETS, DemandForecast
from models.features import DAY_MS, CustomerState, apply_event
from schemas.events import parse_event_object
from tests.factories import BASE_TS, purchase


def buyer(customer: str, orders: int, amount: float, ts: int = BASE_TS) -> CustomerState:
    state = None
    for i in range(orders):
        event = parse_event_object(
            purchase(f"{customer}-{i}", customer, ts - i * 7 * DAY_MS, amount)
        )
        state = apply_event(state, event)
    assert state is not None
    return state


def test_a_target_counts_the_horizon_after_its_snapshot_only() -> None:
    model = DemandForecast(horizon_days=30)
    model.log = []
    model.snapshot(buyer("c", 1, 10.0), BASE_TS)
    model.on_purchase("c", BASE_TS - 1, 1000.0)  # before the snapshot
    model.on_purchase("c", BASE_TS + DAY_MS, 40.0)
    model.on_purchase("c", BASE_TS + 2 * DAY_MS, -15.0)  # a refund
    model.on_purchase("c", BASE_TS + 31 * DAY_MS, 500.0)  # after the horizon
    model.mature(BASE_TS + 29 * DAY_MS)
    assert model.targets_learned == 0  # not matured: never the future
    model.mature(BASE_TS + 30 * DAY_MS)
    assert model.targets_learned == 1 and model.log[0].spend == 25.0
    assert not model.open and not model.pending


def test_forecasts_follow_what_customers_spent() -> None:
    model = DemandForecast(grace_period=50)
    heavy, light = buyer("heavy", 8, 400.0), buyer("light", 1, 5.0)
    for week in range(MIN_TARGETS // 2 + 10):
        at = BASE_TS + week * 7 * DAY_MS
        for i in range(2):
            model.snapshot(buyer(f"h{week}-{i}", 8, 400.0, at), at)
            model.snapshot(buyer(f"l{week}-{i}", 1, 5.0, at), at)
            model.on_purchase(f"h{week}-{i}", at + DAY_MS, 600.0)
        model.mature(at)
    assert model.ready
    now = BASE_TS + (MIN_TARGETS // 2 + 10) * 7 * DAY_MS
    heavy_at, light_at = buyer("heavy", 8, 400.0, now), buyer("light", 1, 5.0, now)
    assert model.predict(heavy_at, now) > 300 > 10 > model.predict(light_at, now)
    assert heavy.customer_id != light.customer_id
    mae = model.recent_mae()
    assert mae is not None and mae < 300
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict(heavy_at, now) == model.predict(heavy_at, now)


def test_a_forgotten_customer_leaves_no_open_target() -> None:
    model = DemandForecast()
    model.snapshot(buyer("gone", 2, 30.0), BASE_TS)
    model.snapshot(buyer("stays", 2, 30.0), BASE_TS)
    model.forget("gone")
    assert b"gone" not in pickle.dumps(model)
    assert [t.customer_id for t in model.pending] == ["stays"]


@given(st.lists(st.floats(-1e5, 1e6, allow_nan=False), min_size=1, max_size=30))
def test_forecasts_lie_between_nothing_and_the_largest_spend_learned(amounts: list[float]) -> None:
    """Also for customers far from any learned (a leaf's linear model extrapolates: on
    Online Retail one forecast overflowed ``expm1``)."""
    model = DemandForecast(grace_period=5)
    for i, amount in enumerate(amounts):
        at = BASE_TS + i * 7 * DAY_MS
        model.snapshot(buyer(f"c{i}", 1 + i % 3, 20.0, at), at)
        model.on_purchase(f"c{i}", at + DAY_MS, amount)
        model.mature(at + 31 * DAY_MS)
    largest = max(max(amount, 0.0) for amount in amounts)
    for probe in (buyer("x", 2, 20.0), buyer("whale", 60, 1e9)):
        assert 0.0 <= model.predict(probe, BASE_TS) <= largest * (1 + 1e-9) + 1e-9
