"""The one way in for configuration: environment variables prefixed ``CRM_``.

Every field below is documented in the README's configuration table, which a test keeps
in step with this class.
"""

from __future__ import annotations

import socket
import ssl
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.alerting import AlertConfig
from models.retention import ModelConfig
from models.surge import SentimentSurge
from schemas.wire import DEFAULT_MAX_MESSAGE_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client of the service connects (TLS with SSL and SASL_SSL).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism, with SASL_PLAINTEXT and SASL_SSL."
    )
    kafka_sasl_username: str = Field(default="", description="SASL user name.")
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""), description="SASL password (a secret: never logged)."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates "
        "(default: the system's trusted CAs).",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM), where brokers require mutual TLS."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="Private key (PEM) of the client certificate."
    )
    kafka_ssl_key_password: SecretStr = Field(
        default=SecretStr(""), description="Password of the private key, if it has one."
    )
    app_id: str = Field(
        default="crm-scorer",
        description="Consumer group and prefix of the worker's internal (changelog) topics.",
    )
    topic_purchases: str = Field(default="crm.purchases", description="Purchase events in.")
    topic_browsing: str = Field(default="crm.browsing", description="Browse events in.")
    topic_feedback: str = Field(default="crm.feedback", description="Feedback events in.")
    topic_alerts: str = Field(default="crm.alerts", description="Risk alerts out.")
    topic_scores: str = Field(
        default="crm.customer-scores",
        description="Latest scores per customer out (compacted, keyed by customer).",
    )
    topic_dead_letter: str = Field(
        default="crm.dead-letter", description="Rejected input with the reason."
    )
    topic_partitions: int = Field(
        default=8,
        ge=1,
        description="Partitions of every topic the worker creates; all input topics must match.",
    )
    topic_replicas: int = Field(
        default=1, ge=1, description="Replication factor of created topics."
    )
    create_topics: bool = Field(
        default=True, description="Create missing topics at start-up (off where ops own topics)."
    )
    table_store: Literal["memory", "rocksdb"] = Field(
        default="rocksdb",
        description="Where tables live between changelog recoveries: rocksdb (via rocksdict) "
        "keeps state on disk, memory rebuilds it from the changelog at each start.",
    )
    rocksdb_memory_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=4 * 1024 * 1024,
        description="RocksDB memory of the worker, all its table partitions together: one "
        "block cache, which their memtables are charged to (at most half of it; the cache "
        "is sharded, so it may be passed by up to what the memtables hold: "
        "stream/stores.py). Blocks "
        "beyond it are read through the OS's page cache: at 95,000 customers 32 MiB took "
        "2.8 KB a customer less than 256 MiB, at a speed the runs could not tell apart "
        "(docs/benchmarks.md).",
    )
    rocksdb_write_buffer_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024 * 1024,
        description="RocksDB memtable size of each table partition (two of them at most; "
        "all of them within half of CRM_ROCKSDB_MEMORY_BYTES).",
    )
    data_dir: Path = Field(
        default=Path("var/crm-scorer"), description="Worker data directory (table store)."
    )
    web_host: str = Field(default="127.0.0.1", description="Address the HTTP endpoints bind to.")
    web_advertised_host: str = Field(
        default="",
        description="Host name others reach this worker's HTTP port by (the owner named in "
        "421 answers); default: CRM_WEB_HOST, or the host name when that is a wildcard.",
    )
    web_customers: bool = Field(
        default=True,
        description="Serve GET /customers/{id} (one customer's personal state); off: 404.",
    )
    web_token: SecretStr = Field(
        default=SecretStr(""),
        description="When set, /customers/{id} and /models need `Authorization: Bearer "
        "<token>` (/health, /ready and /metrics stay open).",
    )
    web_port: int = Field(
        default=6066,
        ge=0,
        le=65535,
        description="HTTP port (/health, /ready, /metrics, /customers/{id}).",
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES, ge=256, description="Larger input is dead-lettered."
    )
    dead_letter_max_value_bytes: int = Field(
        default=512 * 1024,
        ge=0,
        description="Original bytes kept in a dead letter; the rest is cut (value_truncated).",
    )
    broker_session_timeout_s: float = Field(
        default=60.0, gt=0, description="Consumer group session timeout."
    )
    broker_heartbeat_interval_s: float = Field(
        default=3.0, gt=0, description="Consumer group heartbeat interval."
    )
    broker_rebalance_timeout_s: float = Field(
        default=60.0, gt=0, description="Consumer group rebalance timeout."
    )
    commit_interval_s: float = Field(
        default=2.8, gt=0, description="How often consumed offsets are committed."
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=30_000,
        description="Longest a fetch may wait at the broker for new records (Faust's "
        "fixed 1500 would add up to that to each event's latency on a broker that holds "
        "fetches). On the embedded broker a short wait leaves partitions of a fetch "
        "answered without records it has: at 10 the p99 latency doubled.",
    )
    fetch_partition_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Most bytes a fetch takes of one partition (Kafka's "
        "max.partition.fetch.bytes; a larger first batch still comes whole). Each fetch "
        "of every input partition is decoded at once: 1 MiB held up to 137,000 records "
        "while catching up.",
    )
    producer_max_batch_bytes: int = Field(
        default=16_384,
        ge=1,
        description="Largest record batch the worker's producer builds per partition.",
    )
    output_linger_ms: float = Field(
        default=20,
        ge=0,
        le=1_000,
        description="How long the worker's state, scores and alerts wait to fill a batch "
        "before they are sent: fewer, larger batches for up to that much more latency.",
    )
    churn_horizon_days: float = Field(
        default=90.0, gt=0, description="A customer with no purchase for this long has churned."
    )
    snapshot_interval_days: float = Field(
        default=7.0, gt=0, description="Event-time interval of the models' customer snapshots."
    )
    demand_horizon_days: float = Field(
        default=30.0, gt=0, description="The demand forecast is of spend in this many days."
    )
    churn_uses_influence: bool = Field(
        default=False,
        description="Co-purchase influence as a churn feature (no lift measured on Online "
        "Retail: docs/models.md).",
    )
    churn_tier_medium: float = Field(
        default=0.4, ge=0, le=1, description="Churn probability from which the tier is medium."
    )
    churn_tier_high: float = Field(
        default=0.7, ge=0, le=1, description="Churn probability from which the tier is high."
    )
    segments: int = Field(default=5, ge=2, le=6, description="Number of customer segments.")
    scan_interval_days: float = Field(
        default=1.0,
        gt=0,
        description="Event-time interval of the scan that re-scores quiet customers.",
    )
    watermark_idle_s: float = Field(
        default=10.0,
        gt=0,
        description="An input partition silent this long (wall time) stops holding back "
        "the event-time clock.",
    )
    alert_cooldown_days: float = Field(
        default=7.0,
        ge=0,
        description="Event time before the same alert kind repeats for a customer.",
    )
    alert_churn_min_tier: Literal["medium", "high"] = Field(
        default="high",
        description="Lowest churn tier whose rise raises a churn_risk alert (see docs/alerts.md).",
    )
    alert_churn_min_quiet_days: float = Field(
        default=7.0,
        ge=0,
        description="A churn_risk alert waits until the customer made no purchase for this long.",
    )
    alert_cart_abandon_hours: float = Field(
        default=24.0, gt=0, description="A cart left this long without checkout is abandoned."
    )
    alert_negative_sentiment_max: float = Field(
        default=0.2,
        ge=0,
        le=0.5,
        description="Unrated feedback alerts when predicted P(positive) is at most this.",
    )
    alert_satisfaction_drop_points: float = Field(
        default=15.0,
        gt=0,
        le=100,
        description="satisfaction_drop: the index this many points below its baseline.",
    )
    alert_satisfaction_max: float = Field(
        default=50.0,
        gt=0,
        le=100,
        description="satisfaction_drop: and the index below this (50: neutral).",
    )
    alert_satisfaction_min_clv: float = Field(
        default=300.0,
        ge=0,
        description="satisfaction_drop: only for customers with at least this lifetime value.",
    )
    alert_rate_per_s: float = Field(
        default=200.0,
        gt=0,
        description="Global alert rate limit per worker (excess is counted, not published).",
    )
    alert_burst: int = Field(default=1000, ge=1, description="Alert burst allowed above the rate.")
    surge_window_days: float = Field(
        default=7.0, gt=0, description="Sentiment surge: event-time window of feedback."
    )
    surge_baseline_days: float = Field(
        default=28.0, gt=0, description="Sentiment surge: baseline before the window."
    )
    surge_z: float = Field(
        default=4.0, gt=0, description="Sentiment surge: z-score the rise must reach."
    )
    surge_min_feedback: int = Field(
        default=30, ge=1, description="Sentiment surge: feedback needed in window and baseline."
    )
    checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between checkpoints of a partition's models that learned "
        "something (also written on shutdown and when a partition moves).",
    )
    checkpoint_chunk_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Checkpoints go out in records of at most this size (keep it under the "
        "brokers' and topics' max.message.bytes).",
    )
    models_path: Path | None = Field(
        default=None,
        description="Warm start: models saved by `crm-scorer replay --models-out` (trusted file).",
    )
    log_level: str = Field(default="info", description="Worker log level.")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The worker's event loop: uvloop (libuv) or Python's own asyncio.",
    )
    gc_freeze_survivors: bool = Field(
        default=True,
        description="Freeze what survives each full garbage collection, so that the next "
        "scans only newer objects (thawed at each rebalance and every 10 minutes; "
        "stream/collector.py). Over 100,000 events the full collections paused the worker "
        "0.43-0.63 s in all, the longest 100-250 ms, and 0.08-0.12 s with it, the longest "
        "25-50 ms (docs/benchmarks.md).",
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"CRM_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "CRM_KAFKA_SASL_USERNAME and CRM_KAFKA_SASL_PASSWORD"
            )
        return self

    def rocksdb_options(self) -> dict[str, int]:
        """Options of each RocksDB table partition (a new dict each time: Faust's store
        pops keys from the one it gets); the memory is the worker's
        (``stream.stores.RocksDBMemory``)."""
        return {
            "write_buffer_size": self.rocksdb_write_buffer_bytes,
            "max_write_buffer_number": 2,
        }

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every Kafka client, or ``None`` without TLS. Verifies the
        brokers' certificates and host names."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        )
        if self.kafka_ssl_certfile:
            context.load_cert_chain(
                str(self.kafka_ssl_certfile),
                str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
                self.kafka_ssl_key_password.get_secret_value() or None,
            )
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients: the brokers and how to connect."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
            "ssl_context": self.kafka_ssl_context(),
        }
        if self.kafka_security_protocol.startswith("SASL_"):
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password.get_secret_value(),
            )
        return options

    @property
    def web_canonical_host(self) -> str:
        if self.web_advertised_host:
            return self.web_advertised_host
        return socket.gethostname() if self.web_host in ("0.0.0.0", "::") else self.web_host

    @cached_property
    def faust_broker(self) -> str:
        """``host:port,host:port`` as Faust's ``kafka://host:port;host:port`` URL list."""
        hosts = [h.strip() for h in self.kafka_bootstrap.split(",") if h.strip()]
        return ";".join(h if "://" in h else f"kafka://{h}" for h in hosts)

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        """Plain ``host:port`` list for aiokafka clients."""
        return [h.split("://", 1)[-1] for h in self.faust_broker.split(";")]

    @property
    def topic_scan(self) -> str:
        """Internal: scan ticks, one per owned partition (co-partitioned with the input)."""
        return f"{self.app_id}-scan"

    @property
    def topic_feedback_signals(self) -> str:
        """Internal, one partition: every worker's feedback outcomes, for surge detection."""
        return f"{self.app_id}-feedback-signals"

    def alerts(self) -> AlertConfig:
        return AlertConfig(
            cooldown_days=self.alert_cooldown_days,
            churn_min_tier=self.alert_churn_min_tier,
            churn_min_quiet_days=self.alert_churn_min_quiet_days,
            cart_abandon_hours=self.alert_cart_abandon_hours,
            negative_sentiment_max=self.alert_negative_sentiment_max,
            satisfaction_drop_points=self.alert_satisfaction_drop_points,
            satisfaction_max=self.alert_satisfaction_max,
            satisfaction_min_clv=self.alert_satisfaction_min_clv,
        )

    def surge(self) -> SentimentSurge:
        return SentimentSurge(
            window_days=self.surge_window_days,
            baseline_days=self.surge_baseline_days,
            z_threshold=self.surge_z,
            min_count=self.surge_min_feedback,
        )

    def models(self) -> ModelConfig:
        return ModelConfig(
            churn_horizon_days=self.churn_horizon_days,
            snapshot_interval_days=self.snapshot_interval_days,
            churn_tier_medium=self.churn_tier_medium,
            churn_tier_high=self.churn_tier_high,
            segments=self.segments,
            demand_horizon_days=self.demand_horizon_days,
            churn_uses_influence=self.churn_uses_influence,
        )

    @property
    def input_topics(self) -> dict[str, Literal["purchase", "browse", "feedback"]]:
        return {
            self.topic_purchases: "purchase",
            self.topic_browsing: "browse",
            self.topic_feedback: "feedback",
        }


def settings_table() -> str:
    """The README's configuration table, generated from :class:`Settings`."""
    rows = ["| env var | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = default.value if hasattr(default, "value") else default
        rows.append(f"| `CRM_{name.upper()}` | `{shown}` | {info.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
