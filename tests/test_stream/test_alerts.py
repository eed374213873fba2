"""A scripted story through a real worker on the embedded broker, across a restart:
exactly the expected alerts, per customer in order, none twice.

The models are warm-started (as an operator would) from a replay of the shipped extract
plus its labelled review texts. The expected alerts come from ``replay`` of the same
story with the same models: the worker must agree with it per customer, and on the
``alert_id`` of every event-triggered alert.
"""

from __future__ import annotations

import copy
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventdata.events import DEMO_DATA, build_events, find
from eventdata.feedback import labelled_texts
from eventdata.retail import read_csv_gz
from models.alerting import AlertConfig, AlertPolicy
from models.features import DAY_MS
from models.retention import RetentionModels
from stream.broker import EmbeddedBroker
from stream.replay import replay_lines, save_models
from stream.settings import Settings
from tests.conftest import StartWorker
from tests.factories import browse, feedback, purchase
from tests.kafka import collect, latest_by_customer, send
from tests.test_stream.test_worker import wire

pytestmark = pytest.mark.broker

T0 = int(datetime(2012, 1, 2, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
NEGATIVE_TEXT = "terrible quality, broke after one day, awful service, very disappointed"


def warm_models() -> RetentionModels:
    result = replay_lines(orjson.dumps(e) for e in build_events(DEMO_DATA))
    models = result.models
    for stem in ("reviews-zh", "sentiment-en"):
        for item in labelled_texts(read_csv_gz(find(DEMO_DATA, stem)), stem):
            if item.label != "neutral":
                models.sentiment.learn_one(item.text, item.label == "positive")
    assert models.churn.ready and models.segments.ready and models.sentiment.ready
    return models


def story() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Phase 1 (first worker), then after the restart: two days later, and 200 days later.

    Until the last step nobody has been quiet for the week a churn alert waits for."""
    one = [
        # alice complains; her second complaint, after the restart, is within the cooldown.
        purchase("a-p1", "alice", T0 - 2 * DAY_MS, 80.0),
        feedback("a-f1", "alice", T0 + HOUR, "broken", rating=1),
        # bob leaves an item in his cart; dave checks his out.
        purchase("b-p1", "bob", T0 - 3 * DAY_MS, 45.0),
        browse("b-c1", "bob", T0 + HOUR, "add_to_cart"),
        browse("d-c1", "dave", T0 + HOUR, "add_to_cart"),
        browse("d-c2", "dave", T0 + HOUR + 5 * 60_000, "checkout"),
        purchase("d-p1", "dave", T0 + HOUR + 6 * 60_000, 30.0),
        # erin writes an unrated text that reads negative.
        purchase("e-p1", "erin", T0 - 5 * DAY_MS, 20.0),
        feedback("e-f1", "erin", T0 + 2 * HOUR, NEGATIVE_TEXT),
    ]
    # carol: a regular, valuable buyer, every 10 days; she goes quiet after T0 - 10 days.
    one += [
        purchase(f"c-p{i}", "carol", T0 - (70 - 10 * i) * DAY_MS, 400.0 + 10 * i) for i in range(7)
    ]
    # Across all customers: a month of happy feedback, then a week of complaints.
    one += [
        feedback(f"s-f{i}", f"happy-{i}", T0 - 35 * DAY_MS + i * 18 * HOUR, "great", rating=5)
        for i in range(35)
    ]
    one += [
        feedback(f"n-f{i}", f"angry-{i}", T0 - 6 * DAY_MS + i * 4 * HOUR, "bad", rating=1)
        for i in range(35)
    ]
    two = [feedback("a-f2", "alice", T0 + 2 * DAY_MS, "still broken", rating=1)]
    # The clock moves on 200 days: the scans find who went quiet.
    three = [browse("z-v1", "zed", T0 + 200 * DAY_MS, "view")]
    return one, two, three


def kinds_by_customer(alerts: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for alert in alerts:
        out[alert["customer_id"] or "*"].append(alert["kind"])
    return dict(out)


def test_a_scripted_story_raises_exactly_the_expected_alerts_across_a_restart(
    broker: EmbeddedBroker, start_worker: StartWorker, tmp_path: Path
) -> None:
    models = warm_models()
    assert models.sentiment.predict_proba(NEGATIVE_TEXT) <= 0.2  # the premise of erin's alert
    save_models(models, tmp_path / "models.pkl")
    one, two, three = story()

    sink = io.BytesIO()
    replayed = replay_lines(
        (orjson.dumps(e) for e in sorted(one + two + three, key=lambda e: e["ts"])),
        models=copy.deepcopy(models),
        policy=AlertPolicy(AlertConfig(churn_min_tier="medium")),
        alerts=sink,
        partitions=Settings().topic_partitions,  # the worker's models are per partition
    )
    expected = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    assert replayed.suppressed == Counter({"negative_feedback": 1})  # alice's second
    want = kinds_by_customer(expected)
    # Feedback first; churn only once they have been quiet (at the 200-day jump).
    assert want["alice"][0] == "negative_feedback" and want["erin"][0] == "negative_feedback"
    assert "negative_feedback" not in want["alice"][1:]  # the second: within the cooldown
    assert want["bob"][0] == "cart_abandonment" and "cart_abandonment" not in want["bob"][1:]
    assert "cart_abandonment" not in want.get("dave", [])
    assert "churn_risk" in want["carol"] and want["*"] == ["sentiment_surge"]
    assert all(want[f"angry-{i}"] == ["negative_feedback"] for i in range(35))

    settings = Settings(kafka_bootstrap=broker.bootstrap)
    env = {
        "CRM_MODELS_PATH": str(tmp_path / "models.pkl"),
        "CRM_WATERMARK_IDLE_S": "1",
        # The extract's model is cautious: carol (7 orders) reaches medium risk, not high.
        "CRM_ALERT_CHURN_MIN_TIER": "medium",
        "CRM_DATA_DIR": str(tmp_path / "data"),
    }
    first = start_worker("w1", **env)
    first.wait_ready()
    send(settings, wire(settings, one))
    customers = {e["customer_id"] for e in one}
    collect(settings, "scores", lambda r: customers <= set(latest_by_customer(r)))
    # No wait for the surge: whichever worker sees the last complaints raises it, from a
    # detector checkpointed at the stop and restored after it.
    assert first.stop() == 0

    second = start_worker("w2", **env)
    second.wait_ready()
    send(settings, wire(settings, two))
    # Two days on, bob's cart is abandoned: wait for that scan before the clock jumps, so
    # that the worker sees the scans in the order replay does.
    collect(settings, "alerts", lambda r: "cart_abandonment" in kinds_by_customer(r).get("bob", []))
    send(settings, wire(settings, three))

    def complete(records: list[dict[str, Any]]) -> bool:
        return sum(len(v) for v in kinds_by_customer(records).values()) >= len(expected)

    got = collect(settings, "alerts", complete, timeout_s=90)
    # Nothing more is coming: the worker has caught up with the story.
    assert second.metric("crm_events_total", outcome="ok") == len(two + three)
    assert len({a["alert_id"] for a in got}) == len(got), "an alert was published twice"
    assert kinds_by_customer(got) == want
    event_ids = {a["alert_id"] for a in expected if a["event_id"]}
    assert event_ids == {a["alert_id"] for a in got if a["event_id"]}
    assert second.metric("crm_alerts_suppressed_total", kind="negative_feedback") == 1
    # Live model quality, from the models' own prequential windows.
    # (The churn AUC is NaN here: after the 200-day jump every recent label is "churned".)
    # One set of models per input partition, each with its own gauges.
    for partition in map(str, range(settings.topic_partitions)):
        assert (
            f'crm_churn_auc_recent{{partition="{partition}"}}' in second.get("/metrics")[1].decode()
        )
        assert 0.6 < second.metric("crm_sentiment_accuracy_recent", partition=partition) <= 1.0
        assert second.metric("crm_segments_inertia_recent", partition=partition) > 0
    # The first worker checkpointed every partition's models as it stopped; the second
    # restored them all, and missed no learning.
    assert second.metric("crm_model_restores_total", outcome="restored") == 8
    assert second.metric("crm_model_messages_unlearned_total") == 0
    for alert in got:
        assert alert["reasons"], alert
        if alert["kind"] == "churn_risk":
            assert alert["churn_tier"] in ("medium", "high") and alert["value_at_risk"]
    [surge] = [a for a in got if a["kind"] == "sentiment_surge"]
    assert surge["scope"] == "global" and surge["window"]["negative_share"] > 0.5


def test_the_global_rate_limit_counts_what_it_holds_back(
    broker: EmbeddedBroker, start_worker: StartWorker
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    worker = start_worker(CRM_ALERT_RATE_PER_S="0.01", CRM_ALERT_BURST="5")
    worker.wait_ready()
    complaints = [
        feedback(f"r-f{i}", f"cust-{i}", T0 + i * 60_000, "bad", rating=1) for i in range(20)
    ]
    send(settings, wire(settings, complaints))
    collect(settings, "scores", lambda r: len(r) >= len(complaints))
    published = collect(settings, "alerts", lambda r: len(r) >= 5, timeout_s=30)
    assert len(published) == 5
    assert worker.metric("crm_alerts_emitted_total", kind="negative_feedback") == 5
    held = worker.metric("crm_alerts_suppressed_total", kind="negative_feedback")
    assert held == 15  # nothing lost silently: 5 published + 15 counted
    # Each published alert timed from its event to the broker's storing it (read above).
    timed = worker.wait_metric(
        "crm_event_to_alert_seconds_count", lambda v: v >= 5, 10, kind="negative_feedback"
    )
    assert timed == 5
