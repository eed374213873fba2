"""The subscriber documentation: its examples are valid records and its code runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from schemas.alerts import AlertKind, RiskAlert

DOC = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"


def test_alert_examples_cover_every_kind_and_match_the_schema() -> None:
    text = DOC.read_text(encoding="utf-8")
    examples = [
        RiskAlert.model_validate_json(block)
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)
    ]
    assert sorted(a.kind for a in examples) == sorted(AlertKind)
    for alert in examples:
        assert alert.reasons
        assert (alert.customer_id is None) == (alert.kind is AlertKind.SENTIMENT_SURGE)


def test_the_example_subscriber_is_valid_python() -> None:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    tree = ast.parse(code)
    assert any(isinstance(node, ast.AsyncFunctionDef) for node in tree.body)
    assert "alert_id" in code and "AIOKafkaConsumer" in code
