"""Crash (50,000 events in flight) and rebalance (10,000): every customer's counts and
totals are exactly what the input implies (at-least-once delivery plus idempotent
handling by offset and event id), and no alert is published twice.

The crash test takes about 100 s here (the new worker catches up with 40,000 events)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from stream.broker import EmbeddedBroker
from stream.settings import Settings
from stream.topics import partition_for
from stream.workerproc import WorkerProcess
from tests.conftest import StartWorker
from tests.kafka import collect, group_offsets, latest_by_customer, send
from tests.test_stream.test_worker import (
    assert_scores_match,
    expected_state,
    handled,
    make_events,
    scores_caught_up,
    wire,
)

pytestmark = pytest.mark.broker

EVENTS = 50_000
REBALANCE_EVENTS = 10_000


def wait_for_processed(worker: WorkerProcess, at_least: float, timeout_s: float = 120) -> float:
    """Poll the worker's counter until it reached ``at_least`` applied events."""
    done = worker.wait_metric("crm_events_total", lambda v: v >= at_least, timeout_s, outcome="ok")
    if done < at_least:
        raise TimeoutError(f"worker applied fewer than {at_least} events in {timeout_s}s")
    return done


def assert_exact(
    settings: Settings,
    events: list[dict[str, Any]],
    workers: list[WorkerProcess],
    deadline_s: float,
) -> None:
    expected = expected_state(events)
    # A deadline, not a wait: collecting ends once every customer's score caught up, and
    # the assertion below is about exactness, not speed (about 80 s here). It is shorter
    # than the test's timeout, so that a run that never catches up says why.
    caught_up = scores_caught_up(expected)
    latest = latest_by_customer(collect(settings, "scores", caught_up, timeout_s=deadline_s))
    assert caught_up([]), not_caught_up(settings, events, expected, latest, workers)
    assert_scores_match(latest, expected)


def not_caught_up(
    settings: Settings,
    events: list[dict[str, Any]],
    expected: dict[str, dict[str, Any]],
    latest: dict[str, dict[str, Any]],
    workers: list[WorkerProcess],
) -> str:
    """Why the scores did not catch up: events missing per input partition against the
    group's committed offsets, and whether each worker still runs, with its log's end."""
    missing: Counter[int] = Counter()
    for customer, exp in expected.items():
        partition = partition_for(customer, settings.topic_partitions)
        got = handled(latest[customer]) if customer in latest else 0
        missing[partition] += handled(exp) - got
    sent = Counter(
        f"{topic}/{partition_for(key.decode(), settings.topic_partitions)}"
        for topic, key, _ in wire(settings, events)
    )
    try:
        committed: object = group_offsets(settings)
    except Exception as exc:  # the report must not hide the failure it reports
        committed = repr(exc)
    lines = [
        f"events missing from the latest scores, by partition: {dict(sorted(missing.items()))}",
        f"events sent: {dict(sorted(sent.items()))}",
        f"the group's committed offsets: {committed}",
    ]
    for worker in workers:
        state = "running" if worker.proc.poll() is None else f"exited {worker.proc.returncode}"
        tail = worker.log_path.read_text(errors="replace").splitlines()[-30:]
        lines += [f"{worker.log_path.name}: {state}", *tail]
    return "\n".join(lines)


def assert_no_alert_twice(settings: Settings) -> int:
    alerts = collect(settings, "alerts", lambda r: False, timeout_s=5)
    twice = [a for a, n in Counter(a["alert_id"] for a in alerts).items() if n > 1]
    assert not twice, f"{len(twice)} alerts published more than once"
    return len(alerts)


