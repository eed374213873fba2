"""The topics of the service, their creation, and where a customer's events belong.

All input topics must have the same number of partitions and use Kafka's default
(murmur2) key partitioner: the worker keeps one table of customers and relies on a
customer's purchases, browsing and feedback all landing on the same partition number.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from stream.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    compacted: bool = False


def topic_specs(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.topic_purchases),
        TopicSpec(settings.topic_browsing),
        TopicSpec(settings.topic_feedback),
        TopicSpec(settings.topic_alerts),
        TopicSpec(settings.topic_scores, compacted=True),
        TopicSpec(settings.topic_dead_letter),
    ]


@functools.lru_cache(maxsize=65_536)
def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (as the Java client)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


async def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the input topics' common partition count.

    Raises ``RuntimeError`` when the input topics disagree on their partition count.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing and settings.create_topics:
            new = [
                NewTopic(
                    spec.name,
                    settings.topic_partitions,
                    settings.topic_replicas,
                    topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
                )
                for spec in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(new)
            log.info("created topics: %s", ", ".join(spec.name for spec in missing))
        described = await admin.describe_topics(list(settings.input_topics))
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise RuntimeError(
            f"input topics must exist with the same number of partitions, found {counts}"
        )
    return int(next(iter(counts.values())))
