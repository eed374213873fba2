"""Every public record with its JSON Schema file name (published in ``schemas/json/``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.alerts import RiskAlert
from schemas.dead_letter import DeadLetter
from schemas.events import BrowseEvent, Event, FeedbackEvent, PurchaseEvent
from schemas.scores import CustomerScore

_INPUTS: dict[str, type[BaseModel]] = {
    "purchase_event": PurchaseEvent,
    "browse_event": BrowseEvent,
    "feedback_event": FeedbackEvent,
}
_OUTPUTS: dict[str, type[BaseModel]] = {
    "risk_alert": RiskAlert,
    "customer_score": CustomerScore,
    "dead_letter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """File stem -> JSON Schema. Inputs in validation mode, outputs as serialised."""
    out: dict[str, dict[str, Any]] = {}
    for stem, model in _INPUTS.items():
        out[stem] = model.model_json_schema(mode="validation")
    out["event"] = TypeAdapter(Event).json_schema(mode="validation")
    out["event"]["title"] = "Event"
    for stem, model in _OUTPUTS.items():
        out[stem] = model.model_json_schema(mode="serialization")
    for stem, schema in out.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{stem}.schema.json"
    return out


def schema_file_text(schema: dict[str, Any]) -> str:
    """The exact text of a published schema file (sorted keys, 2-space indent)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
