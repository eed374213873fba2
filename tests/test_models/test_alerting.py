from __future__ import annotations

from datetime import UTC, datetime

from models.alerting import AlertPolicy
from models.features import apply_event
from models.scoring import Scores
from schemas.alerts import AlertKind, alert_id_for
from schemas.events import parse_event_object
from tests.factories import BASE_TS, feedback, purchase

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def alerts_for(raw: dict[str, object]) -> list[tuple[str, str]]:
    event = parse_event_object(raw)
    after = apply_event(None, event)
    assert after is not None
    out = AlertPolicy().evaluate(None, after, event, Scores(), "m/1", NOW)
    return [(a.kind.value, a.severity.value) for a in out]


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


def test_alert_id_is_deterministic_and_kind_specific() -> None:
    event = parse_event_object(feedback("f9", "c", BASE_TS, "awful", rating=1))
    after = apply_event(None, event)
    assert after is not None
    a = AlertPolicy().evaluate(None, after, event, Scores(), "m/1", NOW)[0]
    b = AlertPolicy().evaluate(None, after, event, Scores(), "m/1", datetime.now(UTC))[0]
    assert a.alert_id == b.alert_id == alert_id_for(AlertKind.NEGATIVE_FEEDBACK, "f9")
    assert a.alert_id != alert_id_for(AlertKind.CHURN_RISK, "f9")
    assert "awful" not in a.model_dump_json()  # raw text never leaves in an alert


def test_a_churn_tier_rise_alerts_with_its_drivers_and_value_at_risk() -> None:
    event = parse_event_object(purchase("p7", "c", BASE_TS, 10.0))
    after = apply_event(None, event)
    assert after is not None
    scores = Scores(
        churn_risk=0.82,
        churn_tier="high",
        value_at_risk=410.0,
        churn_tier_rose=True,
        churn_drivers=(
            (
                "recency_log",
                "no purchase for 74 days, 3.0x this customer's usual gap of 25 days",
                1.2,
            ),
        ),
    )
    alert = AlertPolicy().evaluate(None, after, event, scores, "m/1", NOW)[0]
    assert (alert.kind.value, alert.severity.value) == ("churn_risk", "high")
    assert alert.alert_id == alert_id_for(AlertKind.CHURN_RISK, "p7")
    assert alert.value_at_risk == 410.0 and alert.churn_risk == 0.82
    assert [r.code for r in alert.reasons] == ["churn_tier", "recency_log"]
    assert "74 days" in alert.reasons[1].text
    quiet = Scores(churn_risk=0.82, churn_tier="high", churn_tier_rose=False)
    assert AlertPolicy().evaluate(None, after, event, quiet, "m/1", NOW) == []
