from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from models.alerting import AlertConfig, AlertPolicy, redact_excerpt
from models.features import DAY_MS, CustomerState, apply_event
from models.scoring import Scores
from schemas.alerts import AlertKind, alert_id_for
from schemas.events import parse_event_object
from tests.factories import BASE_TS, browse, feedback, purchase

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3_600_000


def applied(*raws: dict[str, Any]) -> CustomerState:
    state = None
    for raw in raws:
        state = apply_event(state, parse_event_object(raw))
    assert state is not None
    return state


def alerts_for(raw: dict[str, Any], scores: Scores | None = None) -> list[tuple[str, str]]:
    event = parse_event_object(raw)
    after = apply_event(None, event)
    assert after is not None
    out = AlertPolicy().on_event(None, after, event, scores or Scores(), "m/1", NOW)
    return [(a.kind.value, a.severity.value) for a in out.alerts]


def test_negative_ratings_alert_and_others_do_not() -> None:
    assert alerts_for(feedback("f", "c", BASE_TS, "awful", rating=1)) == [
        ("negative_feedback", "high")
    ]
    assert alerts_for(feedback("f", "c", BASE_TS, "meh", rating=2)) == [
        ("negative_feedback", "medium")
    ]
    assert alerts_for(feedback("f", "c", BASE_TS, "ok", rating=3)) == []
    assert alerts_for(feedback("f", "c", BASE_TS, "no rating")) == []
    assert alerts_for(purchase("p", "c", BASE_TS, 10.0)) == []


def test_unrated_feedback_alerts_only_when_a_trained_model_reads_it_negative() -> None:
    unrated = feedback("f", "c", BASE_TS, "terrible")
    negative = Scores(sentiment_proba=0.05, sentiment_ready=True)
    assert alerts_for(unrated, negative) == [("negative_feedback", "medium")]
    assert alerts_for(unrated, negative._replace(sentiment_ready=False)) == []
    assert alerts_for(unrated, negative._replace(sentiment_proba=0.3)) == []


def test_alert_id_is_deterministic_and_kind_specific() -> None:
    event = parse_event_object(feedback("f9", "c", BASE_TS, "awful " * 100, rating=1))
    first, again = apply_event(None, event), apply_event(None, event)
    assert first is not None and again is not None
    a = AlertPolicy().on_event(None, first, event, Scores(), "m/1", NOW).alerts[0]
    b = AlertPolicy().on_event(None, again, event, Scores(), "m/1", datetime.now(UTC)).alerts[0]
    assert a.alert_id == b.alert_id == alert_id_for(AlertKind.NEGATIVE_FEEDBACK, "c\x00f9")
    assert a.alert_id != alert_id_for(AlertKind.CHURN_RISK, "c\x00f9")
    assert a.excerpt is not None and len(a.excerpt) <= 120
    assert ("awful " * 100).strip() not in a.model_dump_json()  # never the whole text


def test_a_quiet_customer_in_the_high_tier_alerts_with_drivers_and_value_at_risk() -> None:
    state = applied(purchase("p1", "c", BASE_TS - 74 * DAY_MS, 10.0))
    scores = Scores(
        churn_risk=0.82,
        churn_tier="high",
        value_at_risk=410.0,
        churn_ready=True,
        churn_drivers=(
            (
                "recency_log",
                "no purchase for 74 days, 3.0x this customer's usual gap of 25 days",
                1.2,
            ),
        ),
    )
    policy = AlertPolicy()

    def scan(state: CustomerState, at: int, scores: Scores) -> tuple[CustomerState, list[Any]]:
        after = dataclasses.replace(state, alerted_ms=dict(state.alerted_ms))
        return after, policy.on_scan(state, after, at, scores, "m/1", NOW).alerts

    after, [alert] = scan(state, BASE_TS, scores)
    assert (alert.kind.value, alert.severity.value) == ("churn_risk", "high")
    assert alert.alert_id == alert_id_for(AlertKind.CHURN_RISK, f"c\x00scan@{BASE_TS}")
    assert alert.value_at_risk == 410.0 and alert.churn_risk == 0.82
    assert alert.churn_tier == "high" and alert.event_id is None
    assert [r.code for r in alert.reasons] == ["churn_tier", "recency_log"]
    assert "74 days" in alert.reasons[1].text
    # An event shows the customer is active: it raises no churn alert by itself.
    view = parse_event_object(browse("v7", "c", BASE_TS, "view"))
    viewed = apply_event(state, view)
    assert viewed is not None
    assert policy.on_event(state, viewed, view, scores, "m/1", NOW).alerts == []
    # Once per tier and purchase cycle: the same tier again says nothing new.
    assert after.churn_alerted_tier == "high"
    assert scan(after, BASE_TS + 30 * DAY_MS, scores)[1] == []
    # A purchase starts a new cycle; a model not ready, or a short silence, is no alert.
    bought = applied_more(after, purchase("p2", "c", BASE_TS + 2 * DAY_MS, 5.0))
    assert bought.churn_alerted_tier == ""
    for quiet_days, ready in ((3, True), (10, False)):
        at = BASE_TS + (2 + quiet_days) * DAY_MS
        assert scan(bought, at, scores._replace(churn_ready=ready))[1] == []
    assert scan(bought, BASE_TS + 12 * DAY_MS, scores)[1] != []


