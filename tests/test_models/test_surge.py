from __future__ import annotations

import pickle
import random
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import DAY_MS
from models.surge import BUCKET_MS, SentimentSurge, Surge

HOUR = 3_600_000


def feed(
    detector: SentimentSurge, days: range, per_day: int, share: float, seed: int
) -> list[Surge]:
    rng = random.Random(seed)
    surges: list[Surge] = []
    for day in days:
        for i in range(per_day):
            surge = detector.learn_one(day * DAY_MS + i * (DAY_MS // per_day), rng.random() < share)
            if surge is not None:
                surges.append(surge)
    return surges


def test_a_steady_negative_share_never_alerts() -> None:
    detector = SentimentSurge()
    # 300 days at 25% negative, 20 feedback a day: noise alone must not reach z = 4.
    assert feed(detector, range(300), 20, 0.25, seed=1) == []


def test_one_alert_per_surge_with_the_window_figures() -> None:
    detector = SentimentSurge()
    assert feed(detector, range(60), 20, 0.2, seed=2) == []
    surges = feed(detector, range(60, 74), 20, 0.6, seed=3)  # two bad weeks
    assert len(surges) == 1
    surge = surges[0]
    assert surge.share > surge.baseline_share + 0.1 and surge.z >= 4.0
    assert surge.window_end_ms - surge.window_start_ms == 7 * DAY_MS
    assert 60 * DAY_MS <= surge.window_end_ms < 74 * DAY_MS
    # Back to normal for long enough to re-arm, then a second surge is a new alert.
    assert feed(detector, range(74, 140), 20, 0.2, seed=4) == []
    assert len(feed(detector, range(140, 150), 20, 0.7, seed=5)) == 1


def test_too_little_feedback_is_no_evidence() -> None:
    detector = SentimentSurge(min_count=30)
    assert feed(detector, range(40), 1, 0.2, seed=6) == []
    assert feed(detector, range(40, 47), 3, 1.0, seed=7) == []  # 21 in the window < 30


def test_late_feedback_is_counted_in_the_window_it_belongs_to() -> None:
    detector = SentimentSurge(window_days=1, baseline_days=2, min_count=1)
    detector.learn_one(3 * DAY_MS, False)
    detector.learn_one(3 * DAY_MS - 2 * HOUR, True)  # late, still inside the window
    detector.learn_one(int(1.5 * DAY_MS), True)  # late, in the baseline
    detector.learn_one(0, True)  # older than window + baseline: ignored
    assert (detector.window_count, detector.window_negative) == (2, 1)
    assert (detector.baseline_count, detector.baseline_negative) == (1, 1)


class PerFeedbackSurge(SentimentSurge):
    """The detector as it was until d3b3595: a (time, negative) per feedback. The
    reference for the minute buckets, where feedback comes on the minute."""

    def learn_one(self, ts_ms: int, negative: bool) -> Surge | None:
        if self.now_ms is None or ts_ms > self.now_ms:
            self.now_ms = ts_ms
        if ts_ms > self.now_ms - self.window_ms:
            self.items.append((ts_ms, negative))
        elif ts_ms > self.now_ms - self.window_ms - self.baseline_ms:
            self.old.append((ts_ms, negative))
        window_start = self.now_ms - self.window_ms
        while self.items and self.items[0][0] <= window_start:
            self.old.append(self.items.popleft())
        while self.old and self.old[0][0] <= window_start - self.baseline_ms:
            self.old.popleft()
        self.window_count, self.window_negative = len(self.items), sum(n for _, n in self.items)
        self.baseline_count, self.baseline_negative = len(self.old), sum(n for _, n in self.old)
        return self._test()

    def __init__(self, **kwargs: float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.items: deque[tuple[int, bool]] = deque()
        self.old: deque[tuple[int, bool]] = deque()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3 * 24 * 60, 40 * 24 * 60), st.booleans()),
        min_size=1,
        max_size=400,
    )
)
def test_minute_buckets_count_what_a_tuple_per_feedback_counted(
    feedback: list[tuple[int, bool]],
) -> None:
    """On the minute, late or not, the buckets give the same counts, z and surges."""
    buckets = SentimentSurge(window_days=2, baseline_days=5, min_count=5, z_threshold=2.0)
    items = PerFeedbackSurge(window_days=2, baseline_days=5, min_count=5, z_threshold=2.0)
    for minute, negative in sorted(feedback, key=lambda f: f[0] // 1000):  # mostly in order
        ts_ms = (40 * 24 * 60 + minute) * BUCKET_MS
        assert buckets.learn_one(ts_ms, negative) == items.learn_one(ts_ms, negative)
        assert (buckets.window_count, buckets.window_negative) == (
            items.window_count,
            items.window_negative,
        )
        assert (buckets.baseline_count, buckets.baseline_negative) == (
            items.baseline_count,
            items.baseline_negative,
        )
        assert buckets.z == items.z


def test_memory_follows_the_minutes_not_the_feedback() -> None:
    detector = SentimentSurge()
    for i in range(100_000):  # 100,000 feedback in 100 minutes
        detector.learn_one(50 * DAY_MS + i * 60, i % 4 == 0)
    assert detector.window_count == 100_000 and detector.window_negative == 25_000
    assert len(detector.window) == 100


def test_a_detector_pickled_with_a_tuple_per_feedback_loads_counted_by_the_minute() -> None:
    reference = SentimentSurge(window_days=1, baseline_days=2, min_count=1)
    for i in range(600):
        reference.learn_one(2 * DAY_MS + i * 10 * 60_000, i % 3 == 0)
    # Its state as d3b3595 pickled it: the same counts, a tuple per feedback.
    per_feedback = PerFeedbackSurge(window_days=1, baseline_days=2, min_count=1)
    for i in range(600):
        per_feedback.learn_one(2 * DAY_MS + i * 10 * 60_000, i % 3 == 0)
    state = {**vars(per_feedback), "window": per_feedback.items, "baseline": per_feedback.old}
    for name in ("items", "old", "window_count", "baseline_count"):
        del state[name]
    loaded = pickle.loads(pickle.dumps(reference))
    loaded.__setstate__(state)
    for name in ("window_count", "window_negative", "baseline_count", "baseline_negative"):
        assert getattr(loaded, name) == getattr(reference, name)
    assert list(loaded.window) == list(reference.window)
    assert list(loaded.baseline) == list(reference.baseline)
