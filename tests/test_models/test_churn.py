from __future__ import annotations

import math
import pickle

import pytest

from models.churn import ChurnModel, churn_features
from models.features import DAY_MS, CustomerState, apply_event
from schemas.events import parse_event_object
from tests.factories import BASE_TS, purchase


def bought(customer: str, ts: int, state: CustomerState | None = None) -> CustomerState:
    new = apply_event(state, parse_event_object(purchase(f"{customer}-{ts}", customer, ts, 10.0)))
    assert new is not None
    return new


def test_labels_mature_in_event_time_and_never_from_the_future() -> None:
    model = ChurnModel(horizon_days=90)
    a, b = bought("a", BASE_TS), bought("b", BASE_TS)
    model.snapshot(a, BASE_TS + DAY_MS)
    model.snapshot(b, BASE_TS + DAY_MS)
    assert model.labels_learned == {0: 0, 1: 0}
    model.on_purchase("a", BASE_TS + 30 * DAY_MS)  # a came back within the horizon
    assert model.labels_learned == {0: 1, 1: 0}
    model.mature(BASE_TS + 90 * DAY_MS)  # b's horizon has not quite passed
    assert model.labels_learned == {0: 1, 1: 0}
    model.mature(BASE_TS + 91 * DAY_MS)
    assert model.labels_learned == {0: 1, 1: 1}
    model.on_purchase("b", BASE_TS + 92 * DAY_MS)  # too late: already labelled churned
    assert model.labels_learned == {0: 1, 1: 1}
    assert not model.open


def test_a_forgotten_customer_leaves_no_snapshot_and_no_label() -> None:
    model = ChurnModel(horizon_days=90)
    gone, kept = bought("forget-me-7", BASE_TS), bought("keep-me-8", BASE_TS)
    for day in (1, 8):
        model.snapshot(gone, BASE_TS + day * DAY_MS)
        model.snapshot(kept, BASE_TS + day * DAY_MS)
    model.forget("forget-me-7")
    assert "forget-me-7" not in model.open
    assert {s.customer_id for s in model.pending} == {"keep-me-8"}
    assert b"forget-me-7" not in pickle.dumps(model)  # nor in its checkpoint
    model.mature(BASE_TS + 200 * DAY_MS)
    assert model.labels_learned == {0: 0, 1: 2}  # the kept customer's two snapshots only
    model.forget("nobody")  # unknown: nothing happens


def test_a_purchase_only_resolves_snapshots_taken_before_it() -> None:
    model = ChurnModel()
    a = bought("a", BASE_TS)
    model.snapshot(a, BASE_TS + 10 * DAY_MS)
    model.on_purchase("a", BASE_TS + 5 * DAY_MS)  # late-arriving, before the snapshot
    assert model.labels_learned == {0: 0, 1: 0}


def test_long_gone_and_non_buying_customers_are_not_snapshotted() -> None:
    model = ChurnModel(max_recency_days=180)
    model.snapshot(bought("a", BASE_TS), BASE_TS + 200 * DAY_MS)
    browsing_only = CustomerState("b", BASE_TS, BASE_TS)
    model.snapshot(browsing_only, BASE_TS + DAY_MS)
    assert not model.pending


def test_risk_grows_while_a_customer_is_silent() -> None:
    model = ChurnModel(horizon_days=30)
    states = {c: bought(c, BASE_TS) for c in "abcdefgh"}
    for week in range(1, 40):
        now = BASE_TS + week * 7 * DAY_MS
        for c in "abcd":  # regulars buy every week; the others never come back
            states[c] = bought(c, now, states[c])
            model.on_purchase(c, now)
        model.mature(now)
        for state in states.values():
            model.snapshot(state, now)
    now = BASE_TS + 40 * 7 * DAY_MS
    regular, silent = states["a"], states["e"]
    assert model.predict_proba(silent, now) > model.predict_proba(regular, now)
    assert model.predict_proba(regular, now + 60 * DAY_MS) > model.predict_proba(regular, now)
    assert model.tier(0.1) == "low" and model.tier(0.5) == "medium" and model.tier(0.9) == "high"
    clone = pickle.loads(pickle.dumps(model))
    assert clone.predict_proba(silent, now) == model.predict_proba(silent, now)


