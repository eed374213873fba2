"""Event time and wall time at the Kafka edge: the input's low watermark, and the global
alert rate limit. Pure classes, no Faust; the wall clock is injectable for tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable


class Watermark:
    """Low watermark of event time over input partitions.

    The worker reads three topics and many partitions independently, so the largest event
    time seen runs ahead of partitions that are behind; labels matured or customers
    called quiet by that clock would be wrong. The watermark is the least of the latest
    event times of the partitions that delivered within ``idle_s`` (an idle partition
    must not hold the clock back forever). It never goes backwards.

    >>> now = [0.0]
    >>> wm = Watermark(idle_s=10, monotonic=lambda: now[0])
    >>> wm.observe(("purchases", 0), 1_000), wm.observe(("browsing", 0), 5_000)
    (1000, 1000)
    >>> now[0] = 11.0  # purchases went quiet
    >>> wm.observe(("browsing", 0), 6_000)
    6000
    """

    def __init__(self, idle_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.monotonic = monotonic
        self.latest: dict[Hashable, int] = {}
        self.seen_at: dict[Hashable, float] = {}
        self.value: int | None = None
        #: No source goes idle before this (an earlier bound is fine): until then, and
        #: while the events come from sources past the watermark, it cannot move.
        self._recount_at = -math.inf
        #: As of the last count: the active source at the low mark, and the least latest
        #: event time of the other active ones (they only grow: a bound from below).
        self._low_source: Hashable | None = None
        self._others_low = -math.inf

    def observe(self, source: Hashable, ts_ms: int) -> int:
        """Count an event of ``source`` (topic, partition); the watermark after it."""
        now = self.monotonic()
        latest = self.latest.get(source)
        seen_at = self.seen_at.get(source)
        if latest is None or ts_ms > latest:
            self.latest[source] = ts_ms
        self.seen_at[source] = now
        # Counting every source per event was 1% of the worker's samples: the low mark
        # only moves when its source may be the one moving, or one (re)joins or idles.
        value = self.value
        if (
            value is not None
            and latest is not None
            and seen_at is not None
            and now - seen_at <= self.idle_s
            and now < self._recount_at
        ):
            if latest > value:
                return value
            # The source at the low mark, still at or below every other: it is the low
            # mark (a worker catching up reads a partition's batch at the low mark: 3% of
            # its samples went to counting the sources for each of its events).
            if source == self._low_source and ts_ms <= self._others_low:
                if ts_ms > value:
                    self.value = value = ts_ms
                return value
        current = self.current()
        assert current is not None
        return current

    def current(self) -> int | None:
        """The watermark now (partitions may have gone idle since the last event);
        ``None`` before the first event."""
        if not self.latest:
            return None
        now = self.monotonic()
        idle_s = self.idle_s
        seen_at = self.seen_at
        latest = self.latest
        active = [source for source in latest if now - seen_at[source] <= idle_s]
        if active:
            low_source = min(active, key=latest.__getitem__)
            low = latest[low_source]
            self._low_source = low_source
            self._others_low = min(
                (latest[source] for source in active if source != low_source), default=math.inf
            )
            self._recount_at = min(seen_at[source] for source in active) + idle_s
        else:
            low = max(latest.values())
            self._low_source = None
            self._recount_at = -math.inf
        if self.value is None or low > self.value:
            self.value = low
        return self.value


class RateLimit:
    """Token bucket: ``rate_per_s`` on average, bursts up to ``burst``.

    >>> now = [0.0]
    >>> limit = RateLimit(rate_per_s=1, burst=2, monotonic=lambda: now[0])
    >>> [limit.allow() for _ in range(3)]
    [True, True, False]
    >>> now[0] = 1.0
    >>> limit.allow()
    True
    """

    def __init__(
        self, rate_per_s: float, burst: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.monotonic = monotonic
        self.tokens = burst
        self.updated = monotonic()

    def allow(self) -> bool:
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
