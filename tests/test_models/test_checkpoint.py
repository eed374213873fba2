"""Model checkpoints: bytes that restore the same model, and refuse anything else."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.checkpoint import MAGIC, CheckpointError, ModelCheckpoint, compress, split_chunks
from models.features import CustomerState, apply_event
from models.retention import MODEL_VERSION, ModelConfig, RetentionModels
from models.surge import SentimentSurge
from schemas.events import parse_event_object


def trained() -> tuple[RetentionModels, list[CustomerState]]:
    models = RetentionModels()
    states = []
    for i in range(40):
        event = parse_event_object(
            {"type": "purchase", "event_id": f"p{i}", "customer_id": f"c{i % 7}",
             "ts": 1_300_000_000_000 + i * 5 * 86_400_000, "amount": 10.0 + i}
        )  # fmt: skip
        state = apply_event(None, event)
        assert state is not None
        states.append(state)
        models.advance(event.ts_ms, lambda: states)
        models.learn_one(None, state, event)
    models.sentiment.learn_one("great value, works well", True)
    models.sentiment.learn_one("broken and late", False)
    return models, states


def capture(model: object, version: str = MODEL_VERSION) -> ModelCheckpoint:
    return ModelCheckpoint.capture(
        model, version, partition=2, offsets={"crm.purchases": 39}, clock_ms=5,
        next_scan_ms=7, written_at_ms=11,
    )  # fmt: skip


def test_a_restored_model_predicts_exactly_as_the_saved_one() -> None:
    models, states = trained()
    back = ModelCheckpoint.from_bytes(capture(models).to_bytes())
    restored = back.restore(RetentionModels, MODEL_VERSION)
    assert back.info.offsets == {"crm.purchases": 39} and back.info.clock_ms == 5
    now = states[-1].last_seen_ms + 86_400_000
    for state in states:
        assert restored.score_one(state, now) == models.score_one(state, now)
    assert restored.sentiment.predict_proba("broken") == models.sentiment.predict_proba("broken")


def test_a_changed_byte_a_model_of_another_version_or_type_is_refused() -> None:
    data = bytearray(capture(RetentionModels()).to_bytes())
    data[-1] ^= 1
    with pytest.raises(CheckpointError, match="checksum"):
        ModelCheckpoint.from_bytes(bytes(data))
    ckpt = capture(RetentionModels(), "churn-lr/0+old")
    with pytest.raises(CheckpointError, match="this code runs"):
        ckpt.restore(RetentionModels, MODEL_VERSION)
    with pytest.raises(CheckpointError, match="not SentimentSurge"):
        capture(RetentionModels()).restore(SentimentSurge, MODEL_VERSION)


@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_are_a_checkpoint_or_refused_with_a_reason(data: bytes, magic: bool) -> None:
    try:
        ModelCheckpoint.from_bytes(MAGIC + data if magic else data)
    except CheckpointError as exc:
        assert str(exc)


@given(st.binary(max_size=2_000), st.integers(min_value=1, max_value=700))
def test_chunks_join_back_and_fit(data: bytes, size: int) -> None:
    chunks = split_chunks(data, size)
    assert b"".join(chunks) == data and all(len(c) <= size for c in chunks) and chunks


def test_new_thresholds_are_adopted_a_new_horizon_is_not() -> None:
    models = RetentionModels()
    assert models.adopt(ModelConfig(churn_tier_high=0.8))
    assert models.churn.tier_thresholds == (0.4, 0.8)
    assert not models.adopt(ModelConfig(churn_horizon_days=30))
    assert models.config.churn_horizon_days == 90
    surge = SentimentSurge()
    assert surge.adopt(SentimentSurge(z_threshold=3.0)) and surge.z_threshold == 3.0
    assert not surge.adopt(SentimentSurge(window_days=3))


#: Whether the collector was on when a probe was pickled, and when it was unpickled.
COLLECTOR_ON: list[tuple[str, bool]] = []


def unpickled_probe() -> GarbageProbe:
    COLLECTOR_ON.append(("restore", gc.isenabled()))
    return GarbageProbe()


class GarbageProbe:
    """Notes whether the garbage collector is on as it is pickled and unpickled."""

    def __reduce__(self) -> tuple[Callable[[], GarbageProbe], tuple[()]]:
        COLLECTOR_ON.append(("pickle", gc.isenabled()))
        return unpickled_probe, ()


def test_a_checkpoint_is_pickled_and_restored_with_the_collector_paused() -> None:
    """Pickling and unpickling allocate an object or more per snapshot: with the
    collector on, a third of Online Retail's partitions paid a full collection (0.4 s),
    in the event loop for the pickle."""
    models, _ = trained()
    models.probe = GarbageProbe()  # type: ignore[attr-defined]
    was = gc.isenabled()
    gc.enable()
    COLLECTOR_ON.clear()
    try:
        checkpoint = ModelCheckpoint.capture(
            models, MODEL_VERSION, partition=0, offsets={}, clock_ms=None,
            next_scan_ms=None, written_at_ms=0,
        )  # fmt: skip
        restored = checkpoint.restore(RetentionModels, MODEL_VERSION)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert COLLECTOR_ON == [("pickle", False), ("restore", False)] and after
    assert isinstance(restored.probe, GarbageProbe)  # type: ignore[attr-defined]


def test_checkpoints_of_the_format_before_are_read_and_of_a_later_one_refused() -> None:
    """A rolling upgrade: this code reads format 1 (d3b3595 and earlier, brought up to
    date as unpickled); format 1's readers refuse this code's format 2 the same way, and
    start that partition's models anew instead of failing on classes they lack."""
    data = capture(RetentionModels()).to_bytes()
    assert b'"format":2' in data
    older = ModelCheckpoint.from_bytes(data.replace(b'"format":2', b'"format":1', 1))
    assert older.info.format == 1 and older.restore(RetentionModels, MODEL_VERSION)
    with pytest.raises(CheckpointError, match=r"format 3, this code reads \[1, 2\]"):
        ModelCheckpoint.from_bytes(data.replace(b'"format":2', b'"format":3', 1))


def test_a_pickle_naming_what_this_code_lacks_is_refused_not_raised() -> None:
    """As a newer worker's checkpoint read by an older one: an unusable checkpoint (the
    partition's models start anew, logged and counted), not a crashed worker."""
    for payload in (b"cmodels.churn\nNoSuchRecord\n.", b"cno_such_module\nModel\n.", b"\x80"):
        checkpoint = ModelCheckpoint.build(
            compress(payload), MODEL_VERSION, partition=0, offsets={}, clock_ms=None,
            next_scan_ms=None, written_at_ms=0,
        )  # fmt: skip
        with pytest.raises(CheckpointError, match="unreadable model pickle"):
            checkpoint.restore(RetentionModels, MODEL_VERSION)
