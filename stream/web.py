"""HTTP endpoints served by the worker: liveness, readiness, Prometheus metrics, and one
customer's state and scores. Nothing here writes anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.features import CustomerState
from schemas.events import ID_MAX_CHARS
from stream.processor import score_record
from stream.topics import partition_for

if TYPE_CHECKING:
    from stream.app import ScorerApp


def is_ready(sa: ScorerApp) -> bool:
    """Ready once the first assignment is recovered and while no rebalance is under way."""
    app = sa.app
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return recovery.completed.is_set() and not app.rebalancing and not recovery.in_recovery


def customer_view(sa: ScorerApp, customer_id: str) -> tuple[int, dict[str, Any]]:
    """(status, body) for ``GET /customers/{id}``: the state and the scores now, or where
    the customer lives when another worker owns the partition."""
    if not 0 < len(customer_id) <= ID_MAX_CHARS:
        return 400, {"error": f"a customer id has 1 to {ID_MAX_CHARS} characters"}
    partition = partition_for(customer_id, sa.input_partitions)
    owned = {
        tp.partition
        for tp in sa.app.assignor.assigned_actives()
        if tp.topic == sa.settings.topic_purchases  # every input topic is co-partitioned
    }
    if partition not in owned:
        changelog = sa.customers.changelog_topic.get_topic_name()
        hosts = [
            str(host)
            for host, topics in sa.app.assignor.table_metadata(changelog).items()
            if partition in topics.get(changelog, ())
        ]
        return 421, {
            "error": "another worker owns this customer",
            "partition": partition,
            "owner": hosts[0] if hosts else None,
        }
    raw = sa.customers.get(customer_id)
    if raw is None:
        return 404, {"error": "unknown customer", "partition": partition}
    state = CustomerState.from_bytes(raw)
    processor = sa.processor
    now_ms = max(processor.clock_ms or state.last_seen_ms, state.last_seen_ms)
    scores = processor.scorer.score_one(state, now_ms)
    record = score_record(state, scores, now_ms, processor.scorer.model_version, None)
    return 200, {
        "partition": partition,
        "state": orjson.loads(raw),
        "score": orjson.loads(record.model_dump_json()),
    }


def register(sa: ScorerApp) -> None:
    app = sa.app

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        ok = is_ready(sa)
        return web.json({"ready": ok}, status=200 if ok else 503)

    @app.page("/customers/{customer_id}")
    async def customer(web: Any, request: Any, customer_id: str) -> Any:
        status, body = customer_view(sa, customer_id)
        return web.json(body, status=status)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
