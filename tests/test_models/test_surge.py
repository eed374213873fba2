from __future__ import annotations

import random

from models.features import DAY_MS
from models.surge import SentimentSurge, Surge

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
    assert (len(detector.window), detector.window_negative) == (2, 1)
    assert (len(detector.baseline), detector.baseline_negative) == (1, 1)
