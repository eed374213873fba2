from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream.producer import route
from stream.topics import murmur2, partition_for

TOPICS = {"purchase": "p", "browse": "b", "feedback": "f"}


@given(st.text(min_size=1, max_size=64), st.integers(1, 64))
def test_partition_for_matches_kafkas_default_partitioner(key: str, n: int) -> None:
    parts = list(range(n))
    assert partition_for(key, n) == DefaultPartitioner()(key.encode(), parts, parts)


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


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
