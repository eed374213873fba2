"""Faust's changelog recovery, taking every changelog record the queue holds at each
wake-up instead of one per pass of the event loop.

Faust's loop (``faust.tables.recovery.Recovery._slurp_changelogs``) waits for each
record with ``asyncio.wait_for`` (a timer, a future and a pass of the event loop per
record) and, after each, asks whether recovery is over by walking every active
partition's highwater and offset into a ``Counter``. A new worker restoring 94,909
customers' state (300,000 changelog records) spent a quarter of its time there
(docs/benchmarks.md). Here the wait is once per wake-up, the records already queued
are applied in the same pass, and whether recovery is over is asked once per pass, after
them; a record is applied as in Faust's loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.tables import manager, recovery
from faust.types import TP, EventT
from faust.utils.tracing import finish_span
from mode import Service

log = logging.getLogger(__name__)

#: Seconds a pass may apply queued records before it lets the event loop run (the
#: fetch loop that fills the queue, timers, the web server).
MAX_PASS_S = 0.005
#: Seconds Faust's loop waits for a record before it asks whether recovery is over.
IDLE_CHECK_S = 5.0


class Recovery(recovery.Recovery):
    """Faust's recovery service, with :meth:`_slurp_changelogs` applying records in
    passes; everything else (highwaters, seeks, buffers, standbys) is Faust's."""

    @Service.task
    async def _slurp_changelogs(self) -> None:
        queue = self.tables.changelog_queue
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                try:
                    event: EventT[Any] = await asyncio.wait_for(queue.get(), timeout=IDLE_CHECK_S)
                except TimeoutError:
                    if self.should_stop:
                        return
                    # Faust also looks for aborted transactions here; this app has none
                    # (its processing guarantee is at-least-once).
                    self._end_if_recovered()
                    continue
                pass_ends = time.perf_counter() + MAX_PASS_S
                await self._apply(event)
                while not queue.empty() and time.perf_counter() < pass_ends:
                    await self._apply(queue.get_nowait())
                self._end_if_recovered()
                if not (self._standbys_span is None and self.tables.standbys_ready) and not (
                    self.standby_remaining_total()
                ):
                    if self._standbys_span is not None:
                        finish_span(self._standbys_span)
                        self._standbys_span = None
                    self.tables.on_standbys_ready()
            except Exception as exc:  # as Faust's loop: a record's error must not end recovery
                log.warning("Error in recovery %r", exc)

    async def _apply(self, event: EventT[Any]) -> None:
        """One changelog record, as Faust's loop applies it: buffered for its table (a
        buffer is written to the store when full), and its offset taken as seen."""
        message = event.message
        tp: TP = message.tp
        offset = message.offset
        now = time.monotonic()
        active = tp in self.active_tps
        if not active and tp not in self.standby_tps:
            # Faust's loop logs this and then applies the record to the previous record's
            # table (its own comment calls that a bug); it is skipped here.
            log.warning("recovery: a record of %s, neither active nor standby, skipped", tp)
            return
        table = self.tp_to_table[tp]
        offsets = self.active_offsets if active else self.standby_offsets
        size = self.buffer_sizes.get(tp)
        if size is None:
            size = self.buffer_sizes[tp] = (
                table.recovery_buffer_size if active else table.standby_buffer_size
            )
            if not active:  # as Faust's loop: a standby's first record only
                self._standby_events_received_at[tp] = now
        if active:
            self._active_events_received_at[tp] = now
        seen = offsets.get(tp)
        if seen is not None and offset <= seen:
            return
        offsets[tp] = offset
        buffer = self.buffers[table]
        buffer.append(event)
        await table.on_changelog_event(event)
        if len(buffer) >= size:
            table.apply_changelog_batch(buffer)
            buffer.clear()
            self._last_flush_at = now
        if active:
            done_at = time.monotonic()
            if self._last_active_event_processed_at is not None:
                times = self._processing_times
                times.append(done_at - self._last_active_event_processed_at)
                if len(times) > self.num_samples_required_for_estimate:
                    times.popleft()
            self._last_active_event_processed_at = done_at

    def _end_if_recovered(self) -> None:
        """Faust's end of recovery: once no active partition has records left to read,
        the buffers are written and the waiting starts go on."""
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            self.signal_recovery_end.set()


class TableManager(manager.TableManager):
    """Faust's table manager, recovering with :class:`Recovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery  # type: ignore[return-value]
