"""Model checkpoints through a real worker: after ``kill -9`` and a restart, the restored
models give identical predictions on a fixed probe set of customers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventdata.events import DEMO_DATA, build_events
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.workerproc import WorkerProcess
from tests.conftest import StartWorker
from tests.kafka import send
from tests.test_stream.test_delivery import wait_for_processed
from tests.test_stream.test_worker import wire

pytestmark = pytest.mark.broker

PARTITIONS = Settings().topic_partitions


def models_view(worker: WorkerProcess) -> dict[str, Any]:
    status, body = worker.get("/models")
    assert status == 200
    partitions: dict[str, Any] = orjson.loads(body)["partitions"]
    return partitions


def checkpoints_current(worker: WorkerProcess, timeout_s: float = 60) -> dict[str, Any]:
    """The /models view once every partition's checkpoint holds all it learned and
    nothing moved for a while (the clock jumps once the input goes idle)."""
    deadline = time.monotonic() + timeout_s
    previous = None
    while time.monotonic() < deadline:
        view = models_view(worker)
        current = len(view) == PARTITIONS and all(
            p["checkpoint"] is not None and p["unsaved_s"] == 0 for p in view.values()
        )
        if current and view == previous:
            return view
        previous = view if current else None
        time.sleep(1.5)
    raise TimeoutError(f"checkpoints not current after {timeout_s}s: {models_view(worker)}")


def probe(worker: WorkerProcess, customers: list[str]) -> dict[str, Any]:
    scores = {}
    for customer_id in customers:
        status, body = worker.get(f"/customers/{customer_id}")
        assert status == 200, body
        scores[customer_id] = orjson.loads(body)["score"]
    return scores


def test_restored_models_predict_exactly_as_before_a_kill_9(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    env = {
        # RocksDB on the same disk: the restore reads checkpoints written after the
        # table's last local write (they go straight to the changelog).
        "CRM_TABLE_STORE": "rocksdb",
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "CRM_CHECKPOINT_INTERVAL_S": "1",
        "CRM_CHECKPOINT_CHUNK_BYTES": "16384",  # several records per checkpoint
        "CRM_WATERMARK_IDLE_S": "1",
    }
    first = start_worker("w1", **env)
    first.wait_ready()
    events = build_events(DEMO_DATA)[:5000]
    send(settings, wire(settings, events))
    wait_for_processed(first, len(events))
    before = checkpoints_current(first)
    assert all(p["churn_labels_learned"] and p["segments_learned"] for p in before.values()), before
    assert sum(p["sentiment_texts_learned"] for p in before.values()) > 0
    assert max(p["checkpoint"]["payload_bytes"] for p in before.values()) > 16384
    customers = sorted({e["customer_id"] for e in events})
    probe_set = customers[:: max(len(customers) // 40, 1)]
    predicted = probe(first, probe_set)
    assert {s["churn_tier"] for s in predicted.values()} and all(
        s["churn_risk"] is not None for s in predicted.values()
    )
    first.proc.kill()  # SIGKILL: no shutdown checkpoint; the interval's must do
    first.proc.wait()

    second = start_worker("w2", **env)
    second.wait_ready()
    assert probe(second, probe_set) == predicted
    after = models_view(second)
    for partition, view in before.items():
        for key in ("churn_labels_learned", "sentiment_texts_learned", "segments_learned"):
            assert after[partition][key] == view[key], (partition, key)
        assert after[partition]["checkpoint"] == view["checkpoint"]
        assert after[partition]["clock_ms"] == view["clock_ms"]
    assert second.metric("crm_model_restores_total", outcome="restored") == PARTITIONS
    assert second.metric("crm_model_restores_total", outcome="new") == 0
