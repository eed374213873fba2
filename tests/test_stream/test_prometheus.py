"""A real Prometheus server (Debian's package) scrapes a worker: the events counter it
stores is the number of events sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from stream.broker import EmbeddedBroker, free_port
from stream.settings import Settings
from tests.conftest import StartWorker
from tests.kafka import collect, latest_by_customer, send
from tests.test_stream.test_worker import make_events, wire

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="no prometheus: Debian's prometheus package (./dev test installs it as root)",
    ),
]


def query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_the_events_the_worker_processed(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    worker = start_worker()
    worker.wait_ready()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: crm-scorer\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{worker.web_port}']\n"
    )
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        events = make_events(seed=9, customers=10, per_customer=30, prefix="p")
        send(settings, wire(settings, events))
        customers = {e["customer_id"] for e in events}
        collect(settings, "scores", lambda r: customers <= set(latest_by_customer(r)))
        promql = 'sum(crm_events_total{job="crm-scorer",outcome="ok"})'
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                result = query(port, promql)
            except OSError:  # still starting
                result = []
            value = float(result[0]["value"][1]) if result else None  # type: ignore[index]
            if value == len(events):
                break
            time.sleep(0.5)
        assert value == len(events)
        up = query(port, 'up{job="crm-scorer"}')
        assert [r["value"][1] for r in up] == ["1"]  # type: ignore[index]
    finally:
        server.terminate()
        server.wait(timeout=30)
