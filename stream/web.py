"""HTTP endpoints served by the worker: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from stream.app import ScorerApp


def is_ready(sa: ScorerApp) -> bool:
    """Ready once the first assignment is recovered and while no rebalance is under way."""
    app = sa.app
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return recovery.completed.is_set() and not app.rebalancing and not recovery.in_recovery


def register(sa: ScorerApp) -> None:
    app = sa.app

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        ok = is_ready(sa)
        return web.json({"ready": ok}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
