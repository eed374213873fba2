"""Where checkpoints live: a compacted key-value changelog (a Faust table's), one manifest
key per partition and two slots of chunks, written alternately.

A checkpoint can be larger than a Kafka message, so it goes out in chunks, then the
manifest that names the slot. A crash between the two leaves the manifest pointing at
the previous slot, which is still whole. The key set stays bounded (two slots of at most
the largest chunk count), so compaction keeps exactly one version of each.

>>> log: dict[str, bytes] = {}
>>> store = CheckpointStore(log.get, lambda key, value, p: log.__setitem__(key, value), 8)
>>> from models.checkpoint import ModelCheckpoint
>>> ckpt = ModelCheckpoint.capture({"w": 1.0}, "m/1", partition=3, offsets={"t": 9},
...                                clock_ms=5, next_scan_ms=None, written_at_ms=7)
>>> store.save(ckpt) > 0, store.load(3).info.offsets, store.load(4)
(True, {'t': 9}, None)
>>> sorted(log)[-1], orjson.loads(log["3"])["slot"]
('3:a:9', 'a')
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypedDict

import orjson

from models.checkpoint import CheckpointError, ModelCheckpoint, split_chunks

SLOTS = ("a", "b")


class Manifest(TypedDict):
    slot: str
    chunks: int
    bytes: int
    sha256: str


class CheckpointStore:
    """``read(key)`` looks a key up in the recovered table; ``write(key, value,
    partition)`` sends one record to the changelog partition."""

    def __init__(
        self,
        read: Callable[[str], bytes | None],
        write: Callable[[str, bytes, int], object],
        chunk_bytes: int,
    ) -> None:
        self.read = read
        self.write = write
        self.chunk_bytes = chunk_bytes
        #: The slot each partition's manifest points at, once known.
        self.slots: dict[int, str] = {}

    def save(self, checkpoint: ModelCheckpoint) -> int:
        """Write a checkpoint; returns its size in bytes."""
        partition = checkpoint.info.partition
        current = self.slots.get(partition)
        if current is None:
            previous = self._manifest(partition)
            current = previous["slot"] if previous else SLOTS[1]
        slot = SLOTS[0] if current == SLOTS[1] else SLOTS[1]
        data = checkpoint.to_bytes()
        chunks = split_chunks(data, self.chunk_bytes)
        for i, chunk in enumerate(chunks):
            self.write(f"{partition}:{slot}:{i}", chunk, partition)
        manifest: Manifest = {
            "slot": slot,
            "chunks": len(chunks),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        self.write(str(partition), orjson.dumps(manifest), partition)
        self.slots[partition] = slot
        return len(data)

    def load(self, partition: int) -> ModelCheckpoint | None:
        """The partition's latest checkpoint; ``None`` when it has none. Raises
        :class:`CheckpointError` when one is there but unusable."""
        manifest = self._manifest(partition)
        if manifest is None:
            return None
        slot = manifest["slot"]
        parts = [self.read(f"{partition}:{slot}:{i}") for i in range(manifest["chunks"])]
        if any(part is None for part in parts):
            raise CheckpointError(f"partition {partition}: a chunk of slot {slot} is missing")
        data = b"".join(part for part in parts if part is not None)
        if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            raise CheckpointError(f"partition {partition}: slot {slot} does not match manifest")
        self.slots[partition] = slot
        return ModelCheckpoint.from_bytes(data)

    def _manifest(self, partition: int) -> Manifest | None:
        raw = self.read(str(partition))
        if raw is None:
            return None
        try:
            loaded = orjson.loads(raw)
            manifest = Manifest(
                slot=loaded["slot"],
                chunks=loaded["chunks"],
                bytes=loaded["bytes"],
                sha256=loaded["sha256"],
            )
            if manifest["slot"] not in SLOTS or not isinstance(manifest["chunks"], int):
                raise ValueError(manifest)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"partition {partition}: bad manifest {raw[:80]!r}") from exc
        return manifest
