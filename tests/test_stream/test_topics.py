from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream import topics
from stream.producer import route
from stream.topics import hash_keys, murmur2, murmur2_many, partition_for

TOPICS = {"purchase": "p", "browse": "b", "feedback": "f"}


@given(st.text(min_size=1, max_size=64), st.integers(1, 64))
def test_partition_for_matches_kafkas_default_partitioner(key: str, n: int) -> None:
    parts = list(range(n))
    assert partition_for(key, n) == DefaultPartitioner()(key.encode(), parts, parts)


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.lists(st.binary(max_size=40), max_size=30))
def test_murmur2_of_many_keys_at_once_is_each_ones(keys: list[bytes]) -> None:
    assert murmur2_many(keys).tolist() == [aiokafka_murmur2(key) for key in keys]


@given(st.lists(st.text(min_size=1, max_size=20), max_size=40), st.integers(1, 64))
def test_partitions_of_keys_hashed_ahead_are_kafkas(keys: list[str], n: int) -> None:
    hash_keys([key.encode() for key in keys[::2]])
    parts = list(range(n))
    for key in keys:
        assert partition_for(key, n) == DefaultPartitioner()(key.encode(), parts, parts)
    assert len(topics._KEY_HASHES) <= topics.KEY_HASHES_KEPT


def test_route_reads_only_what_routing_needs() -> None:
    assert route(b'{"type":"browse","customer_id":"c1","ts":5}', TOPICS) == ("b", b"c1", 5)
    assert route(b'{"type":"feedback","customer_id":"c1","ts":"2011-01-01T00:00:00Z"}', TOPICS) == (
        "f",
        b"c1",
        None,
    )
    # Routable but invalid: sent, so the worker dead-letters it with the reason.
    assert route(b'{"type":"purchase","customer_id":"c1"}', TOPICS) == ("p", b"c1", None)
    for unroutable in (
        b"not json",
        b"[1]",
        b'{"type":"x","customer_id":"c"}',
        b'{"type":"browse","customer_id":7}',
    ):
        assert route(unroutable, TOPICS) is None
