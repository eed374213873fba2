"""A real worker process on the embedded broker: state, dead letters, alerts, restart."""

from __future__ import annotations

import asyncio
import math
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from stream.app import faust_app, raw_table
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from tests.conftest import StartWorker
from tests.factories import BASE_TS, DAY, browse, feedback, purchase
from tests.kafka import collect, latest_by_customer, send

pytestmark = pytest.mark.broker

ACTIONS = ["view", "search", "add_to_cart", "remove_from_cart", "checkout"]


def make_events(seed: int, customers: int, per_customer: int, prefix: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for c in range(customers):
        customer = f"cust-{c}"
        for i in range(per_customer):
            ts = BASE_TS + rng.randint(0, 200) * DAY + rng.randint(0, DAY)
            eid = f"{prefix}-{c}-{i}"
            kind = rng.random()
            if kind < 0.3:
                amount = round(rng.uniform(-20, 200), 2)
                events.append(purchase(eid, customer, ts, amount, cost=round(amount / 4, 2)))
            elif kind < 0.85:
                events.append(browse(eid, customer, ts, rng.choice(ACTIONS)))
            else:
                extra = {"rating": rng.randint(1, 5)} if rng.random() < 0.7 else {}
                events.append(feedback(eid, customer, ts, rng.choice(["好", "bad", "ok"]), **extra))
    rng.shuffle(events)
    return events


def expected_state(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the events imply per customer, computed independently of models.features."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "purchase_count": 0,
            "refund_count": 0,
            "revenue": 0.0,
            "cost": 0.0,
            "browse_count": 0,
            "cart_adds": 0,
            "feedback_count": 0,
            "ratings": [],
            "first": None,
            "last": None,
        }
    )
    for e in events:
        s = out[e["customer_id"]]
        s["first"] = e["ts"] if s["first"] is None else min(s["first"], e["ts"])
        s["last"] = e["ts"] if s["last"] is None else max(s["last"], e["ts"])
        if e["type"] == "purchase":
            s["revenue"] += e["amount"]
            s["cost"] += e.get("cost", 0.0)
            s["refund_count" if e["amount"] < 0 else "purchase_count"] += 1
        elif e["type"] == "browse":
            s["browse_count"] += 1
            s["cart_adds"] += e["action"] == "add_to_cart"
        else:
            s["feedback_count"] += 1
            if "rating" in e:
                s["ratings"].append(e["rating"])
    return dict(out)


def assert_scores_match(
    latest: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]
) -> None:
    assert set(latest) == set(expected)
    for customer, exp in expected.items():
        got = latest[customer]
        for name in (
            "purchase_count",
            "refund_count",
            "browse_count",
            "cart_adds",
            "feedback_count",
        ):
            assert got[name] == exp[name], (customer, name)
        assert got["revenue"] == pytest.approx(exp["revenue"]), customer
        assert got["cost"] == pytest.approx(exp["cost"]), customer
        assert got["net_value"] == pytest.approx(exp["revenue"] - exp["cost"]), customer
        ratings = exp["ratings"]
        assert got["mean_rating"] == (
            pytest.approx(sum(ratings) / len(ratings)) if ratings else None
        )
        assert got["first_seen"] == _iso(exp["first"]) and got["last_seen"] == _iso(exp["last"])


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def wire(settings: Settings, events: list[dict[str, Any]]) -> list[tuple[str, bytes, bytes]]:
    topic = {kind: name for name, kind in settings.input_topics.items()}
    return [(topic[e["type"]], e["customer_id"].encode(), orjson.dumps(e)) for e in events]


def handled(score: dict[str, Any]) -> int:
    return sum(
        int(score[k]) for k in ("purchase_count", "refund_count", "browse_count", "feedback_count")
    )


def scores_caught_up(expected: dict[str, dict[str, Any]]) -> Callable[[list[Any]], bool]:
    """``collect``'s stop test: every customer's latest score counts all its events.
    It looks only at the records added since its last call (it is called per record: a
    walk of them all each time cost the test machine more CPU than the worker had)."""
    want = {c: handled(e) for c, e in expected.items()}
    behind = set(want)
    seen = 0

    def done(records: list[dict[str, Any]]) -> bool:
        nonlocal seen
        for record in records[seen:]:
            customer = record["customer_id"]
            if customer in want:
                if handled(record) == want[customer]:
                    behind.discard(customer)
                else:
                    behind.add(customer)
        seen = len(records)
        return not behind

    return done


