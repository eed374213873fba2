"""deploy/k8s agrees with the code: settings, ports, probes, labels and files."""

from __future__ import annotations

from typing import Any

import yaml

from stream.settings import Settings
from tests.test_deploy.conftest import DEPLOY
from tests.test_deploy.test_compose import settings_from

K8S = DEPLOY / "k8s"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return doc


def test_kustomization_lists_existing_manifests_and_no_secret() -> None:
    resources = load("kustomization.yaml")["resources"]
    for name in resources:
        assert (K8S / name).exists(), name
    assert "secret.example.yaml" not in resources  # real secrets are made out of band


def test_settings_from_configmap_and_secret_are_valid() -> None:
    env = {**load("configmap.yaml")["data"], **load("secret.example.yaml")["stringData"]}
    settings = settings_from(env)
    assert settings.kafka_security_protocol == "SASL_SSL"  # production connects securely
    assert settings.web_token.get_secret_value()
    secret_fields = {"kafka_sasl_password", "web_token", "kafka_ssl_key_password"}
    for name in load("configmap.yaml")["data"]:
        assert name.removeprefix("CRM_").lower() not in secret_fields, f"{name} is a secret"


def test_statefulset_probes_ports_and_labels_match_the_worker() -> None:
    settings = settings_from(
        {**load("configmap.yaml")["data"], **load("secret.example.yaml")["stringData"]}
    )
    sts = load("statefulset.yaml")
    pod = sts["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == settings.web_port
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(settings.web_port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == str(settings.data_dir)
    assert settings.kafka_ssl_cafile is not None
    assert str(settings.kafka_ssl_cafile).startswith(mounts["kafka-ca"])
    claim = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    assert claim == "data"
    service = load("service.yaml")
    assert service["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "crm-scorer"
    labels = pod["metadata"]["labels"]
    for selector in (
        sts["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        load("poddisruptionbudget.yaml")["spec"]["selector"]["matchLabels"],
        load("servicemonitor.yaml")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    (endpoint,) = load("servicemonitor.yaml")["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == port["name"]
    advertised = {e["name"]: e.get("value") for e in container["env"]}
    assert advertised["CRM_WEB_ADVERTISED_HOST"] == "$(POD_NAME).crm-scorer"
    assert container["resources"]["requests"]["memory"]


def test_the_topics_job_runs_the_create_topics_command() -> None:
    job = load("topics-job.yaml")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["create-topics"]
    from stream.cli import build_parser

    assert build_parser().parse_args(["create-topics"]).command == "create-topics"
    assert Settings.model_fields  # the same settings as the workers (envFrom both)
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert refs == {"crm-scorer"}
