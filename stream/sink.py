"""The worker's per-event records (state changelog, scores, alerts, feedback outcomes)
produced in batches: one open record batch per topic partition, appended to without
waiting, handed to the aiokafka producer in rounds, state first.

Why not Faust's ``send_soon``: it builds a future message, a pending-message entry and
an aiokafka send per record, about 190 us on the benchmark machine (docs/benchmarks.md:
the framework's floor with and without one record per event). Appending to a batch
costs about 2 us.

**State first.** An alert is recorded in the customer's state (cooldowns, what was last
alerted), and a redelivered event is recognised after a crash only if that state
reached the broker. So no output may be stored before the state appended with it: each
round hands over the state batches (``state_topics``) of everything appended so far,
waits until the broker has stored them, and only then hands over the round's scores,
alerts and outcomes. The next round starts meanwhile. This holds across brokers, where
the state and the alert partitions have different leaders.

A record may come with a callback, called once the broker has stored it: the alerts',
which time each one from its event to the broker (``crm_event_to_alert_seconds``).

Delivery stays at-least-once: the worker's producer (``stream.transport.Producer``)
hands every open batch over and waits for all of them before Faust commits offsets
(Faust flushes its producer first), before a rebalance moves partitions, and at
shutdown. A batch that cannot be delivered stops the worker: its records would be
lost, and committing offsets past them would lose the events behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from stream import metrics
from stream.topics import partition_for

log = logging.getLogger(__name__)

#: Called with (partition, offset of the batch's last record) once a batch is stored.
Delivered = Callable[[int, int], None]
#: Called once the record it was appended with is stored.
Stored = Callable[[], None]

#: Records appended and not yet handed to the producer, above which the handlers wait.
MAX_BACKLOG = 2_000

#: Batches per topic partition, the open one last.
Batches = dict[tuple[str, int], deque[Any]]


class BatchSink:
    """Record batches per topic partition, handed over in rounds: a round's state
    batches are stored before its other batches are handed over.

    The producer is aiokafka's (``create_batch`` and ``send_batch``). Within a round the
    partitions are handed over side by side, each partition's batches in order:
    aiokafka takes a partition's next batch once the last one left, so one slow
    partition does not hold back the others.
    """

    def __init__(self, max_backlog: int = MAX_BACKLOG, linger_s: float = 0.0) -> None:
        self.max_backlog = max_backlog
        #: How long the first record of a round waits for more before it is handed over.
        self.linger_s = linger_s
        #: Topics whose batches are stored before the round's others are handed over.
        self.state_topics: set[str] = set()
        self._producer: Any = None
        self._open: Batches = {}  # the next round's batches
        self._opened_at = 0.0  # loop time of the next round's first record
        self._rounds: asyncio.Task[None] | None = None  # runs while anything is open
        self._outputs: asyncio.Task[None] | None = None  # the last round's other batches
        self._taken = 0  # rounds whose batches were taken
        self._handed = 0  # rounds handed over whole (state stored, the rest handed over)
        self._progress = asyncio.Event()  # set when a round is handed over whole
        #: Partition counts of the topics appended to by key; records held until known.
        self._partition_counts: dict[str, int] = {}
        self._unresolved: dict[str, list[tuple[str, bytes | None, Stored | None]]] = {}
        self._lookups: dict[str, asyncio.Task[None]] = {}
        self._backlog = 0
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._on_delivered: dict[str, Delivered] = {}
        #: The ``stored`` callbacks of the records in each open batch (by the batch's id).
        self._stored: dict[int, list[Stored]] = {}
        self._on_failure: Callable[[BaseException], object] | None = None
        self.failure: BaseException | None = None
        self._ebbed = asyncio.Event()
        self._flushing = 0  # flushes waiting
        self._hurry = asyncio.Event()  # set while any flush waits: no lingering

    def start(self, producer: Any, on_failure: Callable[[BaseException], object]) -> None:
        self._producer = producer
        self._on_failure = on_failure

    async def stop(self) -> None:
        """Hand everything over and wait for it; then no more appends are taken."""
        if self._producer is not None:
            # A failed delivery was logged when it failed, and the worker is stopping.
            with contextlib.suppress(RuntimeError):
                await self.flush()
            self._producer = None

    def on_delivered(self, topic: str, callback: Delivered) -> None:
        """Call ``callback`` after each batch of ``topic`` is stored by the broker."""
        self._on_delivered[topic] = callback

    @property
    def backlog(self) -> int:
        """Records appended and not yet handed to the producer."""
        return self._backlog

    def append_keyed(
        self, topic: str, key: str, value: bytes | None, stored: Stored | None = None
    ) -> None:
        """Append to the partition Kafka's default partitioner picks for ``key``;
        ``stored``: called once the broker has stored the record."""
        count = self._partition_counts.get(topic)
        if count is None:
            if self._producer is None:
                raise RuntimeError("the record sink is not started (or stopped)")
            known = self._producer.client.cluster.partitions_for_topic(topic)
            if not known or topic in self._unresolved:
                self._resolve_later(topic, key, value, stored)
                return
            count = self._partition_counts[topic] = len(known)
        self.append(topic, partition_for(key, count), key.encode(), value, stored)

    def _resolve_later(
        self, topic: str, key: str, value: bytes | None, stored: Stored | None
    ) -> None:
        """Hold a record until the topic's partition count is known, in order with the
        others held for it. The producer's metadata keeps only the topics it has sent
        to (aiokafka refreshes just those), so a topic first used late may be missing."""
        if topic in self.state_topics:  # held, it could be stored after its outputs
            raise ValueError(f"state topic {topic!r} is appended to by partition, not key")
        held = self._unresolved.get(topic)
        if held is None:
            held = self._unresolved[topic] = []
            self._lookups[topic] = asyncio.get_running_loop().create_task(self._resolve(topic))
        held.append((key, value, stored))
        self._backlog += 1

    async def _resolve(self, topic: str) -> None:
        try:
            partitions = await self._producer.partitions_for(topic)
        except Exception as exc:  # no such topic, or no metadata within the timeout
            self._failed(exc, topic, -1, len(self._unresolved.get(topic, ())))
            return
        else:
            # Kept for the worker's lifetime: more partitions later would move keys.
            self._partition_counts[topic] = len(partitions)
            held = self._unresolved.pop(topic)
            self._backlog -= len(held)
            for key, value, stored in held:
                self.append_keyed(topic, key, value, stored)
        finally:
            del self._lookups[topic]

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        stored: Stored | None = None,
    ) -> None:
        if self._producer is None:
            raise RuntimeError("the record sink is not started (or stopped)")
        if self.failure is not None:
            raise RuntimeError("a batch could not be delivered: the worker stops") from (
                self.failure
            )
        if not self._open:
            self._opened_at = asyncio.get_running_loop().time()
        queue = self._open.get((topic, partition))
        if queue is None:
            queue = self._open[(topic, partition)] = deque([self._producer.create_batch()])
        if queue[-1].append(timestamp=None, key=key, value=value, headers=[]) is None:
            queue.append(self._producer.create_batch())  # full: a new one (a first record
            queue[-1].append(timestamp=None, key=key, value=value, headers=[])  # always fits)
        if stored is not None:
            self._stored.setdefault(id(queue[-1]), []).append(stored)
        self._backlog += 1
        if self._rounds is None:
            self._rounds = asyncio.get_running_loop().create_task(self._run_rounds())

    async def ebb(self) -> None:
        """Wait until the backlog is down to its limit (the producer keeps up again)."""
        while self._backlog > self.max_backlog and self.failure is None:
            self._ebbed.clear()  # set again by the next batch handed over (or a failure)
            await self._ebbed.wait()

    async def flush(self) -> None:
        """Hand over every record appended so far and wait until the broker stored them
        all; raise if one could not be delivered. Records appended meanwhile are not
        waited for: under load the sink is never empty."""
        self._flushing += 1
        self._hurry.set()
        try:
            if self._lookups:  # their held records go to the open round once looked up
                await asyncio.wait(list(self._lookups.values()))
            target = self._taken + (1 if self._open else 0)
            while self._handed < target and self.failure is None:
                self._progress.clear()  # set again by the next round handed over
                await self._progress.wait()
        finally:
            self._flushing -= 1
            if not self._flushing:
                self._hurry.clear()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        if self.failure is not None:
            raise RuntimeError("a batch could not be delivered") from self.failure

    async def _run_rounds(self) -> None:
        """Rounds while anything is open: linger, take every open batch, hand the state
        over and wait until it is stored, then hand the rest over behind the last
        round's rest (kept in order per partition) and go on."""
        loop = asyncio.get_running_loop()
        try:
            while self._open and self.failure is None:
                wait = self._opened_at + self.linger_s - loop.time()
                if wait > 0 and not self._hurry.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._hurry.wait(), wait)
                batches, self._open = self._open, {}
                self._taken += 1
                state = {tp: q for tp, q in batches.items() if tp[0] in self.state_topics}
                stored = await self._hand_over(state)
                if stored:
                    await asyncio.wait(stored)
                if self.failure is not None:
                    return
                rest = {tp: q for tp, q in batches.items() if tp[0] not in self.state_topics}
                self._outputs = loop.create_task(
                    self._hand_over_after(self._outputs, rest, self._taken)
                )
        finally:
            self._rounds = None

    async def _hand_over_after(
        self, previous: asyncio.Task[None] | None, batches: Batches, round_no: int
    ) -> None:
        if previous is not None:
            await previous
        if self.failure is None:
            await self._hand_over(batches)
            self._handed = round_no
            self._progress.set()

    async def _hand_over(self, batches: Batches) -> list[asyncio.Future[Any]]:
        """Hand the batches over, partitions side by side; their delivery futures."""
        handed = await asyncio.gather(
            *(self._hand_over_partition(topic, p, queue) for (topic, p), queue in batches.items())
        )
        return [future for futures in handed for future in futures]

    async def _hand_over_partition(
        self, topic: str, partition: int, queue: Iterable[Any]
    ) -> list[asyncio.Future[Any]]:
        futures = []
        for batch in queue:
            batch.close()
            records = batch.record_count()
            stored = self._stored.pop(id(batch), ())
            try:
                future = await self._producer.send_batch(batch, topic, partition=partition)
            except Exception as exc:  # the producer is closed, or stuck past its timeout
                self._failed(exc, topic, partition, records)
                break
            self._backlog -= records
            if self._backlog <= self.max_backlog:
                self._ebbed.set()
            self._in_flight.add(future)
            future.add_done_callback(self._delivery(topic, partition, records, stored))
            futures.append(future)
            metrics.OUTPUT_BATCH_RECORDS.observe(records)
        return futures

    def _failed(self, exc: BaseException, topic: str, partition: int, records: int) -> None:
        first = self.failure is None
        self.failure = self.failure or exc
        self._stored.clear()  # the worker stops: what is not handed over yet never will be
        self._ebbed.set()
        self._progress.set()
        log.error(
            "a batch of %d records to %s[%d] was not delivered (%r): the worker stops",
            records,
            topic,
            partition,
            exc,
        )
        if first and self._on_failure is not None:
            self._on_failure(exc)

    def _delivery(
        self, topic: str, partition: int, records: int, stored: Iterable[Stored]
    ) -> Callable[[asyncio.Future[Any]], None]:
        def delivered(future: asyncio.Future[Any]) -> None:
            self._in_flight.discard(future)
            exc = asyncio.CancelledError() if future.cancelled() else future.exception()
            if exc is not None:
                self._failed(exc, topic, partition, records)
                return
            callback = self._on_delivered.get(topic)
            if callback is not None:
                callback(partition, future.result().offset + records - 1)
            for record_stored in stored:
                record_stored()

        return delivered
