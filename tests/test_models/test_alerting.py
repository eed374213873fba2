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
