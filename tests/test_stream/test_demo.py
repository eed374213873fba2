"""The README's first command, as a user runs it (on a shorter replay)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.broker


def test_demo_shows_live_output_alerts_and_dead_letters() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--limit", "4000", "--duration", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    first_live = None
    for line in proc.stdout:
        lines.append(line)
        if first_live is None and line.startswith(("score", "ALERT")):
            first_live = time.monotonic() - started
    assert proc.wait(timeout=180) == 0, "".join(lines)
    out = "".join(lines)
    print(f"first live line after {first_live:.1f}s")
    assert first_live is not None and first_live < 60
    assert "embedded broker" in out and "worker ready in" in out
    assert "ALERT" in out and "negative_feedback" in out
    assert "sent 4,000 events + 3 malformed; received 4,000 scores (+" in out
    assert "alerts by kind" in out
    assert "3 dead letters" in out
    assert 'crm_events_total{outcome="dead_lettered",topic="crm.purchases"} 3.0' in out
