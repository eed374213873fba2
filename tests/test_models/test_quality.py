"""Guards for the model figures in docs/models.md, on data small enough for CI.

The shipped extract always runs; ``../shared/data`` (present in CI) runs the full churn
and segmentation tasks and sentiment subsets. Thresholds sit a margin below what was
measured, so a regression fails and noise does not.
"""

from __future__ import annotations

import pytest

from eventdata.evaluate import (
    churn_auc,
    demand_mae,
    offer_hit_rate,
    segmentation,
    sentiment_accuracy,
)
from eventdata.events import DEMO_DATA
from models.retention import ModelConfig
from tests.conftest import SHARED_DATA

shared = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")


def test_churn_on_the_shipped_extract() -> None:
    # Measured 0.730 on 290 customers; recency alone 0.743 here: with ~5,000 matured
    # labels the model has not caught up with recency yet (on the full data it has).
    result = churn_auc(DEMO_DATA)
    assert result.auc >= 0.70


def test_sentiment_on_the_shipped_extract() -> None:
    assert sentiment_accuracy(DEMO_DATA, "reviews-zh")[0] >= 0.70  # measured 0.724
    assert sentiment_accuracy(DEMO_DATA, "sentiment-en")[0] >= 0.74  # measured 0.777


def test_segments_on_the_shipped_extract() -> None:
    result = segmentation(DEMO_DATA)  # measured 1.12x
    assert result.ratio <= 1.25
    assert len(set(result.names.values())) == result.k


@pytest.mark.shared_data
@shared
def test_churn_auc_on_online_retail() -> None:
    result = churn_auc(SHARED_DATA)  # measured 0.7402, ECE 0.038
    assert result.auc >= 0.73
    assert result.auc > result.recency_auc + 0.03
    assert result.recency_auc == pytest.approx(0.685, abs=0.002)  # the anchor
    assert result.calibration_error <= 0.08


@pytest.mark.shared_data
@shared
def test_segmentation_inertia_on_online_retail() -> None:
    result = segmentation(SHARED_DATA)
    assert result.ratio <= 1.10


@pytest.mark.shared_data
@shared
def test_sentiment_on_subsets_of_both_corpora() -> None:
    assert sentiment_accuracy(SHARED_DATA, "reviews-zh", limit=6000)[0] >= 0.78  # 0.798
    assert sentiment_accuracy(SHARED_DATA, "sentiment-en", limit=6000)[0] >= 0.81


def test_offers_on_the_shipped_extract() -> None:
    # 118 customers: measured 0.246 against 0.237 for the most ordered; too few to rank
    # the two, enough to check the measurement runs end to end.
    result = offer_hit_rate(DEMO_DATA)
    assert result.customers >= 100 and 0.15 <= result.hit_rate <= 1.0


@pytest.mark.shared_data
@shared
def test_offers_beat_the_most_ordered_on_online_retail() -> None:
    one = offer_hit_rate(SHARED_DATA)  # measured 0.290 against 0.207, 1,294 customers
    assert one.hit_rate >= 0.27 and one.hit_rate >= one.popular_hit_rate + 0.06
    eight = offer_hit_rate(SHARED_DATA, partitions=8)  # measured 0.252 against 0.202
    assert eight.hit_rate >= eight.popular_hit_rate + 0.03


def test_demand_forecast_on_the_shipped_extract() -> None:
    # 2,571 forecasts of 316 customers: online 215.2, last 30 days 268.2, batch tree 256.0.
    result = demand_mae(DEMO_DATA)
    assert result.targets >= 2000
    assert result.online_mae < result.last_period_mae - 20


@pytest.mark.shared_data
@shared
def test_demand_forecast_beats_the_last_30_days_on_online_retail() -> None:
    # 29,420 forecasts: online 265.7, last 30 days 338.5, batch tree 260.8, no spend 286.6.
    result = demand_mae(SHARED_DATA)
    assert result.online_mae <= 275 and result.online_mae < result.last_period_mae - 50
    assert result.online_mae < result.zero_mae
    assert result.online_mae <= result.batch_mae * 1.06


def test_influence_as_a_churn_feature_runs_on_the_shipped_extract() -> None:
    # Measured 0.7286 with it, 0.7296 without (on the full data 0.7358 and 0.7402: no
    # lift, docs/models.md); this keeps the measurement running.
    plain = churn_auc(DEMO_DATA).auc
    influenced = churn_auc(DEMO_DATA, config=ModelConfig(churn_uses_influence=True)).auc
    assert abs(influenced - plain) <= 0.03
