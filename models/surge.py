"""Sentiment surge: across all customers, is the share of negative feedback in the
latest event-time window well above its own recent baseline?

The window (default 7 days) is compared with the baseline just before it (default 28
days) by a one-sided two-proportion z-test. A surge needs a significant rise
(``z >= z_threshold``) that is also material (``min_rise`` in share) on enough feedback
(``min_count`` on each side). One alert per surge: the detector disarms when it fires
and re-arms only once the window is back near its baseline (``z < z_threshold / 2``).

>>> detector = SentimentSurge(window_days=1, baseline_days=4, min_count=20)
>>> day = 86_400_000
>>> hits = [detector.learn_one(d * day + i * 1000, i % 10 == 0)
...         for d in range(5) for i in range(40)]
>>> [h for h in hits if h is not None]
[]
>>> hits = [detector.learn_one(5 * day + i * 1000, i % 2 == 0) for i in range(40)]
>>> surges = [h for h in hits if h is not None]
>>> len(surges), surges[0].baseline_share
(1, 0.1)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from models.features import DAY_MS

#: Feedback is counted per minute of event time: the detector's memory is bounded by the
#: windows' length (35 days: 50,400 minutes, 5.8 MiB measured), not by the feedback in
#: them (a (time, negative) tuple per feedback took about 100 bytes: 340 MB for 35 days
#: of 100,000 a day). Feedback of an earlier minute than the latest (late) starts a
#: minute of its own. A minute's feedback leaves the window together, when the window's
#: start reaches the minute's start: at most a minute early.
BUCKET_MS = 60_000


def _count(buckets: deque[list[int]], start_ms: int, feedback: int, negative: int) -> None:
    """Add to the latest bucket if it is that minute's, else a new one (late feedback of
    an earlier minute goes last, and leaves with the minutes before it)."""
    if buckets and buckets[-1][0] == start_ms:
        buckets[-1][1] += feedback
        buckets[-1][2] += negative
    else:
        buckets.append([start_ms, feedback, negative])


@dataclass(frozen=True, slots=True)
class Surge:
    window_start_ms: int
    window_end_ms: int
    feedback: int
    negative: int
    baseline_feedback: int
    baseline_negative: int
    z: float

    @property
    def share(self) -> float:
        return self.negative / self.feedback

    @property
    def baseline_share(self) -> float:
        return self.baseline_negative / self.baseline_feedback


class SentimentSurge:
    """Negative-feedback share in a sliding event-time window against its baseline."""

    VERSION = "surge-z/1"

    def __init__(
        self,
        window_days: float = 7.0,
        baseline_days: float = 28.0,
        z_threshold: float = 4.0,
        min_rise: float = 0.1,
        min_count: int = 30,
    ) -> None:
        self.window_ms = int(window_days * DAY_MS)
        self.baseline_ms = int(baseline_days * DAY_MS)
        self.z_threshold = z_threshold
        self.min_rise = min_rise
        self.min_count = min_count
        #: [minute's start ms, feedback, negative] of the window and of its baseline,
        #: oldest first, and their sums.
        self.window: deque[list[int]] = deque()
        self.baseline: deque[list[int]] = deque()
        self.window_count = self.window_negative = 0
        self.baseline_count = self.baseline_negative = 0
        self.now_ms: int | None = None
        self.armed = True
        self.z = 0.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "window_count" in state:
            return
        # Pickled by d3b3595 or earlier: a (time, negative) tuple per feedback.
        for name in ("window", "baseline"):
            buckets: deque[list[int]] = deque()
            for ts_ms, negative in state[name]:
                _count(buckets, ts_ms - ts_ms % BUCKET_MS, 1, int(negative))
            setattr(self, name, buckets)
            setattr(self, f"{name}_count", len(state[name]))

    def adopt(self, config: SentimentSurge) -> bool:
        """Take the thresholds of ``config`` (a detector built from the current settings);
        False, changing nothing, when its windows differ (the counts would not fit)."""
        if (config.window_ms, config.baseline_ms) != (self.window_ms, self.baseline_ms):
            return False
        self.z_threshold = config.z_threshold
        self.min_rise = config.min_rise
        self.min_count = config.min_count
        return True

    def learn_one(self, ts_ms: int, negative: bool) -> Surge | None:
        """Count one feedback at event time ``ts_ms``; a :class:`Surge` when one starts."""
        if self.now_ms is None or ts_ms > self.now_ms:
            self.now_ms = ts_ms
        minute = ts_ms - ts_ms % BUCKET_MS
        if ts_ms > self.now_ms - self.window_ms:
            _count(self.window, minute, 1, int(negative))
            self.window_count += 1
            self.window_negative += negative
        elif ts_ms > self.now_ms - self.window_ms - self.baseline_ms:
            _count(self.baseline, minute, 1, int(negative))
            self.baseline_count += 1
            self.baseline_negative += negative
        self._slide()
        return self._test()

    def _slide(self) -> None:
        assert self.now_ms is not None
        window_start = self.now_ms - self.window_ms
        while self.window and self.window[0][0] <= window_start:
            start_ms, feedback, negative = self.window.popleft()
            self.window_count -= feedback
            self.window_negative -= negative
            _count(self.baseline, start_ms, feedback, negative)
            self.baseline_count += feedback
            self.baseline_negative += negative
        baseline_start = window_start - self.baseline_ms
        while self.baseline and self.baseline[0][0] <= baseline_start:
            _, feedback, negative = self.baseline.popleft()
            self.baseline_count -= feedback
            self.baseline_negative -= negative

    def _test(self) -> Surge | None:
        n1, n0 = self.window_count, self.baseline_count
        if n1 < self.min_count or n0 < self.min_count:
            self.z = 0.0
            return None
        k1, k0 = self.window_negative, self.baseline_negative
        p1, p0 = k1 / n1, k0 / n0
        pooled = (k1 + k0) / (n1 + n0)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0))
        self.z = (p1 - p0) / se if se > 0 else 0.0
        if not self.armed:
            self.armed = self.z < self.z_threshold / 2
            return None
        if self.z < self.z_threshold or p1 - p0 < self.min_rise:
            return None
        self.armed = False
        assert self.now_ms is not None
        return Surge(
            window_start_ms=self.now_ms - self.window_ms,
            window_end_ms=self.now_ms,
            feedback=n1,
            negative=k1,
            baseline_feedback=n0,
            baseline_negative=k0,
            z=self.z,
        )
