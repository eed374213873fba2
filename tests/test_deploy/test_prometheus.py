"""promtool checks the Prometheus configuration and unit-tests the alert rules; every
metric that a rule or the Grafana dashboard queries is one the worker exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from stream import metrics
from tests.test_deploy.conftest import DEPLOY, tool

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "crm-scorer.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_series() -> set[str]:
    """Every series name the worker's /metrics can carry."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, (MetricWrapperBase, metrics.LoopCollector)):
            for family in value.describe():
                names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def queried(expr: str) -> set[str]:
    return set(re.findall(r"\b(crm_[a-z0-9_]+)\b", expr))


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def promtool(*args: str, cwd: Path = PROMETHEUS) -> None:
    result = subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_configuration_and_its_rules() -> None:
    promtool("check", "config", "prometheus.yml")


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    promtool("test", "rules", "rules.test.yml")


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    tests = yaml.safe_load((PROMETHEUS / "rules.test.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }
    assert names == tested


def test_rules_and_dashboard_query_only_metrics_the_worker_exports() -> None:
    exported = exported_series()
    for expr in rule_exprs() + dashboard_exprs():
        unknown = queried(expr) - exported
        assert not unknown, f"{expr!r} queries {unknown}, not exported by stream/metrics.py"
    # And the dashboard covers what the issue asks an operator to see.
    shown = set().union(*map(queried, dashboard_exprs()))
    for needed in (
        "crm_events_total",
        "crm_consumer_lag_messages",
        "crm_processing_seconds_bucket",
        "crm_event_to_alert_seconds_bucket",
        "crm_fetch_round_trip_seconds_bucket",
        "crm_alerts_emitted_total",
        "crm_churn_auc_recent",
        "crm_demand_mae_recent",
        "crm_sentiment_accuracy_recent",
        "crm_segments_inertia_recent",
    ):
        assert needed in shown, needed


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    source = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    uids = {panel["datasource"]["uid"] for panel in panels}
    uids |= {t["datasource"]["uid"] for panel in panels for t in panel["targets"]}
    assert uids == {source["uid"]}
    assert len({panel["id"] for panel in panels}) == len(panels)
