"""The worker's own histogram and counter types against prometheus-client's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from stream.metrics import AGE_BUCKETS, LoopCounter, LoopHistogram

amounts = st.lists(
    st.one_of(
        st.sampled_from(AGE_BUCKETS),  # on a bound: in its bucket
        st.floats(min_value=0, max_value=1e8, allow_nan=False),
    ),
    max_size=50,
)


def exposition(registry: CollectorRegistry) -> list[str]:
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


@given(amounts, amounts)
def test_a_loop_histogram_is_exposed_as_prometheus_clients_own(
    first: list[float], second: list[float]
) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h_seconds", "Doc.", ["topic"], buckets=AGE_BUCKETS, registry=theirs)
    mine = LoopHistogram("h_seconds", "Doc.", ["topic"], buckets=AGE_BUCKETS, registry=ours)
    for topic, values in (("a", first), ("b", second)):
        for value in values:
            reference.labels(topic).observe(value)
            mine.labels(topic).observe(value)
    assert exposition(ours) == exposition(theirs)


@given(st.lists(st.tuples(st.sampled_from("ab"), st.floats(0, 1e6, allow_nan=False)), max_size=30))
def test_a_loop_counter_is_exposed_as_prometheus_clients_own(incs: list[tuple[str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("c_total", "Doc.", ["topic", "outcome"], registry=theirs)
    mine = LoopCounter("c_total", "Doc.", ["topic", "outcome"], registry=ours)
    for topic, amount in incs:
        reference.labels(topic, "ok").inc(amount)
        mine.labels(topic, "ok").inc(amount)
    assert exposition(ours) == exposition(theirs)
