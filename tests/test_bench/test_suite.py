"""A small run of every benchmark, so that the suite cannot rot. No timing is asserted
(CI machines differ): only that each measured what it claims to."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from pathlib import Path

import pytest

from bench import compare, fetch_partitions, latency, memory, pipeline, state, throughput
from bench.workload import mixed_events


def test_pipeline_times_every_event_after_the_warm_up_by_kind() -> None:
    result = pipeline.measure(1_000, customers=200, partitions=4)
    assert result.warmup == 500 and result.events == 500
    assert sum(result.counts.values()) == result.events  # none skipped as a duplicate
    assert set(result.counts) == {"browse", "purchase", "feedback"}
    assert result.seconds == pytest.approx(sum(result.by_type.values()))
    assert "| browse (" in result.table()


def test_memory_counts_the_states_bytes_apart_from_the_models() -> None:
    events = mixed_events(2_000, customers=500)
    result = memory.measure(2_000, customers=500, partitions=4)
    assert result.customers == len({e["customer_id"] for e in events})
    assert result.by_file[memory.STATES] > 100 * result.customers  # a state is 600 B or so
    assert result.by_file["models/sentiment.py"] > 0
    assert not {"bench/memory.py", "bench/pipeline.py"} & result.by_file.keys()
    # A state's bytes object is counted whole: what is left to features.py is not states.
    assert result.by_file["models/features.py"] < 10 * result.customers
    assert result.models == result.total - result.by_file[memory.STATES]
    assert "| models/sentiment.py |" in result.table()


@pytest.mark.broker
def test_throughput_runs_the_worker_and_the_bound_over_the_same_events() -> None:
    result = throughput.measure(2_000, customers=500, partitions=4, timeout_s=240, rounds=2)
    assert result.loaded.events == 2_000
    assert [r.bound.events for r in result.rounds] == [2_000] * 2
    # A worker is timed from when it says it is ready: the events it applied before are
    # left out (it may apply some: they are loaded first).
    assert all(0 < r.product.events <= 2_000 for r in result.rounds)
    assert 0 < result.floors[0].events <= 2_000  # (a2): a worker too
    assert [run.events for run in result.floors[1:]] == [2_000] * 4  # each counted them all
    assert "(a2) product on asyncio" in result.table()
    assert result.ratio > 0
    assert "ratio a/b by round" in result.table() and "(c3)" in result.table()
    assert "(a) product: crm-scorer worker, round 2 |" in result.table()
    # Each side's CPU and the broker's were read while it ran: some of each was used.
    for r in result.rounds:
        for run in (r.bound, r.product):
            assert run.cpu_seconds and run.broker_cpu_seconds and run.cpu_us
            assert 0 < run.cpu_seconds < 2 * run.seconds  # the worker has a few threads
    assert "CPU an event, b/a by round" in result.table()


def test_the_throughput_ratio_is_the_median_rounds() -> None:
    def turn(bound_s: float, product_s: float) -> throughput.Round:
        return throughput.Round(
            throughput.Run("(b) bound", 1_000, bound_s),
            throughput.Run("(a) product", 1_000, product_s),
        )

    loaded = throughput.Run("load", 1_000, 1.0)
    rounds = (turn(1.0, 2.0), turn(1.0, 4.0), turn(2.0, 2.5))  # ratios 0.5, 0.25, 0.8
    result = throughput.ThroughputResult(loaded, rounds)
    assert (result.ratio, result.product.seconds, result.bound.seconds) == (0.5, 2.0, 1.0)
    assert "| ratio a/b by round | 0.50, 0.25, 0.80 |" in result.table()
    assert "| **ratio a/b, median** | **0.50** |" in result.table()
    assert throughput.ThroughputResult(loaded, rounds[:2]).ratio == 0.25  # the lower of two
    one = throughput.ThroughputResult(loaded, rounds[2:]).table()
    assert "| **ratio a/b** | **0.80** |" in one and "round" not in one
    assert "CPU an event, b/a" not in one  # not measured: no such row


def test_throughput_reads_cpu_seconds_of_a_process() -> None:
    clock = throughput.CpuClock(os.getpid(), None)
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn 0.2 s of CPU here
        pass
    run = clock.run("burnt", 1_000, 0.4)
    assert run.cpu_seconds is not None and 0.15 <= run.cpu_seconds <= 0.4
    assert run.broker_cpu_seconds is None and run.busy(run.broker_cpu_seconds) == "-"
    assert run.cpu_us == pytest.approx(run.cpu_seconds * 1000)
    assert run.busy(0.2) == "50%"
    turn = throughput.Round(
        dataclasses.replace(run, cpu_seconds=0.1), dataclasses.replace(run, cpu_seconds=0.2)
    )
    assert turn.cpu_ratio == pytest.approx(0.5)  # the product used twice the bound's CPU


@pytest.mark.broker
def test_latency_pairs_every_score_with_the_event_behind_it() -> None:
    result = latency.measure(rate=200, seconds=3, customers=100)
    assert result.sent == 600
    assert len(result.scores_ms) == result.sent  # one score per event, each matched
    assert all(ms >= 0 for ms in result.scores_ms)
    assert len(result.scores_seen_ms) == result.sent
    assert len(result.alerts_at_s) == len(result.alerts_ms)  # each alert in its window
    assert "full garbage collections during the run" in result.collections()
    # Received no earlier than stamped (the clocks are one machine's; 1 ms of rounding).
    pairs = zip(result.scores_seen_ms, result.scores_ms, strict=True)
    assert all(seen >= ms - 1 for seen, ms in pairs)
    assert "event to score" in result.table()
    # The worker timed each alert read to when the broker had stored it.
    assert result.alerts_stored[math.inf] == len(result.alerts_ms)
    assert "| event to alert, stored by the broker" in result.table()
    # The broker's own part, side by side: the input events of one partition of each input
    # topic (of 8), as a plain consumer got them, and the worker's own part of their scores.
    sampled = len(result.inputs_seen_ms)
    assert 0 < sampled < result.sent / 4 and len(result.inputs_at_s) == sampled
    assert len(result.scores_own_ms) == len(result.own_at_s) == sampled
    assert all(ms >= -1 for ms in result.inputs_seen_ms)
    assert "| 0-10 s |" in result.windows() and "broker's own part" in result.table()
    # The worker's fetches were scraped as the events went: the window has their mean.
    first, last = result.fetches[0], result.fetches[-1]
    assert first[0] <= 0 < last[0] and last[1] > first[1] and last[2] > first[2]
    assert re.search(r"\| [\d.]+ ms \([\d,]+\) \|$", result.windows().splitlines()[2])


def test_a_histograms_quantile_is_given_as_its_bucket() -> None:
    buckets = {0.01: 0.0, 0.05: 40.0, 0.1: 99.0, 0.25: 100.0, math.inf: 100.0}
    assert latency.bucket_of(buckets, 0.5) == "50-100 ms"
    assert latency.bucket_of(buckets, 0.99) == "50-100 ms"
    assert latency.bucket_of(buckets, 0.4) == "10-50 ms"
    assert latency.bucket_of({0.1: 1.0, math.inf: 2.0}, 0.99) == "over 100 ms"
    assert latency.bucket_of({math.inf: 0.0}, 0.5) == "-"


@pytest.mark.broker
def test_state_recovers_every_customer_on_a_new_disk() -> None:
    events = mixed_events(1_500, customers=300, seed=3)
    result = state.measure(events, timeout_s=240)
    assert result.recovered == result.customers == len({e["customer_id"] for e in events})
    assert result.loaded_rss > result.loaded_rocksdb > 0 and result.restart_ready_s is not None
    assert result.restart_ready_s > 0
    assert result.loop_delay[math.inf] > 0  # the worker's loop was probed while applying
    assert "event loop held in one piece while applying" in result.table()


def test_state_table_says_when_the_restart_was_not_measured() -> None:
    mib = 1024 * 1024
    measured = state.StateResult(10, 5, 1.0, {1.0: 1, math.inf: 1}, mib, 3 * mib, mib, 2.5, 3.0, 5)
    skipped = dataclasses.replace(measured, restart_ready_s=None)
    assert "| restart on the same disk (RocksDB): start to ready | 2.5 s |" in measured.table()
    assert "| restart on the same disk (RocksDB): start to ready | not measured" in skipped.table()
    # Growth 2 MiB over 5 customers; RocksDB's 1 MiB of it left out, half that.
    assert "| growth per customer | 419,430 B |" in measured.table()
    assert "| ... RocksDB left out | 209,715 B |" in measured.table()
    assert "| ... of which RocksDB's blocks and memtables | 1 MiB |" in measured.table()


@pytest.mark.broker
def test_compare_runs_each_variants_worker_in_turns_over_the_same_events() -> None:
    here = Path(__file__).resolve().parents[2]
    variants = [
        compare.Variant.parse(str(here)),
        compare.Variant.parse(f"{here},CRM_GC_FREEZE_SURVIVORS=false"),
    ]
    # Enough events that a worker is still applying them when it says it is ready (it
    # applied all of 1,000 before, once, and measured nothing): the figures cover those
    # it applies from then on.
    runs = compare.measure(variants, 5_000, customers=1_000, partitions=4, rounds=1)
    assert all(1_000 <= run.events <= 5_000 for each in runs for run in each), runs
    assert all(run.cpu_us > 0 and run.seconds > 0 for each in runs for run in each)
    # The models' arrays alone (sentiment's counts are pages written as texts arrive).
    assert all(0 < run.grown_bytes <= run.peak_bytes for each in runs for run in each)
    assert f"| 2. {here},CRM_GC_FREEZE_SURVIVORS=false |" in compare.table(runs)


def test_the_longest_pause_is_read_off_the_buckets_between_two_scrapes() -> None:
    before = {0.01: 3.0, 0.1: 4.0, math.inf: 4.0}
    assert compare.longest_in(before, {0.01: 4.0, 0.1: 6.0, math.inf: 6.0}) == 0.1
    assert compare.longest_in(before, {0.01: 5.0, 0.1: 6.0, math.inf: 7.0}) == math.inf
    assert compare.longest_in(before, {0.01: 4.0, 0.1: 5.0, math.inf: 5.0}) == 0.01
    assert compare.longest_in(before, before) == 0.0


def test_the_profile_summary_counts_a_function_once_a_sample(tmp_path: Path) -> None:
    collapsed = tmp_path / "1.txt"
    collapsed.write_text(
        "run (a.py:1);walk (b.py:2);walk (b.py:3);leaf (c.py:4) 3\nrun (a.py:1);other (d.py:5) 1\n"
    )
    assert compare.top_functions(collapsed) == [
        ("run (a.py)", 1.0),
        ("leaf (c.py)", 0.75),
        ("walk (b.py)", 0.75),
        ("other (d.py)", 0.25),
    ]


def test_worker_settings_are_key_equals_value() -> None:
    assert compare.env_setting("CRM_X=1") == ("CRM_X", "1")
    assert compare.env_setting("CRM_X=a=b") == ("CRM_X", "a=b")
    assert compare.env_setting("CRM_X=") == ("CRM_X", "")
    for bad in ("CRM_X", "=1", ""):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            compare.env_setting(bad)
    assert compare.Variant.parse(".,CRM_X=1,CRM_Y=2").env == (("CRM_X", "1"), ("CRM_Y", "2"))
    with pytest.raises(ValueError, match=r"PATH\[,KEY=VALUE"):
        compare.Variant.parse(".,CRM_X")


@pytest.mark.broker
def test_fetch_partitions_times_both_consumers_on_the_same_records() -> None:
    result = fetch_partitions.measure(rate=300, seconds=2, partitions=2)
    # Partition 0 gets every other record of each topic's sends: both consumers read all.
    every, zero = (result.lags[name] for name in fetch_partitions.READERS)
    assert len(every) == len(zero) == 300
    assert sorted(at for at, _ in every) == sorted(at for at, _ in zero)
    assert all(ms >= -1 for _, ms in every + zero)
    # Every fetch answer is seen: at least one per partition that delivered records.
    answers = {name: result.withheld[name].answers for name in fetch_partitions.READERS}
    assert answers["every partition"] >= 6 and answers["partition 0 only"] >= 3, answers
    assert all(w.withheld <= w.answers for w in result.withheld.values())
    table = result.table()
    assert "| 0-4 s |" in table and "| every partition | " in table