def scaled_then_weighed(model: ChurnModel, state: CustomerState, now: int) -> float:
    """River's way: each feature scaled into a dict, then weighed (until 2026-12-07)."""
    scaled = model.model["StandardScaler"].transform_one(churn_features(state, now))
    logit = model.avg_intercept + sum(model.avg_weights.get(k, 0.0) * v for k, v in scaled.items())
    return 1.0 / (1.0 + math.exp(-min(max(logit, -30.0), 30.0)))


def test_the_scaler_folded_into_the_weights_predicts_as_scaling_each_feature() -> None:
    model = ChurnModel(horizon_days=30)
    states = {c: bought(c, BASE_TS) for c in "abcdefgh"}
    assert model.predict_proba(states["a"], BASE_TS) == 0.5  # nothing learned
    for week in range(1, 30):
        now = BASE_TS + week * 7 * DAY_MS
        for c in "abc" if week % 3 else "abcdef":
            states[c] = bought(c, now, states[c])
            model.on_purchase(c, now)
        model.mature(now)
        for state in states.values():
            model.snapshot(state, now)
            # Each week's labels change the weights: predictions follow them.
            expected = scaled_then_weighed(model, state, now + DAY_MS)
            assert model.predict_proba(state, now + DAY_MS) == pytest.approx(expected, rel=1e-12)
    assert sum(model.labels_learned.values()) > 100
    clone = pickle.loads(pickle.dumps(model))
    assert "_folded" not in pickle.dumps(model).decode("latin-1")
    for state in states.values():
        assert clone.predict_proba(state, now) == model.predict_proba(state, now)


def test_features_are_finite_for_a_fresh_customer() -> None:
    state = bought("a", BASE_TS)
    assert all(abs(v) < 1e6 for v in churn_features(state, BASE_TS).values())


def test_tiers_have_hysteresis() -> None:
    model = ChurnModel(tier_thresholds=(0.4, 0.7))
    assert model.tier(0.69) == "medium"
    assert model.tier(0.69, current="high") == "high"  # hovering just below: stays
    assert model.tier(0.64, current="high") == "medium"
    assert model.tier(0.37, current="medium") == "medium"
    assert model.tier(0.34, current="medium") == "low"
    assert model.tier(0.71, current="low") == "high"


def test_drivers_name_what_pushes_risk_up_in_words() -> None:
    model = ChurnModel(horizon_days=30)
    states = {c: bought(c, BASE_TS) for c in "abcdefgh"}
    for week in range(1, 40):
        now = BASE_TS + week * 7 * DAY_MS
        for c in "abcd":
            states[c] = bought(c, now, states[c])
            model.on_purchase(c, now)
        model.mature(now)
        for state in states.values():
            model.snapshot(state, now)
    silent = states["e"]
    drivers = model.drivers(silent, BASE_TS + 40 * 7 * DAY_MS)
    assert drivers and all(d.push > 0 for d in drivers)
    assert drivers == sorted(drivers, key=lambda d: d.push, reverse=True)
    assert any(d.text.startswith("no purchase for 280 days") for d in drivers), drivers


def test_recent_auc_scores_each_label_before_it_is_learned() -> None:
    from models.churn import ChurnModel, _Snapshot

    model = ChurnModel()
    assert model.recent_auc() is None
    for i in range(400):
        churned = i % 2 == 0
        features = {"recency_log": 4.0 if churned else 1.0, "frequency_log": 1.0}
        model._learn(_Snapshot(f"c{i}", 0, features), churned=churned)
    auc = model.recent_auc()
    assert auc is not None and auc > 0.9
