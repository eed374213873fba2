"""The worker's consumer fetches with the configured wait, not Faust's fixed 1,500 ms,
does not fetch the partitions Faust is not reading, hands a fetched message over without
a task when it can, and stops on a message whose handling fails, leaving it to be read
again."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from mode.services import WaitResults
from mode.utils.locks import Event

from stream.app import build_app
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.topics import create_topics, partition_for
from stream.transport import Consumer, EagerWaitFirst, pause_inactive
from stream.workerproc import WorkerProcess
from tests.conftest import StartWorker
from tests.factories import BASE_TS, DAY, browse, feedback, purchase
from tests.kafka import (
    collect,
    group_offsets,
    latest_by_customer,
    send,
    send_with_offset_gaps,
)


@pytest.mark.broker
def test_worker_consumer_fetches_with_the_configured_wait(broker: EmbeddedBroker) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, fetch_max_wait_ms=37)

    async def started_fetch_wait() -> int:
        app = build_app(settings, 2).app
        thread = cast(Consumer, app.consumer)._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(started_fetch_wait()) == 37


@pytest.mark.broker
def test_a_partition_faust_is_not_reading_is_not_fetched(broker: EmbeddedBroker) -> None:
    """aiokafka fetches every assigned partition, and holds what nobody takes: the first
    time, it waits 100 ms before fetching again (docs/benchmarks.md). Paused, the unread
    partition is left alone, and read again once resumed."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    read, unread = TopicPartition("read-or-not", 0), TopicPartition("read-or-not", 1)

    async def highwater_of_unread(pause: bool) -> tuple[int | None, list[bytes]]:
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            consumer.assign([read, unread])
            if pause:  # before the fetcher's first round: nothing awaited since assign()
                pause_inactive(consumer, {read})
            async with asyncio.timeout(30):
                while not (await consumer.getmany(read, timeout_ms=1000)).get(read):
                    pass
            highwater = consumer.highwater(unread)
            pause_inactive(consumer, {read, unread})
            async with asyncio.timeout(30):
                while not (batch := (await consumer.getmany(unread, timeout_ms=1000)).get(unread)):
                    pass
            return highwater, [message.value for message in batch]
        finally:
            await consumer.stop()

    async def run() -> tuple[tuple[int | None, list[bytes]], tuple[int | None, list[bytes]]]:
        await create_topics(settings, NewTopic(read.topic, 2, 1))
        producer = AIOKafkaProducer(**settings.kafka_client_options())
        await producer.start()
        try:
            await producer.send_and_wait(unread.topic, b"unread", partition=unread.partition)
            await producer.send_and_wait(read.topic, b"read", partition=read.partition)
        finally:
            await producer.stop()
        return await highwater_of_unread(pause=False), await highwater_of_unread(pause=True)

    unpaused, paused = asyncio.run(run())
    # Unpaused, aiokafka fetched the unread partition along with the read one.
    assert unpaused == (1, [b"unread"])
    # Paused, it did not; resumed, its record comes.
    assert paused == (None, [b"unread"])


class Waiter(EagerWaitFirst):
    """A bare mode service with the consumer's ``wait_first``."""


def test_a_coroutine_that_finishes_at_once_runs_in_the_callers_task() -> None:
    async def run() -> tuple[WaitResults, int]:
        ran_in: list[asyncio.Task[object] | None] = []

        async def hand_over() -> int:
            ran_in.append(asyncio.current_task())
            return 42

        before = len(asyncio.all_tasks())
        flow_stopped = Event()
        results = await Waiter().wait_first(hand_over(), flow_stopped)
        assert ran_in == [asyncio.current_task()]
        return results, len(asyncio.all_tasks()) - before

    results, new_tasks = asyncio.run(run())
    assert results.results == [42]
    assert not results.stopped
    assert new_tasks == 0


def test_a_coroutine_that_waits_is_driven_on_to_its_result() -> None:
    async def run() -> tuple[WaitResults, list[str]]:
        loop = asyncio.get_running_loop()
        steps: list[str] = []
        ready: asyncio.Future[str] = loop.create_future()

        async def hand_over() -> str:
            steps.append("started")
            got = await ready
            steps.append(got)
            await asyncio.sleep(0)
            return got.upper()

        loop.call_soon(ready.set_result, "taken")
        results = await Waiter().wait_first(hand_over(), Event())
        return results, steps

    results, steps = asyncio.run(run())
    assert steps == ["started", "taken"]
    assert results.results == ["TAKEN"]
    assert not results.stopped


