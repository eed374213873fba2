"""The worker's models: one :class:`EventProcessor` per owned input partition, restored
from that partition's latest checkpoint and checkpointed again as it learns.

Each partition's models learn from that partition's customers only, so they move with
the partition: whichever worker owns it, partition p is scored by the models of every
event of p so far (``replay --partitions`` computes the same). docs/operations.md says
why this and not one shared model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from models.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    ModelCheckpoint,
    compress,
    pickle_model,
)
from models.retention import MODEL_VERSION, UPGRADES_FROM, ModelConfig, RetentionModels
from stream import metrics
from stream.checkpoints import CheckpointStore
from stream.processor import EventProcessor

log = logging.getLogger(__name__)


class PartitionModels:
    """``new(partition, restored_models_or_None)`` builds a processor; ``store`` holds the
    checkpoints; a partition is checkpointed when it learned something and its last
    checkpoint is ``interval_s`` old, at most one per :meth:`checkpoint_due` call (a
    checkpoint blocks the event loop while it pickles)."""

    def __init__(
        self,
        new: Callable[[int, RetentionModels | None], EventProcessor],
        store: CheckpointStore,
        config: ModelConfig,
        interval_s: float,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.new = new
        self.store = store
        self.config = config
        self.interval_s = interval_s
        self.wall_ms = wall_ms
        self.processors: dict[int, EventProcessor] = {}
        #: The checkpoint each partition's models were last written to or restored from.
        self.checkpoints: dict[int, CheckpointInfo] = {}
        self.saved_at: dict[int, float] = {}
        #: Partitions that learned since their last checkpoint, and since when (wall ms).
        self.dirty: set[int] = set()
        self.dirty_since_ms: dict[int, int] = {}
        #: Per (topic, partition) restored: the offset the checkpoint reflects, until the
        #: first message after the restore says how many the models never learned from.
        self.resume_after: dict[tuple[str, int], int] = {}

    def get(self, partition: int) -> EventProcessor:
        processor = self.processors.get(partition)
        if processor is None:
            processor = self.processors[partition] = self._restore(partition)
        return processor

    def _restore(self, partition: int) -> EventProcessor:
        outcome, models, checkpoint = "new", None, None
        try:
            checkpoint = self.store.load(partition)
            if checkpoint is not None:
                models = checkpoint.restore(RetentionModels, MODEL_VERSION, UPGRADES_FROM)
                if not models.adopt(self.config):
                    raise CheckpointError("a learning setting changed since it was written")
                outcome = "restored"
        except CheckpointError as exc:
            outcome, models = "unusable", None
            log.error(
                "partition %d: model checkpoint not restored, starting anew: %s", partition, exc
            )
        metrics.MODEL_RESTORES.labels(outcome).inc()
        processor = self.new(partition, models)
        if models is not None and checkpoint is not None:
            info = checkpoint.info
            processor.clock_ms, processor.next_scan_ms = info.clock_ms, info.next_scan_ms
            self.checkpoints[partition] = info
            self.saved_at[partition] = time.monotonic()
            for topic, offset in info.offsets.items():
                self.resume_after[(topic, partition)] = offset
            log.info(
                "partition %d: models restored from the checkpoint of %d ms ago (offsets %s)",
                partition,
                self.wall_ms() - info.written_at_ms,
                info.offsets,
            )
        return processor

    def mark_dirty(self, partition: int) -> None:
        if partition not in self.dirty:
            self.dirty.add(partition)
            self.dirty_since_ms[partition] = self.wall_ms()

    def unsaved_s(self, partition: int, wall_ms: int) -> float:
        """How long the partition's models have held learning no checkpoint has (what a
        crash would lose); 0 while their latest checkpoint is current."""
        if partition not in self.dirty:
            return 0.0
        return max(wall_ms - self.dirty_since_ms[partition], 0) / 1000

    def first_read(self, topic: str, partition: int, offset: int) -> None:
        """Count what a crash made the models miss: the messages between the restored
        checkpoint and where consumption resumed (their state was kept; their learning
        was lost with the worker)."""
        after = self.resume_after.pop((topic, partition), None)
        if after is not None and offset > after + 1:
            missed = offset - after - 1
            metrics.MODEL_MESSAGES_UNLEARNED.inc(missed)
            log.warning(
                "partition %d of %s: the models resume %d messages after their checkpoint "
                "(a crash since it was written); those events' state is kept, not their learning",
                partition,
                topic,
                missed,
            )

    async def save(self, partition: int, offsets: dict[str, int]) -> None:
        """Pickle the models (in the event loop: a consistent snapshot, while no event is
        applied), compress in a thread (zlib lets go of the GIL: most of the time, and
        events go on meanwhile), then write. The caller serialises saves, so that the
        last one written is the newest."""
        processor = self.processors[partition]
        scorer = processor.scorer
        if not isinstance(scorer, RetentionModels):
            return
        # The models have learned up to their last checkpoint's offsets (the one restored,
        # or written), also on the topics not read since, and a redelivery after a
        # hand-over reads again what they learned: a checkpoint's offsets never go back,
        # or a new owner would count messages as unlearned.
        previous = self.checkpoints.get(partition)
        if previous is not None:
            offsets = {
                topic: max(offsets.get(topic, -1), previous.offsets.get(topic, -1))
                for topic in previous.offsets.keys() | offsets.keys()
            }
        started = time.perf_counter()
        pickled = pickle_model(scorer)
        clock_ms, next_scan_ms = processor.clock_ms, processor.next_scan_ms
        written_at_ms = self.wall_ms()
        # Learning from here on makes it dirty again.
        self.dirty.discard(partition)
        self.dirty_since_ms.pop(partition, None)
        pickled_at = time.perf_counter()
        metrics.MODEL_CHECKPOINT_SECONDS.labels("pickle").observe(pickled_at - started)
        payload = await asyncio.to_thread(compress, pickled)
        metrics.MODEL_CHECKPOINT_SECONDS.labels("compress").observe(
            time.perf_counter() - pickled_at
        )
        checkpoint = ModelCheckpoint.build(
            payload,
            scorer.model_version,
            partition=partition,
            offsets=offsets,
            clock_ms=clock_ms,
            next_scan_ms=next_scan_ms,
            written_at_ms=written_at_ms,
        )
        size = self.store.save(checkpoint)
        self.checkpoints[partition] = checkpoint.info
        self.saved_at[partition] = time.monotonic()
        metrics.MODEL_CHECKPOINT_BYTES.labels(str(partition)).set(size)

    def checkpoint_due(self) -> int | None:
        """The dirty partition whose checkpoint is oldest, once it is due."""
        now = time.monotonic()
        due = [
            (self.saved_at.get(p, -float("inf")), p)
            for p in self.dirty
            if p in self.processors and now - self.saved_at.get(p, -float("inf")) >= self.interval_s
        ]
        return min(due)[1] if due else None

    def keep_only(self, partitions: Iterable[int]) -> list[int]:
        """Forget the partitions not in ``partitions`` (moved to another worker, which
        restores them from their checkpoint); returns the ones dropped."""
        keep = set(partitions)
        dropped = [p for p in self.processors if p not in keep]
        for p in dropped:
            del self.processors[p]
            self.checkpoints.pop(p, None)
            self.saved_at.pop(p, None)
        # Also partitions marked by a read before their models were set up: a stale mark
        # would make their checkpoint look old when they come back.
        self.dirty &= keep
        self.dirty_since_ms = {p: t for p, t in self.dirty_since_ms.items() if p in keep}
        self.resume_after = {k: v for k, v in self.resume_after.items() if k[1] in keep}
        return dropped
