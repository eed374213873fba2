"""HTTP endpoints served by the worker: liveness, readiness, Prometheus metrics, one
customer's state and scores, and the models of each owned partition. Nothing here
writes anything."""

from __future__ import annotations

import dataclasses
import hmac
import time
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.features import CustomerState
from models.retention import RetentionModels
from schemas.events import ID_MAX_CHARS
from stream.processor import score_record
from stream.topics import partition_for

if TYPE_CHECKING:
    from stream.agents import Edge
    from stream.app import ScorerApp


def is_ready(sa: ScorerApp) -> bool:
    """Ready once the first assignment is recovered and while no rebalance is under way."""
    app = sa.app
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return recovery.completed.is_set() and not app.rebalancing and not recovery.in_recovery


def authorized(token: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (any request does
    when no token is configured). Compared in constant time.

    >>> authorized("", None), authorized("t0k", "Bearer t0k"), authorized("t0k", "Bearer x")
    (True, True, False)
    """
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def customer_view(edge: Edge, customer_id: str) -> tuple[int, dict[str, Any]]:
    """(status, body) for ``GET /customers/{id}``: the state and the scores now, or where
    the customer lives when another worker owns the partition."""
    sa = edge.sa
    if not 0 < len(customer_id) <= ID_MAX_CHARS:
        return 400, {"error": f"a customer id has 1 to {ID_MAX_CHARS} characters"}
    if not is_ready(sa):
        return 503, {"error": "recovering state; try again"}
    partition = partition_for(customer_id, sa.input_partitions)
    if partition not in edge.owned():
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
    raw = edge.customers.get(customer_id, partition)
    if raw is None:
        return 404, {"error": "unknown customer", "partition": partition}
    state = CustomerState.from_bytes(raw)
    processor = edge.models.get(partition)
    now_ms = max(processor.clock_ms or state.last_seen_ms, state.last_seen_ms)
    scores = processor.scorer.score_one(state, now_ms)
    record = score_record(state, scores, now_ms, processor.scorer.model_version, None)
    return 200, {
        "partition": partition,
        "state": dataclasses.asdict(state),
        "score": orjson.loads(record.model_dump_json()),
    }


def models_view(edge: Edge) -> dict[str, Any]:
    """What each owned partition's models have learned and where their checkpoint is."""
    wall_ms = int(time.time() * 1000)
    partitions: dict[str, Any] = {}
    for partition, processor in sorted(edge.models.processors.items()):
        scorer = processor.scorer
        view: dict[str, Any] = {
            "model_version": scorer.model_version,
            "clock_ms": processor.clock_ms,
        }
        if isinstance(scorer, RetentionModels):
            view["churn_labels_learned"] = scorer.churn.learned
            view["sentiment_texts_learned"] = scorer.sentiment.learned
            view["segments_learned"] = scorer.segments.seen
        checkpoint = edge.models.checkpoints.get(partition)
        view["checkpoint"] = (
            None
            if checkpoint is None
            else {
                "offsets": checkpoint.offsets,
                "written_at_ms": checkpoint.written_at_ms,
                "payload_bytes": checkpoint.payload_bytes,
            }
        )
        view["unsaved_s"] = edge.models.unsaved_s(partition, wall_ms)
        partitions[str(partition)] = view
    return {"partitions": partitions}


def register(edge: Edge) -> None:
    sa = edge.sa
    app = sa.app
    token = sa.settings.web_token.get_secret_value()

    def denied(web: Any, request: Any) -> Any:
        """401 unless the request carries the configured token."""
        if authorized(token, request.headers.get("Authorization")):
            return None
        return web.json(
            {"error": "this endpoint needs Authorization: Bearer <token>"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        ok = is_ready(sa)
        return web.json({"ready": ok}, status=200 if ok else 503)

    if sa.settings.web_customers:

        @app.page("/customers/{customer_id}")
        async def customer(web: Any, request: Any, customer_id: str) -> Any:
            refused = denied(web, request)
            if refused is not None:
                return refused
            status, body = customer_view(edge, customer_id)
            return web.json(body, status=status)

    @app.page("/models")
    async def models(web: Any, request: Any) -> Any:
        return denied(web, request) or web.json(models_view(edge))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
