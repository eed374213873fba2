"""Faust's aiokafka transport, with the worker consumer's fetch wait taken from the
settings (``CRM_FETCH_MAX_WAIT_MS``) instead of Faust's fixed 1,500 ms, partitions Faust
does not read paused in aiokafka too (:func:`pause_inactive`), the offsets of what was
processed committed before a rebalance forgets them (:class:`Consumer`), the input topics'
records handled where they are fetched, a batch at a time (:meth:`Conductor.handle`), the
other topics' messages handed over with no task made for each (:class:`EagerWaitFirst`),
and a producer that also sends the worker's record batches (:class:`stream.sink.BatchSink`).

The wait is how long a broker may hold a fetch that found nothing new. Apache Kafka
answers as soon as a record arrives; a broker that holds the fetch for the whole wait
(the embedded Tansu does: p50 of 376 ms from send to fetch at 1,500 ms, 28 ms at 100,
measured at 700 records/s) adds it to every event's latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence, Set
from typing import Any, Protocol, TypeAlias, cast

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from faust.transport.conductor import Conductor as FaustConductor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, TopicT
from faust.types.tuples import ack_lock
from mode.services import Service, WaitArgT, WaitResults
from mode.utils.futures import notify
from mode.utils.times import Seconds

from stream import metrics
from stream.sink import BatchSink
from stream.stores import RocksDBMemory
from stream.topics import hash_keys

log = logging.getLogger(__name__)

#: A fetched Kafka record, as the input topics' handlers get it (:meth:`Conductor.handle`).
Record: TypeAlias = ConsumerRecord[bytes, bytes]


class HandledState(Protocol):
    """The state the input topics' handlers read and write (``stream.tables.
    CustomerTable``), read ahead and written behind :data:`READ_AHEAD_RECORDS` fetched
    records at a time."""

    def read_ahead(self, keys: Iterable[tuple[int, bytes | None]]) -> None:
        """Read the state of these (partition, record key) pairs, to be asked for next."""

    def write_behind(self) -> None:
        """Store what the handlers wrote: the records read ahead are handled."""

    def forget_reads(self, partitions: Iterable[int] | None = None) -> None:
        """Drop what was read ahead (of these partitions; of all by default): its
        records are handled."""


async def store_held(
    app: AppT,
    state: HandledState,
    of_what: object,
    partitions: Iterable[int] | None = None,
) -> bool:
    """Write behind what ``state`` holds and forget what was read ahead (of
    ``partitions``; all by default). A failed write stops the worker, as a failed
    handler does: the state store cannot be trusted with more. The log names what the
    states are of (``of_what`` as text: the records' topics, partitions and offsets),
    and the store keeps the writes held. Returns whether they were stored."""
    try:
        state.write_behind()
    except Exception as exc:
        log.exception("storing the states of %s failed: stopping the worker", of_what)
        await app.crash(exc)
        return False
    finally:
        state.forget_reads(partitions)
    return True


class RecordSpans:
    """``topic[partition]@first-last`` for each partition of some handled records, made
    when logged (a failure's log names them; each batch of records has one).

    >>> from types import SimpleNamespace as Rec
    >>> str(RecordSpans([(TP("t", 1), Rec(offset=9)), (TP("u", 0), Rec(offset=3)),
    ...                  (TP("t", 1), Rec(offset=7))]))
    't[1]@7-9, u[0]@3-3'
    """

    def __init__(self, handled: Sequence[tuple[TP, Any]]) -> None:
        self.handled = handled

    def __str__(self) -> str:
        spans: dict[TP, tuple[int, int]] = {}
        for tp, record in self.handled:
            first, last = spans.get(tp, (record.offset, record.offset))
            spans[tp] = (min(first, record.offset), max(last, record.offset))
        return ", ".join(f"{tp.topic}[{tp.partition}]@{a}-{b}" for tp, (a, b) in spans.items())


def pause_inactive(consumer: AIOKafkaConsumer, active: Set[Any]) -> None:
    """Pause in aiokafka the assigned partitions Faust is not reading (``active``: the
    ones it reads), and resume those it reads again.

    Faust stops reading a partition by leaving it out of the set it asks for: the active
    tables' changelogs once recovered, the input topics while recovering. aiokafka still
    fetches such a partition once, then holds the records nobody takes, and on their
    first arrival waits its prefetch backoff (100 ms) before it fetches from that broker
    again, for every partition: after each changelog partition's first write, every event
    on that broker waited up to 100 ms (docs/benchmarks.md).
    """
    assigned = consumer.assignment()
    paused = consumer.paused()
    stop = [tp for tp in assigned if tp not in active and tp not in paused]
    go = [tp for tp in paused if tp in active]
    if stop:
        consumer.pause(*stop)
    if go:
        consumer.resume(*go)


def time_fetches(consumer: AIOKafkaConsumer) -> None:
    """Observe each fetch round trip of a started consumer in
    ``crm_fetch_round_trip_seconds``: how long the broker took to answer, which a
    consumer-side latency cannot tell apart from the worker's own time.

    aiokafka's fetcher looks its request method up for every fetch, so wrapping it on
    the instance times all fetches but the first (sent as the fetcher starts)."""
    fetcher = consumer._fetcher
    request = fetcher._proc_fetch_request

    async def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await request(*args)
        finally:
            metrics.FETCH_ROUND_TRIP.observe(time.perf_counter() - started)

    fetcher._proc_fetch_request = timed


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands it to its fetcher when the consumer starts, which is next.
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        start = consumer.start

        async def start_timed() -> None:
            await start()
            time_fetches(consumer)

        consumer.start = start_timed
        return consumer

    async def _fetch_records(
        self,
        consumer: AIOKafkaConsumer,
        active_partitions: set[Any] | None,
        timeout: float | None = None,  # noqa: ASYNC109 (the signature Faust calls)
        max_records: int | None = None,
    ) -> Any:
        # In the consumer's thread, as every other call on its aiokafka consumer. None
        # (all partitions) passes through Faust's getmany, though its annotation here
        # says a set.
        if active_partitions is not None:
            pause_inactive(consumer, active_partitions)
        return await super()._fetch_records(
            consumer, cast(set[Any], active_partitions), timeout=timeout, max_records=max_records
        )


class Resumed:
    """Awaitable: a coroutine that was stepped by hand and stopped at ``yielded``, driven
    on from there by whichever task awaits this.

    The awaiting task gets ``yielded`` (the future the coroutine waits on) as if the
    coroutine had yielded it to it, then every value and exception goes to the coroutine.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                try:
                    sent = yield yielded
                except BaseException as exc:  # the task's cancel among them: the coroutine's
                    yielded = coro.throw(exc)
                else:
                    yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class EagerWaitFirst(Service):
    """A mode service whose ``wait_first`` starts the first coroutine itself."""

    async def wait_first(
        self,
        *coros: WaitArgT,
        timeout: Seconds | None = None,  # noqa: ASYNC109 (the signature mode calls)
    ) -> WaitResults:
        """Mode's ``Service.wait_first``, the first coroutine started here: if it
        finishes without waiting, its result, with no task made; if it waits, mode's race
        from there.

        Faust's fetch loop hands each message over through this, racing the hand-over
        against a rebalance's flow stop, and mode makes a task for each of them and for
        the consumer's stopped and crashed events: four tasks a message, 10% of the
        worker's CPU (py-spy, docs/benchmarks.md). The hand-over mostly returns at once:
        an input message is handled there (:meth:`Conductor.handle`), another goes into
        its stream's buffer, and Faust pauses a partition before that fills.
        """
        first, *rest = coros
        if asyncio.iscoroutine(first):
            try:
                yielded = first.send(None)
                # A bare yield (``asyncio.sleep(0)``: the handler lets the loop run once
                # every MAX_HOLD_S) is resumed here after one turn of the loop, not raced
                # in four tasks: that was 2.4% of the worker's samples.
                while yielded is None:
                    try:
                        await asyncio.sleep(0)
                    except BaseException:  # cancelled: none of them will run
                        _close(first, *rest)
                        raise
                    yielded = first.send(None)
            except StopIteration as done:
                _close(*rest)  # the ones raced against, never started
                if self._stopped.is_set() or self._crashed.is_set():
                    return WaitResults([], [], True)
                return WaitResults([first], [done.value], False)
            coros = (cast(WaitArgT, Resumed(first, yielded)), *rest)
        # mode annotates its None default as Seconds.
        return await super().wait_first(*coros, timeout=cast(Seconds, timeout))


def _close(*coros: WaitArgT) -> None:
    for coro in coros:
        if asyncio.iscoroutine(coro):
            coro.close()


class Consumer(EagerWaitFirst, faust_aiokafka.Consumer):
    #: Set once a handler raised: nothing more is handled, the worker is stopping.
    handling_failed = False

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Wait for the events being processed and commit, then let Faust revoke.

        Faust forgets the revoked partitions' acknowledged offsets first, and only then
        waits for its streams and commits them, which commits nothing: everything read
        since the last periodic commit (``CRM_COMMIT_INTERVAL_S``) was read again after
        each rebalance, also on the partitions a worker keeps, since every partition is
        revoked (the "processed twice after rebalancing" of faust-streaming/faust#502).
        The same steps as Faust's, in the order that commits them.
        """
        app = self.app
        if not app.should_stop and self.assignment():
            self.stop_flow()
            app.flow_control.suspend()
            app.flow_control.clear()
            await self.wait_empty()  # commits what was acknowledged, once all is
        await super().on_partitions_revoked(revoked)

    async def _wait_next_records(
        self,
        timeout: float,  # noqa: ASYNC109 (the signature Faust calls)
    ) -> tuple[Any, set[TP] | None]:
        """Faust's fetch, whose records of the topics with a handler
        (:meth:`Conductor.handle`) are handled here, a fetched batch at a time; the
        others go on to Faust's per-message path (its streams, changelog recovery)."""
        records, active = await super()._wait_next_records(timeout)
        conductor = cast(Conductor, self.app.topics)
        handlers, sink = conductor.handlers, conductor.sink
        if records and sink is not None and not self.should_stop:
            mine = {tp: batch for tp, batch in records.items() if tp.topic in handlers}
            if mine:
                records = {tp: batch for tp, batch in records.items() if tp not in mine}
                await self._handle_fetched(mine, active, handlers, sink, conductor.handled_state)
        return records, active

    async def _handle_fetched(
        self,
        records: dict[TP, list[Record]],
        active: set[TP] | None,
        handlers: dict[str, Callable[[Record], None]],
        sink: BatchSink,
        state: HandledState | None,
    ) -> None:
        """Call each record's handler, in Faust's order (round robin over the partitions),
        and acknowledge it, keeping what Faust's path keeps per message: a rebalance's
        flow stop ends the batch (the new assignment reads the rest again), as does a
        failed handler (the worker stops; what was not handled is read again); a gap in
        the offsets is recorded, so commits pass it; ``broker_commit_every`` commits.
        ``state``: read ahead and written behind :data:`READ_AHEAD_RECORDS` at a time.

        Faust's path made a message object, three coroutines and a lock per record, and
        raced the hand-over against the flow stop: 9.5% of the worker's samples, the
        handler's own work left out (py-spy, docs/benchmarks.md)."""
        app = self.app
        flow_control = app.flow_control
        producer_ebb = app.producer.buffer.wait_until_ebb
        generation = app.consumer_generation_id
        read_offset = self._read_offset
        commit_every = self._commit_every
        acking = {tp.topic for tp in records if app.topics.acks_enabled_for(tp.topic)}
        for tp in records:
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        await producer_ebb()
        order = list(self.scheduler.iterate(records))
        held_since = time.perf_counter()
        n = held_from = 0
        try:
            for n, (tp, record) in enumerate(order):
                if state is not None and not n % READ_AHEAD_RECORDS:
                    if not await self._store_held(state, order[held_from:n]):
                        return
                    held_from = n
                    ahead = order[n : n + READ_AHEAD_RECORDS]
                    state.read_ahead((r.partition, r.key) for _, r in ahead)
                    # Handlers check each record's partition against its key's hash.
                    hash_keys(r.key for _, r in ahead)
                if not flow_control.is_active():
                    await flow_control.acquire()
                if (
                    not self.flow_active
                    or app.consumer_generation_id != generation
                    or self.handling_failed
                ):
                    return
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    continue
                offset = record.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # read before a seek back: Faust's path drops it too
                # `last is not None`: Faust's path tests `last`, so a gap right after
                # offset 0 went unrecorded and the partition's commits stopped at 1 for
                # good (a transactional producer's first commit marker is at offset 1).
                if last is not None and offset - last > 1 and tp.topic in acking:
                    await self._add_gap(tp, last + 1, offset)
                try:
                    handlers[tp.topic](record)
                except Exception as exc:
                    log.exception(
                        "handling %s[%d]@%d failed: stopping the worker",
                        record.topic,
                        record.partition,
                        offset,
                    )
                    self.handling_failed = True
                    await app.crash(exc)
                    return
                if tp.topic in acking:
                    self._ack_offset(tp, offset)
                read_offset[tp] = offset
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                if sink.backlog > sink.max_backlog:
                    await sink.ebb()
                    held_since = time.perf_counter()
                elif time.perf_counter() - held_since >= MAX_HOLD_S:
                    await asyncio.sleep(0)
                    await producer_ebb()
                    held_since = time.perf_counter()
        finally:
            # After a failure the worker stops, and the store's stop writes behind.
            if state is not None and not self.handling_failed:
                await self._store_held(state, order[held_from : n + 1])

    async def _store_held(self, state: HandledState, handled: list[tuple[TP, Record]]) -> bool:
        """:func:`store_held`, for these handled records; a failure ends the batch."""
        if await store_held(self.app, state, RecordSpans(handled)):
            return True
        self.handling_failed = True
        return False

    def _ack_offset(self, tp: TP, offset: int) -> None:
        """``Consumer.ack``'s bookkeeping for a record that has no message object: its
        offset may be committed once every one before it is acknowledged too."""
        with ack_lock:
            committed = self._committed_offset[tp]
            if committed is None or offset >= committed:
                acked = self._acked_index[tp]
                if offset not in acked:
                    acked.add(offset)
                    self._acked[tp].append(offset)
                    self._n_acked += 1
            notify(self._waiting_for_ack)


class Producer(faust_aiokafka.Producer):
    """Faust's producer, whose aiokafka producer also takes the sink's batches. Faust
    flushes it before committing offsets and we do at a rebalance: the sink's batches
    are handed over and delivered first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = BatchSink(linger_s=cast(App, self.app).output_linger_s)

    async def on_start(self) -> None:
        await super().on_start()
        app = self.transport.app

        def stop_worker(exc: BaseException) -> None:
            self.add_future(app.crash(exc))

        self.batches.start(self._ensure_producer(), stop_worker)

    async def flush(self) -> None:
        await self.batches.flush()
        await super().flush()

    async def on_stop(self) -> None:
        await self.batches.stop()
        await super().on_stop()


#: Fetched records whose state is read ahead, and then written behind, together: a
#: batch fetched while catching up holds tens of thousands, whose held states took 100
#: MiB more of resident memory; 500 at a time cost no more CPU (docs/benchmarks.md).
READ_AHEAD_RECORDS = 500

#: How long handling fetched messages may hold the event loop before it lets the other
#: tasks run (the sink's sends, timers, the web server).
MAX_HOLD_S = 0.005


class Conductor(FaustConductor):
    """Faust's conductor, where a topic's records can be handled as they are fetched
    (:meth:`handle`) instead of going through a stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.handlers: dict[str, Callable[[Record], None]] = {}
        self.sink: BatchSink | None = None
        self.handled_state: HandledState | None = None
        super().__init__(*args, **kwargs)

    def handle(
        self,
        topic: TopicT,
        handle: Callable[[Record], None],
        sink: BatchSink,
        state: HandledState | None = None,
    ) -> None:
        """Subscribe to ``topic`` and call ``handle`` on each of its records where the
        consumer fetches them (:meth:`Consumer._handle_fetched`): no message object,
        queue, stream, agent nor task in between (the worker did 1.4 times the events a
        second, docs/benchmarks.md). ``sink``: the record batches the handlers append
        to, waited for when too many are not yet handed to the producer. ``state``: what
        the handlers read and write, read ahead and written behind
        :data:`READ_AHEAD_RECORDS` records at a time (:class:`HandledState`); one for
        all the handlers, kept when a later topic's handler gives none.

        Kept from Faust's path: a rebalance holds the records back (flow control), one
        fetched before it is left for the new assignment to read again, and a record
        is acknowledged (its offset may be committed) once handled. Unlike that path, a
        record whose handling raised is not: the worker stops, and it is read again.
        """
        self.add(topic)
        self.handlers[topic.get_topic_name()] = handle
        self.sink = sink
        if state is not None:
            self.handled_state = state


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Conductor = Conductor
    Producer = Producer


class App(faust.App):
    """``faust.App`` on :class:`Transport`, with the worker consumer's fetch wait, and
    the memory its RocksDB tables share (``None`` on the memory store)."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_ms: int,
        output_linger_s: float,
        rocksdb_memory: RocksDBMemory | None,
        **kwargs: Any,
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.output_linger_s = output_linger_s
        self.rocksdb_memory = rocksdb_memory
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)
