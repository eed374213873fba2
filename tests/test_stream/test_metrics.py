"""The worker's own histogram type against prometheus-client's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from stream.metrics import AGE_BUCKETS, LoopHistogram

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
