from __future__ import annotations

from pathlib import Path

import pytest

from stream.settings import Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_generated_from_settings() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings-table:start -->\n") + len("<!-- settings-table:start -->\n")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end] == settings_table(), "regenerate: python -m stream.settings"


def test_env_vars_with_the_prefix_configure_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP", "k1:9092, kafka://k2:9093")
    monkeypatch.setenv("CRM_TOPIC_ALERTS", "x.alerts")
    monkeypatch.setenv("CRM_TABLE_STORE", "memory")
    settings = Settings()
    assert settings.faust_broker == "kafka://k1:9092;kafka://k2:9093"
    assert settings.bootstrap_servers == ["k1:9092", "k2:9093"]
    assert settings.topic_alerts == "x.alerts"
    assert settings.table_store == "memory"
    assert set(settings.input_topics.values()) == {"purchase", "browse", "feedback"}


def test_invalid_configuration_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TABLE_STORE", "redis")
    with pytest.raises(ValueError):
        Settings()
