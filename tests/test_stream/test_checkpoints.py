"""Checkpoint storage (chunks and slots in a key-value changelog) and the worker's
per-partition models, without Kafka: a dict stands in for the recovered table."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from models.checkpoint import CheckpointError, ModelCheckpoint
from models.retention import MODEL_VERSION, ModelConfig, RetentionModels
from stream.checkpoints import CheckpointStore
from stream.partitions import PartitionModels
from stream.processor import EventProcessor
from tests.test_models.test_checkpoint import trained


class Changelog:
    """The compacted changelog as a restore sees it: the latest value per key."""

    def __init__(self) -> None:
        self.table: dict[str, bytes] = {}
        self.records: list[tuple[str, int]] = []
        self.fail_after: int | None = None

    def write(self, key: str, value: bytes, partition: int) -> None:
        if self.fail_after is not None and len(self.records) >= self.fail_after:
            raise ConnectionError("worker died mid-checkpoint")
        self.records.append((key, partition))
        self.table[key] = value


def checkpoint(model: object, offset: int, partition: int = 1) -> ModelCheckpoint:
    return ModelCheckpoint.capture(
        model, MODEL_VERSION, partition=partition, offsets={"crm.purchases": offset},
        clock_ms=offset, next_scan_ms=None, written_at_ms=offset,
    )  # fmt: skip


def test_checkpoints_alternate_slots_in_chunks_to_their_partition() -> None:
    log = Changelog()
    store = CheckpointStore(log.table.get, log.write, chunk_bytes=4096)
    models, _ = trained()
    size = store.save(checkpoint(models, 10))
    chunks = [key for key, _ in log.records if key.startswith("1:a:")]
    assert len(chunks) == -(-size // 4096) > 1, "the test model must need several chunks"
    assert log.records[-1] == ("1", 1) and {p for _, p in log.records} == {1}
    store.save(checkpoint(models, 20))
    assert log.records[-1] == ("1", 1) and any(k.startswith("1:b:") for k, _ in log.records)
    # A new worker (a new store) reads the latest and continues in the other slot.
    again = CheckpointStore(log.table.get, log.write, chunk_bytes=4096)
    loaded = again.load(1)
    assert loaded is not None and loaded.info.offsets == {"crm.purchases": 20}
    again.save(checkpoint(models, 30))
    assert log.records[-2][0].startswith("1:a:")
    assert again.load(2) is None


def test_a_crash_mid_checkpoint_leaves_the_previous_one_whole() -> None:
    log = Changelog()
    store = CheckpointStore(log.table.get, log.write, chunk_bytes=2048)
    models, _ = trained()
    store.save(checkpoint(models, 10))
    log.fail_after = len(log.records) + 2  # two chunks of the next one, then death
    with pytest.raises(ConnectionError):
        store.save(checkpoint(models, 20))
    loaded = CheckpointStore(log.table.get, log.write, 2048).load(1)
    assert loaded is not None and loaded.info.offsets == {"crm.purchases": 10}


def test_a_missing_chunk_or_a_bad_manifest_is_an_error_not_a_wrong_model() -> None:
    log = Changelog()
    store = CheckpointStore(log.table.get, log.write, chunk_bytes=2048)
    store.save(checkpoint(trained()[0], 10))
    del log.table["1:a:1"]
    with pytest.raises(CheckpointError, match="missing"):
        store.load(1)
    log.table["1"] = b"{not json"
    with pytest.raises(CheckpointError, match="bad manifest"):
        store.load(1)


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def partition_models(log: Changelog, config: ModelConfig | None = None) -> PartitionModels:
    def new(partition: int, scorer: RetentionModels | None) -> EventProcessor:
        return EventProcessor(scorer=scorer or RetentionModels())

    return PartitionModels(
        new, CheckpointStore(log.table.get, log.write, 1 << 20), config or ModelConfig(), 60.0
    )


def test_partition_models_restore_count_what_a_crash_lost_and_checkpoint_in_turn() -> None:
    log = Changelog()
    first = partition_models(log)
    processor = first.get(1)
    processor.scorer = trained()[0]
    processor.clock_ms, processor.next_scan_ms = 1_500_000_000_000, 1_500_086_400_000
    first.mark_dirty(1)
    assert first.checkpoint_due() == 1  # learned, never checkpointed
    asyncio.run(first.save(1, {"crm.purchases": 41, "crm.feedback": 7}))
    assert first.checkpoint_due() is None and first.unsaved_s(1, 0) == 0.0

    restored = sample("crm_model_restores_total", outcome="restored")
    unlearned = sample("crm_model_messages_unlearned_total")
    second = partition_models(log)
    again = second.get(1)
    assert sample("crm_model_restores_total", outcome="restored") == restored + 1
    assert (again.clock_ms, again.next_scan_ms) == (processor.clock_ms, processor.next_scan_ms)
    assert isinstance(again.scorer, RetentionModels) and isinstance(
        processor.scorer, RetentionModels
    )
    assert again.scorer.churn.labels_learned == processor.scorer.churn.labels_learned
    # Consumption resumes where the group committed: the checkpoint was older.
    second.first_read("crm.purchases", 1, 50)
    second.first_read("crm.feedback", 1, 8)  # right after the checkpoint: nothing lost
    second.first_read("crm.purchases", 1, 60)  # only the first read after a restore counts
    assert sample("crm_model_messages_unlearned_total") == unlearned + 8
    assert second.get(2).scorer is not None and 2 not in second.checkpoints  # none: new
    # The next checkpoint keeps the offsets of the topics not read since the restore,
    # and those of a redelivery (read again after a hand-over) do not go back.
    asyncio.run(second.save(1, {"crm.purchases": 60, "crm.feedback": 5, "crm.browsing": 3}))
    assert second.store.load(1).info.offsets == {  # type: ignore[union-attr]
        "crm.purchases": 60, "crm.feedback": 7, "crm.browsing": 3,
    }  # fmt: skip

    # A checkpoint written with another churn horizon is not used; tier thresholds are.
    assert partition_models(log, ModelConfig(churn_tier_high=0.9)).get(
        1
    ).scorer.churn.tier_thresholds == (0.4, 0.9)  # type: ignore[attr-defined]
    unusable = sample("crm_model_restores_total", outcome="unusable")
    fresh = partition_models(log, ModelConfig(churn_horizon_days=30)).get(1)
    assert sample("crm_model_restores_total", outcome="unusable") == unusable + 1
    assert fresh.clock_ms is None

    second.mark_dirty(5)  # a message of partition 5 read before its models were set up
    assert second.keep_only([2]) == [1] and list(second.processors) == [2]
    assert 5 not in second.dirty and 5 not in second.dirty_since_ms
