"""``crm-scorer demo``: embedded broker, a real worker, real data replayed fast, and
what comes out shown live in the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from eventdata.events import build_events
from stream.broker import EmbeddedBroker
from stream.producer import ProduceReport, produce_lines
from stream.settings import Settings
from stream.tail import Stream, describe, records
from stream.workerproc import WorkerProcess, worker_env

#: The extract has 400 customers and about 6 feedback a week: the surge detector needs a
#: longer baseline and less evidence than on a real shop's volume to see the simulated
#: incident (eventdata.feedback.INCIDENT). Partitions idle for 2 s stop holding the
#: clock back, so the last scans follow the replay's end promptly.
DEMO_WORKER_ENV = {
    "CRM_SURGE_BASELINE_DAYS": "56",
    "CRM_SURGE_MIN_FEEDBACK": "20",
    "CRM_SURGE_Z": "3.5",
    "CRM_WATERMARK_IDLE_S": "2",
}
#: Three malformed messages, so the dead-letter path is visible too.
BAD_MESSAGES = [
    b"{not json",
    b'{"type": "purchase", "event_id": "bad-1", "customer_id": "12345", "ts": 1300000000000}',
    b'{"type": "purchase", "event_id": "bad-2", "customer_id": "12345", '
    b'"ts": "yesterday", "amount": "lots"}',
]


class Screen:
    """Live lines above a progress line that redraws in place on a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self._last_plain = 0.0

    def line(self, text: str) -> None:
        print(("\r\033[K" if self.tty else "") + text, flush=True)

    def progress(self, text: str, force: bool = False) -> None:
        if self.tty:
            print("\r\033[K" + text, end="", flush=True)
        elif force or time.monotonic() - self._last_plain > 5:
            self._last_plain = time.monotonic()
            print(text, flush=True)


@dataclass
class Seen:
    """What the demo received, for the progress line and the summary."""

    counts: Counter[str] = field(default_factory=Counter)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


async def _show(
    settings: Settings, screen: Screen, which: Stream, seen: Seen, stop: list[bool]
) -> None:
    async for record in records(settings, which, stop=lambda: stop[0]):
        if which == "scores":
            # Scores from a scan of quiet customers carry no event id.
            seen.counts["scores" if record["event_id"] else "scan scores"] += 1
            seen.latest[record["customer_id"]] = record
            if seen.counts["scores"] % 1000 == 1:
                screen.line("score  " + describe(which, record))
            continue
        seen.counts[which] += 1
        if which == "alerts":
            seen.alerts[record["kind"]].append(record)
        screen.line(("ALERT  " if which == "alerts" else "DEAD   ") + describe(which, record))


async def _replay(
    settings: Settings, events: list[dict[str, Any]], speed: float, screen: Screen
) -> tuple[ProduceReport, Seen]:
    seen = Seen()
    counts = seen.counts
    stop = [False]
    watchers = [
        asyncio.create_task(_show(settings, screen, which, seen, stop))
        for which in ("alerts", "scores", "dead-letters")
    ]
    producer = AIOKafkaProducer(**settings.kafka_client_options())
    await producer.start()
    for bad in BAD_MESSAGES:
        await producer.send_and_wait(settings.topic_purchases, bad, key=b"12345")
    await producer.stop()

    total = len(events)

    def on_sent(report: ProduceReport) -> None:
        if report.sent % 50 == 0 or report.sent == total:
            ts = datetime.fromtimestamp(events[report.sent - 1]["ts"] / 1000, UTC)
            filled = int(30 * report.sent / total)
            screen.progress(
                f"[{'#' * filled}{'.' * (30 - filled)}] {report.sent:,}/{total:,} events "
                f"| event time {ts:%Y-%m-%d} | scores {counts['scores']:,} "
                f"| alerts {counts['alerts']:,} | dead letters {counts['dead-letters']:,}"
            )

    report = await produce_lines(
        settings, (orjson.dumps(e) for e in events), speed=speed, on_sent=on_sent
    )
    # Wait for the worker to catch up: one score per event, one dead letter per bad message.
    deadline = time.monotonic() + 60
    # The counters are bumped by the watcher tasks; polling them is the simple, bounded wait.
    while time.monotonic() < deadline and (  # noqa: ASYNC110
        counts["scores"] < report.sent or counts["dead-letters"] < len(BAD_MESSAGES)
    ):
        await asyncio.sleep(0.2)
    stop[0] = True
    await asyncio.gather(*watchers)
    return report, seen


