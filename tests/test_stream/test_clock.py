from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from stream.clock import RateLimit, Watermark


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watermark_is_the_slowest_active_partition_and_never_goes_back() -> None:
    t = FakeTime()
    wm = Watermark(idle_s=5, monotonic=t)
    assert wm.current() is None
    assert wm.observe(("p", 0), 100) == 100
    assert wm.observe(("b", 0), 900) == 100  # purchases are behind: the clock waits
    assert wm.observe(("p", 0), 500) == 500
    assert wm.observe(("p", 0), 50) == 500  # a late event moves nothing back
    t.now = 6.0  # purchases silent for 6 s: idle
    assert wm.current() == 900  # nothing active: the latest of all
    assert wm.observe(("b", 0), 1000) == 1000
    t.now = 7.0
    assert wm.observe(("p", 0), 600) == 1000  # back, but behind: the clock stays


class DefinedWatermark:
    """The watermark as its docstring defines it, every source counted at every step."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.latest: dict[int, int] = {}
        self.seen_at: dict[int, float] = {}
        self.value: int | None = None

    def at(self, now: float) -> int | None:
        if not self.latest:
            return None
        active = [ts for s, ts in self.latest.items() if now - self.seen_at[s] <= self.idle_s]
        low = min(active) if active else max(self.latest.values())
        self.value = low if self.value is None else max(self.value, low)
        return self.value

    def observe(self, source: int, ts_ms: int, now: float) -> int | None:
        self.latest[source] = max(ts_ms, self.latest.get(source, ts_ms))
        self.seen_at[source] = now
        return self.at(now)


steps = st.lists(
    st.tuples(
        st.integers(0, 3),  # the source
        st.integers(0, 1_000),  # its event time
        st.sampled_from([0.0, 0.5, 2.0, 4.9, 5.0, 5.1, 12.0]),  # wall time passing first
        st.booleans(),  # current() asked, not an event
    ),
    max_size=60,
)


@given(steps)
# A source goes idle between two events of another, active one: the watermark moves.
@example([(0, 100, 0.0, False), (1, 500, 2.0, False), (1, 600, 4.9, False)])
def test_watermark_moves_as_defined_though_it_counts_sources_only_when_it_may_move(
    events: list[tuple[int, int, float, bool]],
) -> None:
    t = FakeTime()
    wm = Watermark(idle_s=5, monotonic=t)
    defined = DefinedWatermark(idle_s=5)
    for source, ts_ms, passing, asked in events:
        t.now += passing
        if asked:
            assert wm.current() == defined.at(t.now)
        else:
            assert wm.observe(source, ts_ms) == defined.observe(source, ts_ms, t.now)


def test_rate_limit_refills_at_its_rate_up_to_the_burst() -> None:
    t = FakeTime()
    limit = RateLimit(rate_per_s=10, burst=5, monotonic=t)
    assert sum(limit.allow() for _ in range(20)) == 5
    t.now = 0.5
    assert sum(limit.allow() for _ in range(20)) == 5
    t.now = 100.0
    assert sum(limit.allow() for _ in range(20)) == 5