def test_a_coroutine_that_lets_the_loop_run_once_stays_in_the_callers_task() -> None:
    """``asyncio.sleep(0)``, as the handler does every MAX_HOLD_S: the loop runs the
    other callbacks, then the coroutine goes on with no task made for it."""

    async def run() -> tuple[WaitResults, list[str], int]:
        loop = asyncio.get_running_loop()
        steps: list[str] = []

        async def hand_over() -> int:
            for turn in range(3):
                loop.call_soon(steps.append, f"other {turn}")
                await asyncio.sleep(0)
                steps.append(f"resumed in the caller's task: {asyncio.current_task() is caller}")
            return 7

        caller = asyncio.current_task()
        before = len(asyncio.all_tasks())
        results = await Waiter().wait_first(hand_over(), Event())
        return results, steps, len(asyncio.all_tasks()) - before

    results, steps, new_tasks = asyncio.run(run())
    assert results == WaitResults([results.done[0]], [7], False)
    resumed = "resumed in the caller's task: True"
    assert steps == ["other 0", resumed, "other 1", resumed, "other 2", resumed]
    assert new_tasks == 0


def test_a_coroutine_letting_the_loop_run_is_closed_when_the_caller_is_cancelled() -> None:
    async def run() -> list[str]:
        steps: list[str] = []
        flow_stopped = Event()

        async def hand_over() -> None:
            try:
                await asyncio.sleep(0)
                steps.append("resumed")
            finally:
                steps.append("closed")

        raced = flow_stopped.wait()
        task = asyncio.ensure_future(Waiter().wait_first(hand_over(), raced))
        await asyncio.sleep(0)  # the task starts the coroutine, which yields
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert inspect.getcoroutinestate(raced) == inspect.CORO_CLOSED  # never to run
        return steps

    assert asyncio.run(run()) == ["closed"]


def test_a_coroutine_still_waiting_when_the_flow_stops_is_cancelled() -> None:
    async def run() -> tuple[WaitResults, list[str]]:
        loop = asyncio.get_running_loop()
        steps: list[str] = []
        flow_stopped = Event()

        async def hand_over() -> None:
            steps.append("started")
            try:
                await loop.create_future()  # a full buffer that never drains
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        loop.call_soon(flow_stopped.set)
        results = await Waiter().wait_first(hand_over(), flow_stopped)
        await asyncio.sleep(0)  # the cancel reaches the coroutine on its task's next step
        return results, steps

    results, steps = asyncio.run(run())
    assert steps == ["started", "cancelled"]
    assert results.results == [True]  # the flow event's wait, the winner
    assert not results.stopped


@pytest.mark.parametrize("waits_first", [False, True])
def test_an_error_in_the_coroutine_reaches_the_caller(waits_first: bool) -> None:
    async def run() -> None:
        async def hand_over() -> None:
            if waits_first:
                await asyncio.sleep(0)
            raise ValueError("undecodable")

        await Waiter().wait_first(hand_over(), Event())

    with pytest.raises(ValueError, match="undecodable"):
        asyncio.run(run())


def test_a_stopped_service_says_so_as_mode_does() -> None:
    async def run() -> WaitResults:
        async def hand_over() -> int:
            return 1

        waiter = Waiter()
        waiter._stopped.set()
        return await waiter.wait_first(hand_over(), Event())

    assert asyncio.run(run()) == WaitResults([], [], True)


def start_failing(
    start_worker: StartWorker, tmp_path: Path, sitecustomize: str, **env: str
) -> WorkerProcess:
    """A worker named "failing" whose interpreter loads ``sitecustomize`` first, ready."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(sitecustomize)
    failing = start_worker("failing", PYTHONPATH=str(inject), **env)
    failing.wait_ready()
    return failing


#: Loaded by the worker's interpreter at start (``sitecustomize``): handling a message
#: that says "poison" fails, as a state store or a broken publish would.
FAIL_ON_POISON = """
import stream.agents

handle = stream.agents.TopicHandler.handle


def failing(self, message):
    if message.value and b"poison" in message.value:
        raise RuntimeError("injected failure")
    handle(self, message)


stream.agents.TopicHandler.handle = failing
"""


@pytest.mark.broker
def test_a_message_whose_handling_fails_stops_the_worker_and_is_read_again(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failing = start_failing(start_worker, tmp_path, FAIL_ON_POISON)
    poison = feedback("poison-1", "cust-1", BASE_TS + DAY, "poison", rating=2)
    send(
        settings,
        [
            (
                settings.topic_purchases,
                b"cust-1",
                orjson.dumps(purchase("p1", "cust-1", BASE_TS, 9.5)),
            ),
            (settings.topic_feedback, b"cust-1", orjson.dumps(poison)),
        ],
    )
    assert failing.proc.wait(timeout=60) != 0
    log = failing.log_path.read_text(errors="replace")
    partition = partition_for("cust-1", settings.topic_partitions)
    assert f"handling {settings.topic_feedback}[{partition}]@0 failed: stopping the worker" in log
    assert group_offsets(settings)[f"{settings.topic_feedback}/{partition}"] in (None, 0)

    start_worker("w2").wait_ready()

    def both_applied(scores: list[dict[str, Any]]) -> bool:
        # Both counts: the new worker may read the two topics in either order.
        latest = latest_by_customer(scores).get("cust-1", {})
        return latest.get("feedback_count") == 1 and latest.get("purchase_count") == 1

    scores = collect(settings, "scores", both_applied)
    assert both_applied(scores), latest_by_customer(scores).get("cust-1")


#: Loaded by the worker's interpreter (``sitecustomize``): the RocksDB database a
#: "poison" customer's state is written to closes, so its write batch fails as a
#: failing database's would (rocksdict's DbClosedError).
CLOSE_ON_POISON = """
import stream.stores

