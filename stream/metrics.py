"""Prometheus metrics of the worker (prometheus-client, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
#: Event time to processing, in seconds: from seconds (live) to weeks (a backfill).
AGE_BUCKETS = (1, 5, 15, 60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400, 30 * 86_400)
EVENT_AGE = Histogram(
    "crm_event_age_seconds",
    "Wall time at processing minus the event's own time (ts), by input topic.",
    ["topic"],
    buckets=AGE_BUCKETS,
)
PROCESSING = Histogram(
    "crm_processing_seconds",
    "From consuming an input message to its outputs being queued for publishing.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
EVENT_TO_ALERT = Histogram(
    "crm_event_to_alert_seconds",
    "From the triggering message's Kafka timestamp to the alert being queued, by kind.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge(
    "crm_consumer_lag_messages",
    "Messages in an owned input partition not yet read by this worker.",
    ["topic", "partition"],
)
CUSTOMERS = Gauge("crm_customers", "Customers in this worker's state (owned partitions).")
CHURN_AUC = Gauge(
    "crm_churn_auc_recent",
    "Prequential churn AUC over the latest 2,000 matured labels (NaN until both outcomes).",
)
SENTIMENT_ACCURACY = Gauge(
    "crm_sentiment_accuracy_recent",
    "Prequential sentiment accuracy over the latest 1,000 rated texts.",
)
SEGMENT_INERTIA = Gauge(
    "crm_segments_inertia_recent",
    "Running mean squared distance of learned customers to their nearest k-means centre.",
)
SURGE_Z = Gauge(
    "crm_sentiment_surge_z",
    "Surge detector: z statistic of the negative-feedback share, window vs baseline.",
)
SURGE_ARMED = Gauge(
    "crm_sentiment_surge_armed",
    "Surge detector: 1 when armed, 0 after a surge until the share is back to normal.",
)
