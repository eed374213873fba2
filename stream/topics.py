"""The topics of the service, their creation, and where a customer's events belong.

All input topics must have the same number of partitions and use Kafka's default
(murmur2) key partitioner: the worker keeps one table of customers and relies on a
customer's purchases, browsing and feedback all landing on the same partition number.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    compacted: bool = False
    partitions: int | None = None  # None: CRM_TOPIC_PARTITIONS


#: The worker's tables: name -> partitions (``None``: co-partitioned with the input).
TABLE_PARTITIONS: dict[str, int | None] = {
    "customers": None,
    "model-checkpoints": None,
    "surge-checkpoints": 1,
}


def changelog_topic_specs(settings: Settings, input_partitions: int) -> list[TopicSpec]:
    """The tables' changelogs, as Faust names them (compacted: the latest per key)."""
    return [
        TopicSpec(
            f"{settings.app_id}-{table}-changelog",
            compacted=True,
            partitions=partitions or input_partitions,
        )
        for table, partitions in TABLE_PARTITIONS.items()
    ]


def internal_topic_specs(settings: Settings, input_partitions: int) -> list[TopicSpec]:
    """The worker's own topics: scan ticks co-partitioned with the input, and one
    partition for feedback outcomes (the surge detector sees all customers)."""
    return [
        TopicSpec(settings.topic_scan, partitions=input_partitions),
        TopicSpec(settings.topic_feedback_signals, partitions=1),
    ]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.topic_purchases),
        TopicSpec(settings.topic_browsing),
        TopicSpec(settings.topic_feedback),
        TopicSpec(settings.topic_alerts),
        TopicSpec(settings.topic_scores, compacted=True),
        TopicSpec(settings.topic_dead_letter),
    ]


_MURMUR2_M = 0x5BD1E995
_U32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (the Java client's ``Utils.murmur2``, unsigned):
    aiokafka's, in half its time (whole words unpacked at once, fewer masks).

    >>> murmur2(b"c1"), murmur2(b"")
    (2069367011, 275646681)
    """
    length = len(data)
    h = 0x9747B28C ^ length
    end = length & ~3
    for k in struct.unpack_from(f"<{end >> 2}I", data):
        k = (k * _MURMUR2_M) & _U32
        k = ((k ^ (k >> 24)) * _MURMUR2_M) & _U32
        h = ((h * _MURMUR2_M) & _U32) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _MURMUR2_M) & _U32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _U32
    return h ^ (h >> 15)


def murmur2_many(keys: Sequence[bytes]) -> np.ndarray:
    """:func:`murmur2` of each of these keys, in one pass of numpy over them all (the
    keys zero-padded to whole words): a fifth of the time per key for a few hundred.

    >>> murmur2_many([b"c1", b"", b"customer-42"]).tolist() == [
    ...     murmur2(b"c1"), murmur2(b""), murmur2(b"customer-42")]
    True
    """
    count = len(keys)
    lengths = np.fromiter(map(len, keys), dtype=np.uint32, count=count)
    # At least one word of padding: the tail's bytes past a key's end read as zeros.
    width = (int(lengths.max(initial=0)) + 4) & ~3
    padded = b"".join(key.ljust(width, b"\0") for key in keys)
    data = np.frombuffer(padded, dtype=np.uint8).reshape(count, width)
    words = data.view("<u4").astype(np.uint32)
    whole = lengths >> 2
    h = np.uint32(0x9747B28C) ^ lengths
    for j in range(width >> 2):
        k = words[:, j] * _M
        k ^= k >> 24
        k *= _M
        h = np.where(j < whole, (h * _M) ^ k, h)
    rows, end = np.arange(count), whole << 2
    h ^= data[rows, end + 2].astype(np.uint32) << 16
    h ^= data[rows, end + 1].astype(np.uint32) << 8
    h = np.where(lengths & 3, (h ^ data[rows, end]) * _M, h)
    h ^= h >> 13
    h *= _M
    return h ^ (h >> 15)


_M = np.uint32(_MURMUR2_M)

#: Kafka's key hash (31 bits) of recent keys: a handler hashes each input record's key
#: for its partition check, then again for its score's partition. :func:`hash_keys`
#: fills it a fetched chunk at a time; emptied when full (an entry per customer of
#: 100,000 held 9.4 MiB, and missed most of them anyway, docs/benchmarks.md).
_KEY_HASHES: dict[bytes, int] = {}
KEY_HASHES_KEPT = 4_096


def hash_keys(keys: Iterable[bytes | None]) -> None:
    """Hash these record keys now, in one call, for :func:`partition_for` to look up."""
    wanted = [key for key in keys if key and key not in _KEY_HASHES]
    if wanted:
        _keep_hashes(wanted, (murmur2_many(wanted) & 0x7FFFFFFF).tolist())


def _keep_hashes(keys: Sequence[bytes], hashes: Iterable[int]) -> None:
    """Keep these keys' hashes; the kept ones are emptied first when they would not fit."""
    if len(_KEY_HASHES) + len(keys) > KEY_HASHES_KEPT:
        _KEY_HASHES.clear()
    _KEY_HASHES.update(zip(keys, hashes, strict=True))


def _key_hash(key: str) -> int:
    data = key.encode()
    hashed = _KEY_HASHES.get(data)
    if hashed is None:
        hashed = murmur2(data) & 0x7FFFFFFF
        _keep_hashes((data,), (hashed,))
    return hashed


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (as the Java client)."""
    return _key_hash(key) % partitions


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client for the configured cluster, closed on the way out."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(settings: Settings, *topics: NewTopic) -> None:
    """Create these topics exactly as given (tests and benchmarks, on a fresh broker)."""
    async with admin_client(settings) as admin:
        await admin.create_topics(list(topics))


async def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the input topics' common partition count.

    Raises ``RuntimeError`` when the input topics disagree on their partition count.
    """
    async with admin_client(settings) as admin:
        if settings.create_topics:
            await _create_missing(admin, settings, topic_specs(settings))
        described = await admin.describe_topics(list(settings.input_topics))
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        if len(set(counts.values())) != 1 or 0 in counts.values():
            raise RuntimeError(
                f"input topics must exist with the same number of partitions, found {counts}"
            )
        partitions = int(next(iter(counts.values())))
        # Internal topics are the worker's own business: always created when missing.
        await _create_missing(admin, settings, internal_topic_specs(settings, partitions))
    return partitions


async def create_all_topics(settings: Settings) -> list[str]:
    """``crm-scorer create-topics``: every topic the service uses, with its partitions
    and compaction, for clusters where workers may not create topics; returns the
    names of all of them."""
    forced = settings.model_copy(update={"create_topics": True})
    partitions = await ensure_topics(forced)
    async with admin_client(settings) as admin:
        await _create_missing(admin, settings, changelog_topic_specs(settings, partitions))
    specs = [
        *topic_specs(settings),
        *internal_topic_specs(settings, partitions),
        *changelog_topic_specs(settings, partitions),
    ]
    return [spec.name for spec in specs]


async def _create_missing(
    admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec]
) -> None:
    existing = set(await admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return
    new = [
        NewTopic(
            spec.name,
            spec.partitions or settings.topic_partitions,
            settings.topic_replicas,
            topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
        )
        for spec in missing
    ]
    with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
        await admin.create_topics(new)
    log.info("created topics: %s", ", ".join(spec.name for spec in missing))