@contextlib.contextmanager
def _broker(screen: Screen) -> Iterator[str]:
    configured = os.environ.get("CRM_KAFKA_BOOTSTRAP")
    if configured:
        screen.line(f"using the configured Kafka at {configured}")
        yield configured
        return
    with EmbeddedBroker() as broker:
        screen.line(f"embedded broker (Tansu, in memory) on {broker.bootstrap}")
        yield broker.bootstrap


def run_demo(*, limit: int | None, duration_s: float, keep_open_s: float) -> int:
    screen = Screen()
    events = build_events()
    if limit is not None:
        events = events[:limit]
    span_s = (events[-1]["ts"] - events[0]["ts"]) / 1000
    speed = max(span_s / duration_s, 1.0)
    screen.line(
        f"{len(events):,} events from the shipped extract of Online Retail (purchases), "
        "real review texts (feedback) and seeded synthetic browsing"
    )
    with tempfile.TemporaryDirectory(prefix="crm-demo-") as tmp, _broker(screen) as bootstrap:
        env = worker_env(bootstrap, Path(tmp) / "worker", **DEMO_WORKER_ENV)
        settings = Settings(kafka_bootstrap=bootstrap)
        worker = WorkerProcess(env, Path(tmp) / "worker.log")
        try:
            ready = worker.wait_ready()
            screen.line(f"worker ready in {ready:.1f}s; metrics at {worker.url('/metrics')}")
            screen.line(f"replaying at {speed:,.0f}x event time (about {duration_s:.0f}s)")
            report, seen = asyncio.run(_replay(settings, events, speed, screen))
            screen.progress("", force=False)
            _summary(screen, worker, report, seen)
            if keep_open_s > 0:
                screen.line(f"worker stays up {keep_open_s:.0f}s: curl {worker.url('/metrics')}")
                time.sleep(keep_open_s)
        finally:
            code = worker.stop()
    return 0 if code == 0 else 1


def _summary(screen: Screen, worker: WorkerProcess, report: ProduceReport, seen: Seen) -> None:
    counts = seen.counts
    screen.line("")
    screen.line(
        f"sent {report.sent:,} events + {len(BAD_MESSAGES)} malformed; received "
        f"{counts['scores']:,} scores (+{counts['scan scores']:,} from scans of quiet "
        f"customers), {counts['alerts']:,} alerts, {counts['dead-letters']:,} dead letters"
    )
    screen.line("alerts by kind (the top 3 by value at risk, or the latest):")
    for kind, alerts in sorted(seen.alerts.items()):
        screen.line(f"  {kind}: {len(alerts):,}")
        ranked = sorted(alerts, key=lambda a: a.get("value_at_risk") or 0.0, reverse=True)
        for alert in ranked[:3]:
            screen.line("    " + describe("alerts", alert))
    status, body = worker.get("/metrics")
    screen.line(f"GET /metrics -> {status}; the event and alert counters:")
    for text in body.decode().splitlines():
        if text.startswith(
            ("crm_events_total", "crm_dead_letters_total", "crm_alerts_emitted_t", "crm_alerts_sup")
        ):
            screen.line("  " + text)
    top = sorted(seen.latest.values(), key=lambda r: r["net_value"], reverse=True)[:5]
    screen.line("top customers by net value (latest score per customer):")
    for record in top:
        screen.line("  " + describe("scores", record))