def test_cooldown_holds_back_the_same_kind_then_lets_it_through() -> None:
    policy = AlertPolicy(AlertConfig(cooldown_days=7))
    state = applied(purchase("p", "c", BASE_TS, 10.0))
    kinds = []
    for day in (0, 3, 6, 8):
        event = parse_event_object(feedback(f"f{day}", "c", BASE_TS + day * DAY_MS, "x", rating=1))
        after = apply_event(state, event)
        assert after is not None
        decision = policy.on_event(state, after, event, Scores(), "m/1", NOW)
        kinds.append(([a.kind.value for a in decision.alerts], decision.suppressed))
        state = after
    assert kinds == [
        (["negative_feedback"], []),
        ([], [AlertKind.NEGATIVE_FEEDBACK]),
        ([], [AlertKind.NEGATIVE_FEEDBACK]),
        (["negative_feedback"], []),
    ]
    # A late event, earlier than the last alert but within the cooldown of it: held back.
    late = parse_event_object(feedback("f-late", "c", BASE_TS + 5 * DAY_MS, "x", rating=1))
    after = apply_event(state, late)
    assert after is not None
    assert policy.on_event(state, after, late, Scores(), "m/1", NOW).alerts == []


def test_a_rise_to_high_passes_the_cooldown_of_medium() -> None:
    policy = AlertPolicy(AlertConfig(churn_min_tier="medium"))
    state = applied(purchase("p", "c", BASE_TS, 10.0))
    severities = []
    for day, tier in ((10, "medium"), (11, "medium"), (12, "high")):
        after = dataclasses.replace(state, alerted_ms=dict(state.alerted_ms))
        scores = Scores(churn_risk=0.5, churn_tier=tier, churn_ready=True)  # type: ignore[arg-type]
        decision = policy.on_scan(state, after, BASE_TS + day * DAY_MS, scores, "m/1", NOW)
        severities += [a.severity.value for a in decision.alerts]
        state = after
    assert severities == ["medium", "high"]


def test_one_segment_downgrade_per_fall_from_a_valuable_segment_once_overdue() -> None:
    state = applied(
        purchase("p1", "c", BASE_TS, 200.0),
        purchase("p2", "c", BASE_TS + 20 * DAY_MS, 300.0),  # a rhythm: every 20 days
    )
    policy = AlertPolicy(AlertConfig(cooldown_days=0))

    def scan(day: int, segment: str, ready: bool = True) -> list[list[str]]:
        nonlocal state
        after = dataclasses.replace(state, alerted_ms=dict(state.alerted_ms))
        scores = Scores(segment=segment, segment_ready=ready)
        out = policy.on_scan(state, after, BASE_TS + day * DAY_MS, scores, "m/1", NOW)
        state = after
        return [[r.text for r in a.reasons] for a in out.alerts]

    assert scan(25, "champions") == []
    assert scan(40, "at_risk") == []  # 20 days quiet: not yet 1.5x the gap, nor 30 days
    assert scan(51, "at_risk") == [
        [
            "fell from champions to at_risk",
            "no purchase for 31 days, 1.6x this customer's usual gap of 20 days",
            "500.00 net value in 2 order(s)",
        ]
    ]
    assert scan(60, "lost") == []  # the same fall: once
    assert scan(70, "loyal") == [] and scan(110, "hibernating") != []  # back, and fell again
    assert scan(111, "loyal") == [] and scan(150, "lost", ready=False) == []


