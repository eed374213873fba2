from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.broker import EmbeddedBroker
from stream.workerproc import WorkerProcess, worker_env

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as b:
        yield b


@pytest.fixture
def start_worker(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[StartWorker]:
    """Start ``crm-scorer worker`` processes on the test's broker; all stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(name: str = "w1", **env: str) -> WorkerProcess:
        data_dir = env.pop("CRM_DATA_DIR", str(tmp_path / name))
        worker = WorkerProcess(
            worker_env(broker.bootstrap, Path(data_dir), **env), tmp_path / f"{name}.log"
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
