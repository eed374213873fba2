"""10,000 bad messages interleaved with good ones, through a real worker: it never falls
over, every bad message is dead-lettered with its reason, every good one is applied.
Also on the worker's internal topic of feedback outcomes, which it reads as it reads
the input."""

from __future__ import annotations

import base64
import random
from collections import Counter

import orjson
import pytest

from stream.broker import EmbeddedBroker
from stream.settings import Settings
from tests.conftest import StartWorker
from tests.hostile import RANDOM_BYTES_REASONS, hostile_messages
from tests.kafka import collect, latest_by_customer, send
from tests.test_stream.test_worker import (
    assert_scores_match,
    expected_state,
    make_events,
    scores_caught_up,
)

pytestmark = pytest.mark.broker

BAD = 10_000
#: Not feedback outcomes, on the topic the worker writes them to (the surge detector's).
BAD_SIGNALS = (b"", b"not json", b"[1, 2]", b'{"ts": "x", "negative": true}', b'{"negative": 0}')


def test_ten_thousand_hostile_messages_among_good_ones(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    worker = start_worker()
    worker.wait_ready()
    topic: dict[str, str] = {kind: name for name, kind in settings.input_topics.items()}

    good = make_events(seed=5, customers=40, per_customer=50, prefix="g")
    bad = hostile_messages(seed=11, count=BAD)
    messages: list[tuple[str, bytes | None, bytes, tuple[str, str] | None]] = [
        (topic[e["type"]], e["customer_id"].encode(), orjson.dumps(e), None) for e in good
    ]
    messages += [
        (topic[kind], key, value, (name, reason)) for name, kind, key, value, reason in bad
    ]
    signals = settings.topic_feedback_signals
    messages += [(signals, None, value, ("signal", "invalid")) for value in BAD_SIGNALS]
    dead_count = BAD + len(BAD_SIGNALS)
    random.Random(3).shuffle(messages)
    send(settings, [(t, k, v) for t, k, v, _ in messages])

    expected = expected_state(good)
    latest = latest_by_customer(collect(settings, "scores", scores_caught_up(expected), 180))
    assert_scores_match(latest, expected)
    dead = collect(settings, "dead-letters", lambda r: len(r) >= dead_count, timeout_s=180)

    # Every bad message, and only those, with the reason its category calls for.
    want: dict[tuple[str, bytes], set[str]] = {}
    for t, _, value, meta in messages:
        if meta is not None:
            reason = meta[1]
            want[(t, value)] = set(RANDOM_BYTES_REASONS) if reason == "*" else {reason}
    got = Counter((r["topic"], base64.b64decode(r["value_b64"] or "")) for r in dead)
    assert sum(got.values()) == dead_count
    assert got == Counter((t, v) for t, _, v, meta in messages if meta is not None)
    reasons: Counter[str] = Counter()
    for record in dead:
        key = (record["topic"], base64.b64decode(record["value_b64"] or ""))
        assert record["reason_code"] in want[key], (record["reason_code"], key[1][:80])
        assert record["reason"]
        reasons[record["reason_code"]] += 1

    assert worker.proc.poll() is None and worker.get("/health")[0] == 200
    assert worker.metric("crm_events_total", outcome="dead_lettered") == dead_count
    assert worker.metric("crm_events_total", outcome="ok") == len(good)
    assert worker.metric("crm_dead_letters_total") == dead_count
    assert worker.metric("crm_dead_letters_total", topic=signals) == len(BAD_SIGNALS)
    # The log got a sample of the flood, not 10,000 lines.
    logged = worker.log_path.read_text(errors="replace").count("dead-lettered ")
    assert 0 < logged < 1_000
    categories = Counter(name for name, *_ in bad)
    print(f"\n{len(good):,} good events applied; {BAD:,} bad ones dead-lettered")
    print(f"by category: {dict(sorted(categories.items()))}")
    print(f"by reason: {dict(sorted(reasons.items()))}; log lines: {logged}")
