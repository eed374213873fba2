"""Model checkpoints: a learned model with the clock and the input offsets it reflects,
as bytes for a compacted topic, and split into chunks that fit a Kafka message.

The payload is a pickle (River models are pickled by design), compressed. Only load
checkpoints from a topic that only the workers can write to (docs/operations.md).

>>> from models.surge import SentimentSurge
>>> ckpt = ModelCheckpoint.capture(
...     SentimentSurge(), SentimentSurge.VERSION, partition=0,
...     offsets={"signals": 41}, clock_ms=None, next_scan_ms=None, written_at_ms=1)
>>> back = ModelCheckpoint.from_bytes(ckpt.to_bytes())
>>> back.info.offsets, type(back.restore(SentimentSurge, SentimentSurge.VERSION)).__name__
({'signals': 41}, 'SentimentSurge')
>>> split_chunks(b"x" * 10, 4)
[b'xxxx', b'xxxx', b'xx']
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import pickle
import struct
import zlib
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import orjson

MAGIC = b"CRMCKPT"
#: Bumped when the byte layout or the pickle's classes change; older readers refuse
#: newer checkpoints (and start those partitions' models anew instead of failing to
#: unpickle them). 2: churn snapshots and demand targets as ``FeatureRecord``s, held in
#: ``OpenRecords`` (models.churn), since 96b372a.
FORMAT = 2
#: The formats this code reads: 1 is brought up to date as it is unpickled.
READS_FORMATS = frozenset({1, 2})
_HEADER_LEN = struct.Struct(">I")
T = TypeVar("T")


class CheckpointError(ValueError):
    """Bytes that are not a usable checkpoint (corrupt, other format or model version)."""


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What a checkpoint reflects, readable without unpickling the model."""

    format: int
    model_version: str
    partition: int
    #: Last input offset applied to the model, per topic (of this partition).
    offsets: dict[str, int]
    clock_ms: int | None
    next_scan_ms: int | None
    written_at_ms: int
    payload_bytes: int
    payload_sha256: str


@dataclass(frozen=True, slots=True)
class ModelCheckpoint:
    info: CheckpointInfo
    payload: bytes  # zlib-compressed pickle of the model

    @classmethod
    def capture(
        cls,
        model: object,
        model_version: str,
        *,
        partition: int,
        offsets: dict[str, int],
        clock_ms: int | None,
        next_scan_ms: int | None,
        written_at_ms: int,
    ) -> ModelCheckpoint:
        return cls.build(
            compress(pickle_model(model)),
            model_version,
            partition=partition,
            offsets=offsets,
            clock_ms=clock_ms,
            next_scan_ms=next_scan_ms,
            written_at_ms=written_at_ms,
        )

    @classmethod
    def build(
        cls,
        payload: bytes,
        model_version: str,
        *,
        partition: int,
        offsets: dict[str, int],
        clock_ms: int | None,
        next_scan_ms: int | None,
        written_at_ms: int,
    ) -> ModelCheckpoint:
        """From a payload made by :func:`compress` of :func:`pickle_model` (the worker
        pickles in its event loop, a consistent snapshot, and compresses in a thread)."""
        info = CheckpointInfo(
            format=FORMAT,
            model_version=model_version,
            partition=partition,
            offsets=dict(offsets),
            clock_ms=clock_ms,
            next_scan_ms=next_scan_ms,
            written_at_ms=written_at_ms,
            payload_bytes=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
        )
        return cls(info, payload)

    def to_bytes(self) -> bytes:
        header = orjson.dumps(asdict(self.info))
        return MAGIC + _HEADER_LEN.pack(len(header)) + header + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelCheckpoint:
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEADER_LEN.size:
            raise CheckpointError("not a model checkpoint")
        start = len(MAGIC) + _HEADER_LEN.size
        (length,) = _HEADER_LEN.unpack(data[len(MAGIC) : start])
        try:
            info = CheckpointInfo(**orjson.loads(data[start : start + length]))
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"unreadable checkpoint header: {exc}") from exc
        if info.format not in READS_FORMATS:
            raise CheckpointError(
                f"checkpoint format {info.format}, this code reads {sorted(READS_FORMATS)}"
            )
        payload = data[start + length :]
        if len(payload) != info.payload_bytes or (
            hashlib.sha256(payload).hexdigest() != info.payload_sha256
        ):
            raise CheckpointError("checkpoint payload does not match its checksum")
        return cls(info, payload)

    def restore(self, kind: type[T], model_version: str, upgrades_from: Collection[str] = ()) -> T:
        """The model, if it is a ``kind`` of ``model_version``, or of an older version in
        ``upgrades_from`` that ``kind`` brings up to date as it is unpickled."""
        if self.info.model_version != model_version and (
            self.info.model_version not in upgrades_from
        ):
            raise CheckpointError(
                f"checkpoint of model {self.info.model_version}, this code runs {model_version}"
            )
        try:
            with collections_paused():
                model: Any = pickle.loads(zlib.decompress(self.payload))
        except Exception as exc:
            # A class or module the pickle names that this code lacks, a state its
            # classes cannot take: refused like any unusable checkpoint, not a crash.
            raise CheckpointError(f"unreadable model pickle: {exc!r}") from exc
        if not isinstance(model, kind):
            raise CheckpointError(f"checkpoint holds {type(model).__name__}, not {kind.__name__}")
        return model


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """No garbage collection inside, where a pass over the models would set off full
    collections that walk every object they hold, and what is allocated makes no cycle
    to collect later: a model tick, which decodes every customer of its partition (in
    one process, 10,687 customers, 200,000 events learned, a tick took 0.47 s with the
    collector on and 0.19-0.21 s with it paused), and a checkpoint's pickle or restore
    (a full collection in about a third of them, 0.4 s each on Online Retail's
    partitions; docs/benchmarks.md)."""
    if not gc.isenabled():  # paused by the caller already: theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def pickle_model(model: object) -> bytes:
    with collections_paused():
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def compress(pickled: bytes) -> bytes:
    """Level 1: several times faster than the default, and within 10% of its size.
    zlib releases the GIL: this can run in a thread."""
    return zlib.compress(pickled, 1)


def split_chunks(data: bytes, max_bytes: int) -> list[bytes]:
    """``data`` in pieces of at most ``max_bytes`` (at least one piece)."""
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    return [data[i : i + max_bytes] for i in range(0, len(data), max_bytes)] or [b""]
