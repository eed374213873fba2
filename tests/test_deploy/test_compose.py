"""deploy/compose.yaml, its Prometheus configuration and deploy/create-topics.sh agree
with the code: settings, ports, endpoints and the topics (names, partitions, compaction)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml

from stream.app import build_app
from stream.settings import Settings
from stream.topics import changelog_topic_specs, internal_topic_specs, topic_specs
from tests.test_deploy.conftest import DEPLOY

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def crm_env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    return {k: str(v) for k, v in env.items() if k.startswith("CRM_")}


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as the service's container would read them (unknown names fail)."""
    fields = {name.removeprefix("CRM_").lower(): value for name, value in env.items()}
    unknown = set(fields) - set(Settings.model_fields)
    assert not unknown, f"not settings: {unknown}"
    return Settings.model_validate(fields)


def test_every_crm_variable_is_a_setting_and_valid() -> None:
    for service in ("topics", "worker", "producer"):
        settings_from(crm_env(service))


def test_workers_reach_kafka_and_prometheus_scrapes_every_worker() -> None:
    worker = settings_from(crm_env("worker"))
    kafka_port = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].rsplit(":", 1)
    assert worker.kafka_bootstrap == f"kafka:{kafka_port[1]}"
    assert worker.web_host == "0.0.0.0"  # reachable from the Prometheus container
    assert str(worker.web_port) in map(str, SERVICES["worker"]["expose"])
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert not worker.create_topics  # the topics job made them
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == worker.web_port
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    assert f'job="{job["job_name"]}"' in str(rules)
    mounted = {v.split(":")[1] for v in SERVICES["prometheus"]["volumes"]}
    assert {f"/etc/prometheus/{name}" for name in prometheus["rule_files"]} <= mounted


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/crm-scorer.yml").read_text()
    )["providers"][0]
    mounts = dict(v.rsplit(":", 1)[0].split(":") for v in SERVICES["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (DEPLOY / "grafana/dashboards/crm-scorer.json").exists()


def topics_the_script_creates(tmp_path: Path, env: dict[str, str]) -> dict[str, tuple[int, bool]]:
    """Run create-topics.sh with kafka-topics.sh replaced by a recorder of its arguments."""
    record = tmp_path / "calls"
    recorder = tmp_path / "kafka-topics.sh"
    recorder.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    run_env.update(env, KAFKA_TOPICS=str(recorder))
    subprocess.run(["bash", str(DEPLOY / "create-topics.sh")], env=run_env, check=True)
    created = {}
    for line in record.read_text().splitlines():
        args = line.split()
        value = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
        compacted = "cleanup.policy=compact" in args
        created[value["--topic"]] = (int(value["--partitions"]), compacted)
    return created


def test_the_topics_job_creates_exactly_the_topics_the_worker_uses(tmp_path: Path) -> None:
    env = crm_env("topics")
    settings = settings_from(env)
    partitions = settings.topic_partitions  # the job makes the inputs: the worker adopts it
    expected = {
        spec.name: (spec.partitions or settings.topic_partitions, spec.compacted)
        for spec in [
            *topic_specs(settings),
            *internal_topic_specs(settings, partitions),
            *changelog_topic_specs(settings, partitions),
        ]
    }
    assert topics_the_script_creates(tmp_path, env) == expected
    # The changelog names are Faust's, for the tables the app declares.
    app = build_app(settings, partitions).app
    changelogs = {
        table.changelog_topic.get_topic_name(): table.partitions for table in app.tables.values()
    }
    assert changelogs == {
        spec.name: spec.partitions for spec in changelog_topic_specs(settings, partitions)
    }
