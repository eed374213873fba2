"""The worker's per-event records (state changelog, scores, alerts, feedback outcomes)
produced in batches: one open record batch per topic partition, appended to without
waiting, handed to the aiokafka producer in order by one task.

Why not Faust's ``send_soon``: it builds a future message, a pending-message entry and
an aiokafka send per record, about 190 us on the benchmark machine (docs/benchmarks.md:
the framework's floor with and without one record per event). Appending to a batch
costs about 2 us.

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
from collections.abc import Callable
from typing import Any

from stream import metrics
from stream.topics import partition_for

log = logging.getLogger(__name__)

#: Called with (partition, offset of the batch's last record) once a batch is stored.
Delivered = Callable[[int, int], None]

#: Records appended and not yet handed to the producer, above which the agents wait.
MAX_BACKLOG = 2_000


class BatchSink:
    """Record batches per topic partition, handed over in the order they were filled.

    The producer is aiokafka's (``create_batch`` and ``send_batch``). Each topic partition
    with records waiting has one task handing its batches over, one at a time: aiokafka
    takes a partition's next batch once the last one left, and a task per partition
    keeps one slow partition from holding back the others.
    """

    def __init__(self, max_backlog: int = MAX_BACKLOG, linger_s: float = 0.0) -> None:
        self.max_backlog = max_backlog
        #: How long appended records wait for more before they are handed over.
        self.linger_s = linger_s
        self._producer: Any = None
        #: Per (topic, partition): batches not yet handed over, the open one last.
        self._queued: dict[tuple[str, int], deque[Any]] = {}
        #: The task handing each partition's batches over, while it has any; and for a
        #: topic whose partition count is being looked up, the task that looks (-1).
        self._hand_overs: dict[tuple[str, int], asyncio.Task[None]] = {}
        #: Partition counts of the topics appended to by key; records held until known.
        self._partition_counts: dict[str, int] = {}
        self._unresolved: dict[str, list[tuple[str, bytes | None]]] = {}
        self._backlog = 0
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._on_delivered: dict[str, Delivered] = {}
        self._on_failure: Callable[[BaseException], object] | None = None
        self.failure: BaseException | None = None
        self._ebbed = asyncio.Event()
        self._hurry = asyncio.Event()  # a flush: no lingering

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

    def append_keyed(self, topic: str, key: str, value: bytes | None) -> None:
        """Append to the partition Kafka's default partitioner picks for ``key``."""
        count = self._partition_counts.get(topic)
        if count is None:
            if self._producer is None:
                raise RuntimeError("the record sink is not started (or stopped)")
            known = self._producer.client.cluster.partitions_for_topic(topic)
            if not known or topic in self._unresolved:
                self._resolve_later(topic, key, value)
                return
            count = self._partition_counts[topic] = len(known)
        self.append(topic, partition_for(key, count), key.encode(), value)

    def _resolve_later(self, topic: str, key: str, value: bytes | None) -> None:
        """Hold a record until the topic's partition count is known, in order with the
        others held for it. The producer's metadata keeps only the topics it has sent
        to (aiokafka refreshes just those), so a topic first used late may be missing."""
        held = self._unresolved.get(topic)
        if held is None:
            held = self._unresolved[topic] = []
            self._hand_overs[(topic, -1)] = asyncio.get_running_loop().create_task(
                self._resolve(topic)
            )
        held.append((key, value))
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
            for key, value in held:
                self.append_keyed(topic, key, value)
        finally:
            del self._hand_overs[(topic, -1)]

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        if self._producer is None:
            raise RuntimeError("the record sink is not started (or stopped)")
        if self.failure is not None:
            raise RuntimeError("a batch could not be delivered: the worker stops") from (
                self.failure
            )
        queue = self._queued.get((topic, partition))
        if queue is None:
            queue = self._queued[(topic, partition)] = deque()
        if not queue or queue[-1].closed():
            queue.append(self._producer.create_batch())
        if queue[-1].append(timestamp=None, key=key, value=value, headers=[]) is None:
            queue.append(self._producer.create_batch())  # full: a new one (a first record
            queue[-1].append(timestamp=None, key=key, value=value, headers=[])  # always fits)
        self._backlog += 1
        if (topic, partition) not in self._hand_overs:
            self._hand_overs[(topic, partition)] = asyncio.get_running_loop().create_task(
                self._hand_over(topic, partition, queue)
            )

    async def ebb(self) -> None:
        """Wait until the backlog is down to its limit (the producer keeps up again)."""
        while self._backlog > self.max_backlog and self.failure is None:
            self._ebbed.clear()  # set again by the next batch handed over (or a failure)
            await self._ebbed.wait()

    async def flush(self) -> None:
        """Hand every batch over and wait until the broker stored them all; raise if one
        could not be delivered."""
        self._hurry.set()
        try:
            while self._hand_overs:
                await asyncio.wait(list(self._hand_overs.values()))
        finally:
            self._hurry.clear()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        if self.failure is not None:
            raise RuntimeError("a batch could not be delivered") from self.failure

    async def _hand_over(self, topic: str, partition: int, queue: deque[Any]) -> None:
        """Hand the partition's batches over in order, after lingering for more records;
        those appended meanwhile go to new batches, handed over after these."""
        try:
            if self.linger_s and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self.linger_s)
            while queue:
                batch = queue.popleft()
                batch.close()
                records = batch.record_count()
                try:
                    future = await self._producer.send_batch(batch, topic, partition=partition)
                except Exception as exc:  # the producer is closed, or stuck past its timeout
                    self._failed(exc, topic, partition, records)
                    return
                self._backlog -= records
                if self._backlog <= self.max_backlog:
                    self._ebbed.set()
                self._in_flight.add(future)
                future.add_done_callback(self._delivery(topic, partition, records))
                metrics.OUTPUT_BATCH_RECORDS.observe(records)
        finally:
            del self._hand_overs[(topic, partition)]

    def _failed(self, exc: BaseException, topic: str, partition: int, records: int) -> None:
        first = self.failure is None
        self.failure = self.failure or exc
        self._ebbed.set()
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
        self, topic: str, partition: int, records: int
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

        return delivered