def test_a_single_big_order_is_not_a_valuable_segment_to_fall_from() -> None:
    state = applied(purchase("p1", "c", BASE_TS, 5000.0))
    policy = AlertPolicy()
    for day, segment in ((1, "champions"), (90, "lost")):
        after = dataclasses.replace(state)
        scores = Scores(segment=segment, segment_ready=True)
        assert policy.on_scan(state, after, BASE_TS + day * DAY_MS, scores, "m/1", NOW).alerts == []
        state = after


def test_one_cart_abandonment_per_abandoned_cart() -> None:
    state = applied(
        purchase("p", "c", BASE_TS, 30.0),
        browse("b1", "c", BASE_TS + DAY_MS, "add_to_cart"),
        browse("b2", "c", BASE_TS + DAY_MS + HOUR, "add_to_cart"),
    )
    assert (state.cart_items, state.cart_opened_ms) == (2, BASE_TS + DAY_MS)
    policy = AlertPolicy(AlertConfig(cart_abandon_hours=24, cooldown_days=0))

    def scan(at: int) -> list[str]:
        nonlocal state
        after = dataclasses.replace(state, alerted_ms=dict(state.alerted_ms))
        out = policy.on_scan(state, after, at, Scores(), "m/1", NOW).alerts
        state = after
        return [a.reasons[0].text for a in out]

    assert scan(BASE_TS + DAY_MS + 23 * HOUR) == []
    assert scan(BASE_TS + 2 * DAY_MS) == ["2 item(s) left in the cart 24 hours ago"]
    assert scan(BASE_TS + 3 * DAY_MS) == []  # the same cart: once
    # A checkout empties the cart; a new cart can be abandoned again.
    state = applied_more(state, browse("b3", "c", BASE_TS + 4 * DAY_MS, "checkout"))
    assert state.cart_items == 0 and scan(BASE_TS + 6 * DAY_MS) == []
    state = applied_more(state, browse("b4", "c", BASE_TS + 7 * DAY_MS, "add_to_cart"))
    assert scan(BASE_TS + 9 * DAY_MS) == ["1 item(s) left in the cart 48 hours ago"]


def applied_more(state: CustomerState, raw: dict[str, Any]) -> CustomerState:
    after = apply_event(state, parse_event_object(raw))
    assert after is not None
    return after


def test_a_purchase_closes_the_cart_it_follows() -> None:
    state = applied(
        browse("b1", "c", BASE_TS, "add_to_cart"),
        purchase("p", "c", BASE_TS + HOUR, 30.0),
    )
    assert (state.cart_items, state.cart_opened_ms) == (0, None)


EMAILS = st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{1,8}\.(com|org|de)", fullmatch=True)
PHONES = st.from_regex(r"\+?[0-9]{2,3}[ -][0-9]{3,4}[ -][0-9]{3,4}", fullmatch=True)
DIGIT_RUNS = st.from_regex(r"[0-9]{5,20}", fullmatch=True)
WORDS = st.text(alphabet=st.characters(categories=["L", "Zs", "P"]), max_size=60)


@given(st.lists(st.one_of(EMAILS, PHONES, DIGIT_RUNS, WORDS), max_size=8))
def test_excerpts_never_carry_contact_details_or_long_numbers(parts: list[str]) -> None:
    excerpt = redact_excerpt(" ".join(parts))
    assert len(excerpt) <= 120
    assert not re.search(r"\d{5}", excerpt)
    assert not re.search(r"@[a-z]+\.(com|org|de)", excerpt)
    digits = re.sub(r"\D", "", excerpt)
    assert len(digits) < 7  # no phone number survives in any spelling


def test_rises_below_the_minimum_tier_only_change_the_score() -> None:
    state = applied(purchase("p", "c", BASE_TS, 10.0))
    scores = Scores(churn_risk=0.5, churn_tier="medium", churn_ready=True)
    at = BASE_TS + 30 * DAY_MS
    assert AlertPolicy().on_scan(state, state, at, scores, "m/1", NOW).alerts == []