write = stream.stores.RocksDBStore.write


def closing(self, key, value, partition):
    write(self, key, value, partition)
    if b"poison" in key:
        self._db_for_partition(partition).close()


stream.stores.RocksDBStore.write = closing
"""


@pytest.mark.broker
def test_a_failed_state_write_stops_the_worker_names_the_records_and_loses_nothing(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    """The purchase is handled, its state held, then not stored: whether or not its
    offset was committed on the way out, the next worker counts it exactly once (its
    state recovered from the changelog, or the purchase read again)."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failing = start_failing(start_worker, tmp_path, CLOSE_ON_POISON, CRM_TABLE_STORE="rocksdb")
    first = purchase("p1", "cust-poison", BASE_TS, 9.5)
    send(settings, [(settings.topic_purchases, b"cust-poison", orjson.dumps(first))])
    assert failing.proc.wait(timeout=60) != 0
    log = failing.log_path.read_text(errors="replace")
    partition = partition_for("cust-poison", settings.topic_partitions)
    where = f"{settings.topic_purchases}[{partition}]@0-0"
    assert f"storing the states of {where} failed: stopping the worker" in log

    start_worker("w2").wait_ready()
    second = purchase("p2", "cust-poison", BASE_TS + DAY, 4.5)
    send(settings, [(settings.topic_purchases, b"cust-poison", orjson.dumps(second))])

    def second_scored(scores: list[dict[str, Any]]) -> bool:
        # Any revenue but the first purchase's alone: the score of the second.
        revenue = latest_by_customer(scores).get("cust-poison", {}).get("revenue", 9.5)
        return bool(revenue != 9.5)

    scores = collect(settings, "scores", second_scored)
    latest = latest_by_customer(scores).get("cust-poison", {})
    assert (latest.get("purchase_count"), latest.get("revenue")) == (2, 14.0), latest


#: Loaded by the worker's interpreter: once a scan holds re-scored states, their
#: partition's database closes, so the scan's write fails.
CLOSE_ON_SCAN = """
import stream.agents

rescore = stream.agents.rescore_slice


def closing(edge, processor, partition, customer_ids, at_ms):
    rescore(edge, processor, partition, customer_ids, at_ms)
    store = edge.customers._rocksdb
    if store._pending.get(partition):
        store._db_for_partition(partition).close()


stream.agents.rescore_slice = closing
"""


@pytest.mark.broker
def test_a_scans_failed_state_write_stops_the_worker_and_says_which_scan(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    failing = start_failing(
        start_worker, tmp_path, CLOSE_ON_SCAN, CRM_TABLE_STORE="rocksdb", CRM_WATERMARK_IDLE_S="1"
    )
    # A cart left open, then the event-time clock 200 days on: a scan re-scores it as
    # abandoned, and records the alert in the customer's state.
    cart = browse("c1", "quiet-1", BASE_TS, "add_to_cart")
    later = browse("v1", "zed", BASE_TS + 200 * DAY, "view")
    send(settings, [(settings.topic_browsing, b"quiet-1", orjson.dumps(cart))])
    send(settings, [(settings.topic_browsing, b"zed", orjson.dumps(later))])
    assert failing.proc.wait(timeout=90) != 0
    log = failing.log_path.read_text(errors="replace")
    partition = partition_for("quiet-1", settings.topic_partitions)
    assert re.search(
        rf"storing the states of 1 customers re-scored by the scan of partition {partition} "
        r"at \d+ failed: stopping the worker",
        log,
    ), log[-3000:]


@pytest.mark.broker
def test_offsets_no_record_has_are_committed_past(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    """Compaction and transactional producers' commit markers leave offsets with no
    record. The worker applies the records around such a gap and records it, so its
    commits go past it: from acknowledged offsets alone, a commit stops before a gap,
    and a restart would read all after it again."""
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    start_worker("w1").wait_ready()
    topic = settings.topic_purchases
    partition = partition_for("cust-gap", settings.topic_partitions)
    offsets = [0, 3, 4, 7, 8]  # 1, 2, 5 and 6 hold nothing
    send_with_offset_gaps(
        settings,
        topic,
        partition,
        [
            (o, b"cust-gap", orjson.dumps(purchase(f"p{o}", "cust-gap", BASE_TS + o * DAY, 5.0)))
            for o in offsets
        ],
    )

    def all_applied(scores: list[dict[str, Any]]) -> bool:
        return latest_by_customer(scores).get("cust-gap", {}).get("purchase_count") == 5

    assert all_applied(collect(settings, "scores", all_applied))
    key = f"{topic}/{partition}"
    deadline = time.monotonic() + 30  # commits come every few seconds (Faust's interval)
    committed = group_offsets(settings)[key]
    while committed != offsets[-1] + 1 and time.monotonic() < deadline:
        committed = group_offsets(settings)[key]
    assert committed == offsets[-1] + 1
