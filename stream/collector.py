"""Python's garbage collector in a long-running worker: full collections that scan only
what arrived since the last one.

A full collection walks every object the process tracks, and the models hold millions
of them: over its start and 100,000 events of the workload a worker's 10-14 full
collections took 1.4-2.0 s, about 180 ms each by the end, a pause every event queued
behind it waits out; the 3-4 of them within the 100,000 events, 0.43-0.63 s
(docs/benchmarks.md). Objects that survived a full collection are mostly the models'
and the framework's long-lived state. :class:`SurvivorFreezer` moves them out of the
collector's reach (``gc.freeze``) right after each full collection, when nothing
younger is left in the generations, so the next one scans only newer objects
(``CRM_GC_FREEZE_SURVIVORS``). Either way every collection is timed, by generation
(``crm_gc_pause_seconds``).

Frozen objects are still freed by reference counting; only a cycle among them that
becomes garbage is not collected while they are frozen. So everything is thawed at each
rebalance (models of revoked partitions are dropped) and every :data:`THAW_INTERVAL_S`:
the next full collection scans everything once and freezes what survives again.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import faust

from stream import metrics

#: How long a cycle among frozen objects can stay uncollected: one full scan this often.
THAW_INTERVAL_S = 600.0


class SurvivorFreezer:
    """Times every collection; with ``freeze``, freezes the survivors of each full one.

    >>> freezer = SurvivorFreezer()
    >>> freezer.install()
    >>> _ = gc.collect()
    >>> gc.get_freeze_count() > 0
    True
    >>> freezer.thaw(); gc.get_freeze_count()
    0
    >>> freezer.uninstall()
    """

    def __init__(self, freeze: bool = True) -> None:
        self.freeze = freeze
        self.started = 0.0
        # Each generation's histogram, looked up once: collections come every few events.
        self.pauses = [metrics.GC_PAUSE.labels(str(g)) for g in range(3)]
        #: Full collections whose survivors were frozen.
        self.full_collections = 0

    def install(self) -> None:
        gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        gc.callbacks.remove(self._on_collection)

    def thaw(self) -> None:
        """Back into the collector's reach: the next full collection scans everything."""
        gc.unfreeze()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = info["generation"]
        self.pauses[generation].observe(time.perf_counter() - self.started)
        if generation == 2 and self.freeze:
            # A full collection leaves every survivor in the oldest generation and none
            # younger: frozen now, nothing that has not survived one is frozen.
            gc.freeze()
            self.full_collections += 1


def watch_collections(app: faust.App, freeze: bool) -> SurvivorFreezer:
    """A :class:`SurvivorFreezer` for the worker running ``app``, thawed at each
    rebalance and every :data:`THAW_INTERVAL_S`."""
    freezer = SurvivorFreezer(freeze)
    freezer.install()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def thaw_at_rebalance(sender: Any, *args: Any, **_: Any) -> None:
        freezer.thaw()

    async def thaw_now() -> None:
        freezer.thaw()

    app.timer(interval=THAW_INTERVAL_S)(thaw_now)
    return freezer