def run_cli(broker: EmbeddedBroker, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_KAFKA_BOOTSTRAP"] = broker.bootstrap
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mixed_batch_state_dead_letters_alerts(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    worker = start_worker(CRM_MAX_MESSAGE_BYTES="2048", CRM_ALERT_COOLDOWN_DAYS="0")
    ready_s = worker.wait_ready()
    print(f"worker startup to ready: {ready_s:.2f}s")
    assert ready_s < 15

    events = make_events(seed=1, customers=20, per_customer=15, prefix="a")
    good = wire(settings, events)
    # A repeated event (producer retry) and a keyless one (lands anywhere, is rerouted).
    good.append(good[0])
    keyless = purchase("keyless-1", "cust-3", BASE_TS + 5 * DAY, 12.5)
    events.append(keyless)
    good.append((settings.topic_purchases, None, orjson.dumps(keyless)))  # type: ignore[arg-type]

    valid_browse = orjson.dumps(browse("x1", "cust-1", BASE_TS, "view"))
    bad = {
        "not_json": b'{"type": "purchase", "event_id": ',
        "invalid": orjson.dumps(
            {"type": "purchase", "event_id": "x", "customer_id": "c", "ts": BASE_TS}
        ),
        "wrong_topic": valid_browse,
        "oversized": orjson.dumps(feedback("x2", "cust-1", BASE_TS, "x" * 3000)),
        "empty": b"",
    }
    bad_utf8 = b'{"type": "purchase", "event_id": "\xff\xfe", "customer_id": "c"}'
    nan_amount = b'{"type":"purchase","event_id":"x3","customer_id":"c","ts":1,"amount":NaN}'
    naive_ts = orjson.dumps(purchase("x4", "c", 0, 1.0) | {"ts": "2011-01-01T00:00:00"})
    malformed = [
        (settings.topic_purchases, b"k", bad["not_json"], "not_json"),
        (settings.topic_purchases, b"c", bad["invalid"], "invalid"),
        (settings.topic_purchases, b"cust-1", bad["wrong_topic"], "wrong_topic"),
        (settings.topic_feedback, b"cust-1", bad["oversized"], "oversized"),
        (settings.topic_browsing, b"k", bad["empty"], "empty"),
        (settings.topic_purchases, b"c", bad_utf8, "not_json"),
        (settings.topic_purchases, b"c", nan_amount, "not_json"),
        (settings.topic_purchases, b"c", naive_ts, "invalid"),
    ]
    messages = good[:100] + [(t, k, v) for t, k, v, _ in malformed] + good[100:]
    send(settings, messages)

    expected = expected_state(events)
    latest = latest_by_customer(collect(settings, "scores", scores_caught_up(expected)))
    assert_scores_match(latest, expected)

    dead = collect(settings, "dead-letters", lambda r: len(r) >= len(malformed), timeout_s=30)
    assert len(dead) == len(malformed)
    by_value = {}
    for record in dead:
        assert record["reason"], record
        assert record["offset"] >= 0 and record["partition"] >= 0
        value = (
            b""
            if record["value_b64"] is None
            else __import__("base64").b64decode(record["value_b64"])
        )
        by_value[(record["topic"], value)] = record["reason_code"]
    for topic, _, value, code in malformed:
        assert by_value[(topic, value)] == code, (topic, value[:40])

    rated_negative = [e for e in events if e["type"] == "feedback" and e.get("rating", 5) <= 2]

    def negative_feedback(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in records if a["kind"] == "negative_feedback"]

    alerts = negative_feedback(
        collect(
            settings,
            "alerts",
            lambda r: len(negative_feedback(r)) >= len(rated_negative),
            timeout_s=30,
        )
    )
    assert sorted(a["event_id"] for a in alerts) == sorted(e["event_id"] for e in rated_negative)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)

    assert worker.proc.poll() is None
    assert worker.get("/health")[0] == 200
    assert worker.get("/ready")[0] == 200
    assert worker.metric("crm_events_total", outcome="dead_lettered") == len(malformed)
    assert worker.metric("crm_events_total", outcome="ok") == len(events)
    assert worker.metric("crm_events_total", outcome="duplicate") == 1
    assert worker.metric("crm_events_total", outcome="rerouted") in (0, 1)
    assert worker.metric("crm_dead_letters_total", reason="oversized") == 1
    # Counted by the events that added a customer (the table is walked once, when ready).
    customers = worker.wait_metric("crm_customers", lambda v: v == len(expected), timeout_s=10)
    assert customers == len(expected)
    # Every applied event was timed; the worker has read all it owns.
    assert worker.metric("crm_processing_seconds_count") == len(events)
    assert worker.metric("crm_worker_info", event_loop="uvloop") == 1  # CRM_EVENT_LOOP's default
    assert worker.metric("crm_event_age_seconds_count") == len(events)
    # Every fetch after the first is timed: the events took at least one.
    assert worker.metric("crm_fetch_round_trip_seconds_count") >= 1
    # The loop-delay probe runs, and nothing here held the loop for seconds.
    delay = worker.buckets("crm_event_loop_delay_seconds")
    assert delay[math.inf] > 0
    assert delay[5.0] == delay[math.inf]
    lag = worker.wait_metric("crm_consumer_lag_messages", lambda v: v == 0, timeout_s=10.0)
    lag_lines = [
        line
        for line in worker.get("/metrics")[1].decode().splitlines()
        if line.startswith("crm_consumer_lag_messages{")
    ]
    assert lag == 0 and len(lag_lines) == 3 * 8  # every owned input partition, caught up

    status, body = worker.get("/customers/cust-1")
    assert status == 200
    view = orjson.loads(body)
    assert view["score"]["purchase_count"] == expected["cust-1"]["purchase_count"]
    assert view["state"]["customer_id"] == "cust-1"
    assert worker.get("/customers/nobody")[0] == 404
    assert worker.get("/customers/" + "x" * 129)[0] == 400

    tailed = run_cli(broker, "tail", "--dead-letters", "--from-beginning", "--max", "8")
    assert tailed.returncode == 0, tailed.stderr
    assert sorted(
        line.split("  ")[1].split(":")[0] for line in tailed.stdout.splitlines()
    ) == sorted(code for *_, code in malformed)


def assert_changelog_offsets_persisted(settings: Settings, data_dir: Path) -> None:
    """Each partition's RocksDB states the last changelog offset it holds (written when
    the sink's batch is stored, stream.tables): a restart on the same disk replays only
    what came after it."""
    changelog = f"{settings.app_id}-customers-changelog"
    ends = asyncio.run(end_offsets(settings, changelog))
    assert sum(ends.values()) > 0
    on_disk = settings.model_copy(update={"table_store": "rocksdb", "data_dir": data_dir})
    app = faust_app(on_disk, len(ends))
    table = raw_table(app, on_disk, "customers", len(ends), "test")
    assert table.changelog_topic.get_topic_name() == changelog
    try:
        persisted = {p: table.data.persisted_offset(TP(changelog, p)) for p in ends}
    finally:  # the next worker opens these databases: release their locks now
        for database in table.data._dbs.values():
            database.close()
    assert persisted == {p: end - 1 if end else None for p, end in ends.items()}


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**settings.kafka_client_options())
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("store", "same_data_dir", "killed"),
    [
        ("memory", True, False),
        ("rocksdb", False, False),
        ("rocksdb", True, False),
        ("rocksdb", True, True),
    ],
    ids=["memory", "rocksdb-new-disk", "rocksdb-same-disk", "rocksdb-same-disk-kill-9"],
)
def test_restarted_worker_recovers_state_from_the_changelog(
    broker: EmbeddedBroker,
    start_worker: StartWorker,
    tmp_path: Any,
    store: str,
    same_data_dir: bool,
    killed: bool,
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    first = start_worker("w1", CRM_TABLE_STORE=store, CRM_DATA_DIR=str(tmp_path / "d1"))
    first.wait_ready()
    batch_a = make_events(seed=2, customers=12, per_customer=10, prefix="a")
    send(settings, wire(settings, batch_a))
    collect(settings, "scores", scores_caught_up(expected_state(batch_a)))
    if killed:
        # RocksDB runs without its write-ahead log (stream/stores.py): the databases are
        # back at their last flush, offsets included, and the changelog replays the rest.
        first.proc.kill()
        first.proc.wait()
    else:
        assert first.stop() == 0
    if store == "rocksdb" and not killed:
        assert_changelog_offsets_persisted(settings, tmp_path / "d1")

    data_dir = tmp_path / ("d1" if same_data_dir else "d2")
    second = start_worker("w2", CRM_TABLE_STORE=store, CRM_DATA_DIR=str(data_dir))
    started = time.monotonic()
    second.wait_ready()
    print(f"restart to ready ({store}): {time.monotonic() - started:.2f}s")
    batch_b = make_events(seed=3, customers=12, per_customer=5, prefix="b")
    events_file = tmp_path / "batch_b.jsonl"
    events_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in batch_b))
    produced = run_cli(broker, "produce", str(events_file))
    assert produced.returncode == 0, produced.stderr
    expected = expected_state(batch_a + batch_b)
    latest = latest_by_customer(collect(settings, "scores", scores_caught_up(expected)))
    assert_scores_match(latest, expected)
    # The new worker processed only batch B: batch A's state came from the changelog.
    assert second.metric("crm_events_total", outcome="ok") == len(batch_b)
    if store == "rocksdb":  # the table really is on disk (RocksDB via rocksdict)
        assert list(data_dir.rglob("CURRENT")), "no RocksDB database under the data dir"