def partly_applied(
    settings: Settings,
    start_worker: StartWorker,
    seed: int,
    count: int,
    prefix: str,
    held_back: int = 0,
    share: float = 0.2,
    **env: str,
) -> tuple[WorkerProcess, list[dict[str, Any]], float, list[tuple[str, bytes, bytes]]]:
    """A worker (with ``env``) with ``count`` events made and all but the last
    ``held_back`` sent to it, once it applied ``share`` of those sent; the records held
    back are returned, unsent."""
    worker = start_worker("w1", **env)
    worker.wait_ready()
    events = make_events(seed=seed, customers=count // 100, per_customer=100, prefix=prefix)
    records = wire(settings, events)
    sent, rest = records[: count - held_back], records[count - held_back :]
    send(settings, sent)
    return worker, events, wait_for_processed(worker, int(len(sent) * share)), rest


@pytest.mark.timeout(900)  # the collect deadline (600 s) and the workers' starts
def test_kill_9_with_events_in_flight_loses_and_doubles_nothing(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    # Offsets committed by count only (Faust's every 10,000 acknowledged), and the kill
    # at a quarter, between two such commits: what the worker applied since the last one
    # is in its flushed state but not committed, so it comes again and must be
    # recognised. (Killed at a fifth, 10,000, one CI run had nothing in that window.)
    first, events, applied, _ = partly_applied(
        settings, start_worker, 21, EVENTS, "k", share=0.25, CRM_COMMIT_INTERVAL_S="3600"
    )
    first.proc.kill()  # SIGKILL: no flush, no commit, no goodbye
    first.proc.wait()
    second = start_worker("w2")
    second.wait_ready()
    assert_exact(settings, events, [second], deadline_s=600)
    redone = second.metric("crm_events_total", outcome="ok")
    duplicates = second.metric("crm_events_total", outcome="duplicate")
    alerts = assert_no_alert_twice(settings)
    print(
        f"\nkilled after {applied:,.0f} applied; the new worker applied {redone:,.0f} and "
        f"recognised {duplicates:,.0f} redelivered; {alerts:,} alerts, none twice"
    )
    # The counters cannot add up to EVENTS: ``applied`` was read before the kill, and
    # the last events the first worker applied may have died with it, unflushed (the
    # new worker applies them again, rightly). Exactness is what assert_exact checked;
    # here: the kill left work to redo, and redelivered events already in the recovered
    # state were recognised, not applied twice.
    assert redone > 0 and duplicates > 0


def test_a_worker_joining_and_leaving_mid_stream_loses_and_doubles_nothing(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    first, events, _, second_half = partly_applied(
        settings, start_worker, 22, REBALANCE_EVENTS, "r", held_back=REBALANCE_EVENTS // 2
    )
    second = start_worker("w2")
    second.wait_ready(timeout_s=120)
    # The second half only now, so the joiner has its partitions' share of it to apply
    # however fast the first worker went. With all 10,000 sent at once, the first worker
    # had applied all but 379 when the joiner got its partitions (the joiner then never
    # reached 500: 11 of 17 runs here failed so on 2026-12-05, with or without the
    # changes of that day).
    send(settings, second_half)
    joined = wait_for_processed(second, 500)
    # The partitions' models moved with them: the joiner restored the first worker's
    # checkpoints, written as the rebalance revoked them.
    assert second.metric("crm_model_restores_total", outcome="restored") >= 1
    assert second.metric("crm_model_messages_unlearned_total") == 0
    restored_before = first.metric("crm_model_restores_total", outcome="restored")
    second_duplicates = second.metric("crm_events_total", outcome="duplicate")
    assert second.stop() == 0  # leaves: its partitions go back to the first worker
    assert_exact(settings, events, [first, second], deadline_s=150)
    # The restore follows the partitions' return (a rebalance, then recovery), which the
    # outputs need not wait for: the joiner may have applied every event before leaving.
    restored = first.wait_metric(
        "crm_model_restores_total", lambda v: v > restored_before, 120, outcome="restored"
    )
    assert restored > restored_before
    # Handed over gracefully both ways: the models resumed exactly where their
    # checkpoints ended, with no message unlearned.
    assert first.metric("crm_model_messages_unlearned_total") == 0
    # The first worker committed what it had applied before the join's rebalance let its
    # partitions go: the joiner read none of it again (before the commit was moved ahead
    # of Faust's, 240-1,434 events here). The first worker's own count is not asserted:
    # Faust's commits can still stop at a gap in its acknowledgements (docs/operations.md).
    assert second_duplicates == 0
    alerts = assert_no_alert_twice(settings)
    print(f"\nthe second worker applied {joined:,.0f}+ events before leaving; {alerts:,} alerts")
