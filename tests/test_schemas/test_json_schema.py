"""The published JSON Schema files are exactly what the models say, and real records
validate against them (checked by an independent JSON Schema validator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from schemas.alerts import AlertKind, AlertReason, RiskAlert, Severity, alert_id_for
from schemas.registry import json_schemas, schema_file_text
from tests.factories import BASE_TS, browse, feedback, purchase

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"


@pytest.mark.parametrize("stem", sorted(json_schemas()))
def test_published_file_matches_the_model(stem: str) -> None:
    path = SCHEMA_DIR / f"{stem}.schema.json"
    assert path.exists(), "run: crm-scorer export-schemas"
    assert path.read_text(encoding="utf-8") == schema_file_text(json_schemas()[stem]), (
        f"{path.name} is stale: run `crm-scorer export-schemas` and bump schema_version "
        "if the change is incompatible"
    )


def test_no_stray_schema_files() -> None:
    published = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.json")}
    assert published == set(json_schemas())


def test_events_validate_against_the_event_schema() -> None:
    schema = json_schemas()["event"]
    for event in (
        purchase("e", "c", BASE_TS, 3.5, cost=1.0),
        browse("e", "c", "2011-03-13T10:00:00+01:00", "view"),  # type: ignore[arg-type]
        feedback("e", "c", BASE_TS, "很好", rating=5),
    ):
        jsonschema.validate(event, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(browse("e", "c", BASE_TS, "teleport"), schema)


def test_an_alert_validates_against_the_alert_schema() -> None:
    alert = RiskAlert(
        alert_id=alert_id_for(AlertKind.CHURN_RISK, "e1"),
        kind=AlertKind.CHURN_RISK,
        severity=Severity.HIGH,
        customer_id="c1",
        event_id="e1",
        ts=datetime(2011, 3, 1, tzinfo=UTC),
        emitted_at=datetime.now(UTC),
        model_version="m/1",
        reasons=[AlertReason(code="recency", text="no purchase for 74 days", value=74)],
        churn_risk=0.8,
    )
    jsonschema.validate(json.loads(alert.model_dump_json()), json_schemas()["risk_alert"])
