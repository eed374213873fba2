"""A worker in a child process, as the demo and the integration tests run it."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from stream.broker import free_port

#: Settings for a worker on the embedded broker. Group timings: ready in seconds, not 30 s.
#: One record per producer batch: Tansu answers ListOffsets(latest) with the last
#: batch's base offset + 1, so Faust's changelog recovery stopped short of records that
#: shared a batch and restored stale state (caught by the restart test). Apache Kafka
#: is not affected; production keeps the default batch size.
EMBEDDED_BROKER_ENV = {
    "CRM_BROKER_SESSION_TIMEOUT_S": "6",
    "CRM_BROKER_HEARTBEAT_INTERVAL_S": "1",
    "CRM_BROKER_REBALANCE_TIMEOUT_S": "3",
    "CRM_PRODUCER_MAX_BATCH_BYTES": "1",
}


def bucket_holding(buckets: dict[float, float], share: float) -> tuple[float, float]:
    """The (lower, upper) bounds of the cumulative histogram bucket (:meth:`WorkerProcess.
    buckets`) that holds ``share`` of its observations: a histogram keeps no quantile."""
    total = buckets.get(math.inf, 0.0)
    bounds = sorted(buckets)
    upper = next(le for le in bounds if buckets[le] >= share * total)
    lower = max((le for le in bounds if le < upper), default=0.0)
    return lower, upper


class WorkerProcess:
    """``crm-scorer worker`` in a child process, with its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.web_port = int(env["CRM_WEB_PORT"])
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env=env,
            cwd=cwd,  # with ``-m`` the working directory comes first on the path
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def peak_rss_bytes(self) -> float:
        """The most resident memory the worker has held so far (Linux's VmHWM)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return float(kib) * 1024

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(
        self, path: str, timeout: float = 2.0, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def samples(self, *names: str, **labels: str) -> list[Sample]:
        """The samples with one of ``names`` on ``/metrics`` whose labels include
        ``labels``, from one scrape."""
        status, body = self.get("/metrics", timeout=10)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}; log: {self.log_path}")
        return [
            sample
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name in names and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def totals(self, *names: str) -> dict[str, float]:
        """The sum of each name's samples, all from one scrape of ``/metrics``."""
        totals = dict.fromkeys(names, 0.0)
        for sample in self.samples(*names):
            totals[sample.name] += sample.value
        return totals

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` on ``/metrics`` whose labels include ``labels``."""
        return sum(sample.value for sample in self.samples(name, **labels))

    def buckets(self, name: str, **labels: str) -> dict[float, float]:
        """The cumulative buckets of histogram ``name`` (upper bound: count), summed over
        its series whose labels include ``labels``, as :meth:`metric` sums; one scrape."""
        buckets: dict[float, float] = {}
        for sample in self.samples(f"{name}_bucket", **labels):
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
        return buckets

    def wait_metric(
        self,
        name: str,
        done: Callable[[float], bool],
        timeout_s: float = 60.0,
        poll_s: float = 0.2,
        **labels: str,
    ) -> float:
        """:meth:`metric` once ``done(value)``; its last value if ``timeout_s`` ran out
        first (the caller decides whether that is an error). A scrape that times out (the
        worker's loop held that long) is waited out too, as not done yet."""
        deadline = time.monotonic() + timeout_s
        value = self.metric(name, **labels)
        while not done(value) and time.monotonic() < deadline:
            time.sleep(poll_s)
            with contextlib.suppress(OSError):
                value = self.metric(name, **labels)
        return value

    def wait_count(self, name: str, total: float, timeout_s: float, **labels: str) -> float:
        """:meth:`wait_metric` for a counter to reach ``total``, timing the moment it
        does to within about 20 ms while scraping little: each scrape costs the worker
        a few ms of its loop, a second's worth at a fixed 0.5 s over a benchmark's run.
        The next scrape comes at a quarter of the time left at the latest rate, between
        20 ms and 2 s."""
        deadline = time.monotonic() + timeout_s
        at, value = time.monotonic(), self.metric(name, **labels)
        wait_s = 0.5
        while value < total and time.monotonic() < deadline:
            time.sleep(wait_s)
            with contextlib.suppress(OSError):
                now, latest = time.monotonic(), self.metric(name, **labels)
                rate = (latest - value) / (now - at)
                left_s = (total - latest) / rate if rate > 0 else 2.0
                wait_s = min(max(left_s / 4, 0.02), 2.0)
                at, value = now, latest
        return value

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds until ``/ready`` answered 200; raises if the worker dies or is late."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.proc.returncode}; log: {self.log_path}"
                )
            with contextlib.suppress(OSError):
                if self.get("/ready", timeout=1.0)[0] == 200:
                    return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout_s}s; log: {self.log_path}")

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def worker_env(bootstrap: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(EMBEDDED_BROKER_ENV)
    env.update(
        CRM_KAFKA_BOOTSTRAP=bootstrap,
        CRM_TABLE_STORE="memory",
        CRM_DATA_DIR=str(data_dir),
        CRM_WEB_PORT=str(free_port()),
        CRM_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env
