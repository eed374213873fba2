from __future__ import annotations

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


def test_rate_limit_refills_at_its_rate_up_to_the_burst() -> None:
    t = FakeTime()
    limit = RateLimit(rate_per_s=10, burst=5, monotonic=t)
    assert sum(limit.allow() for _ in range(20)) == 5
    t.now = 0.5
    assert sum(limit.allow() for _ in range(20)) == 5
    t.now = 100.0
    assert sum(limit.allow() for _ in range(20)) == 5
