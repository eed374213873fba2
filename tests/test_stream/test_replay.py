"""``crm-scorer replay``: its output contract, as-of behaviour and warm start."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson

from eventdata.events import DEMO_DATA, build_events, write_jsonl
from schemas.alerts import RiskAlert
from stream.replay import SCORE_COLUMNS, load_models, replay_lines, save_models

AS_OF = "2011-02-01T00:00:00+00:00"
AS_OF_MS = 1_296_518_400_000


def test_replay_cli_writes_the_contracted_outputs(tmp_path: Path) -> None:
    events = build_events(DEMO_DATA)[:6000]
    path = tmp_path / "events.jsonl"
    write_jsonl(events, path)
    with path.open("ab") as fh:
        fh.write(b"{broken\n")
        fh.write(orjson.dumps({"type": "purchase", "event_id": "x", "customer_id": "c"}) + b"\n")
    out = {name: tmp_path / name for name in ("s.csv", "p.jsonl", "a.jsonl", "m.pkl")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli",
            "replay",
            str(path),
            "--as-of",
            AS_OF,
            "--scores-out",
            str(out["s.csv"]),
            "--predictions-out",
            str(out["p.jsonl"]),
            "--alerts-out",
            str(out["a.jsonl"]),
            "--models-out",
            str(out["m.pkl"]),
            "--churn-horizon-days",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "rejected 2" in run.stderr and "line 6001 rejected (not_json)" in run.stderr

    seen = [e for e in events if e["ts"] <= AS_OF_MS]
    assert len(seen) < len(events)
    predictions = [orjson.loads(line) for line in out["p.jsonl"].read_bytes().splitlines()]
    assert [p["event_id"] for p in predictions] == [e["event_id"] for e in seen]
    for p, e in zip(predictions, seen, strict=True):
        assert 0.0 <= p["churn_risk"] <= 1.0
        if e["type"] == "feedback":
            assert p["sentiment"] in ("positive", "negative")
            assert 0.0 <= p["sentiment_proba"] <= 1.0
        else:
            assert "sentiment" not in p

    with out["s.csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == SCORE_COLUMNS
    assert {r["customer_id"] for r in rows} == {e["customer_id"] for e in seen}
    for row in rows:
        assert 0.0 <= float(row["churn_risk"]) <= 1.0
        assert row["churn_tier"] in ("low", "medium", "high")
        assert float(row["value_at_risk"]) <= float(row["clv"]) + 1e-9
        # Scored at the as-of time: recency keeps growing for customers who went quiet.
        if row["days_since_last_purchase"]:
            assert float(row["days_since_last_purchase"]) >= 0

    for line in out["a.jsonl"].read_bytes().splitlines():
        RiskAlert.model_validate_json(line)

    models = load_models(out["m.pkl"])
    assert models.config.churn_horizon_days == 60


def test_saved_models_warm_start_with_identical_predictions(tmp_path: Path) -> None:
    lines = [orjson.dumps(e) for e in build_events(DEMO_DATA)[:4000]]
    result = replay_lines(lines)
    save_models(result.models, tmp_path / "m.pkl")
    restored = load_models(tmp_path / "m.pkl")
    assert result.as_of_ms is not None
    for state in list(result.states.values())[:100]:
        assert restored.score_one(state, result.as_of_ms) == result.models.score_one(
            state, result.as_of_ms
        )


def test_a_worker_warm_starts_from_saved_models(tmp_path: Path) -> None:
    from stream.app import build_app
    from stream.settings import Settings

    result = replay_lines([orjson.dumps(e) for e in build_events(DEMO_DATA)[:3000]])
    save_models(result.models, tmp_path / "m.pkl")
    settings = Settings(
        models_path=tmp_path / "m.pkl", table_store="memory", data_dir=tmp_path / "w"
    )
    scorer = build_app(settings, input_partitions=8).new_processor(3, None).scorer
    assert result.as_of_ms is not None
    state = next(iter(result.states.values()))
    assert scorer.score_one(state, result.as_of_ms) == result.models.score_one(
        state, result.as_of_ms
    )


def test_demo_replay_alerts_are_explained_unique_and_the_same_in_every_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(build_events(DEMO_DATA), path)
    runs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"alerts-{hash_seed}.jsonl"
        run = subprocess.run(
            [sys.executable, "-m", "stream.cli", "replay", str(path), "--alerts-out", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert run.returncode == 0, run.stderr
        runs.append([RiskAlert.model_validate_json(line) for line in out.read_bytes().splitlines()])
    first, second = runs
    # String hashing differs between the two processes; the alerts must not.
    assert [a.model_dump(exclude={"emitted_at"}) for a in first] == [
        a.model_dump(exclude={"emitted_at"}) for a in second
    ]
    kinds = Counter(a.kind.value for a in first)
    assert {"churn_risk", "negative_feedback", "segment_downgrade", "cart_abandonment"} <= set(
        kinds
    )
    assert len({a.alert_id for a in first}) == len(first)
    assert all(a.reasons for a in first)
    # Quiet customers are found by the scans: alerts with no triggering event.
    assert any(a.kind.value == "churn_risk" and a.event_id is None for a in first)
    assert all(a.event_id is None for a in first if a.kind.value == "cart_abandonment")
    for alert in first:
        if alert.kind.value == "churn_risk":
            assert alert.value_at_risk is not None and alert.churn_tier == "high"
        if alert.kind.value == "negative_feedback":
            assert alert.excerpt and len(alert.excerpt) <= 120
