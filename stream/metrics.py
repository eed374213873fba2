"""Prometheus metrics of the worker (prometheus-client, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "crm_events_total",
    "Input messages handled, by topic and outcome (ok, duplicate, rerouted, dead_lettered).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "crm_dead_letters_total",
    "Input messages sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
)
ALERTS = Counter("crm_alerts_emitted_total", "Risk alerts published, by kind.", ["kind"])
ALERTS_SUPPRESSED = Counter(
    "crm_alerts_suppressed_total",
    "Alerts held back, by kind and reason (cooldown per customer, rate_limit global).",
    ["kind", "reason"],
)
SCANS = Counter("crm_scans_total", "Scans of quiet customers, one per owned partition.")
WATERMARK = Gauge(
    "crm_event_time_watermark_seconds",
    "Event-time clock of the worker: low watermark of its input partitions (Unix time).",
)
