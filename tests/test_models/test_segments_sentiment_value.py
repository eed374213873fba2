from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from river import naive_bayes

from bench.workload import review_texts
from models.segments import ARCHETYPES, SegmentModel
from models.sentiment import (
    COUNT_LIMIT,
    MultinomialNaiveBayes,
    SentimentModel,
    feature_buckets,
    rating_label,
    text_features,
)
from models.value import expected_clv, value_at_risk


def blobs(n: int, seed: int = 3) -> list[dict[str, float]]:
    rng = random.Random(seed)
    centers = [(0.5, 3.0, 8.0), (5.0, 0.7, 4.0), (1.0, 1.0, 5.0), (4.0, 2.5, 7.5), (2.0, 0.5, 3.0)]
    rows = []
    for _ in range(n):
        r, f, m = rng.choice(centers)
        rows.append(
            {
                "recency_log": r + rng.gauss(0, 0.2),
                "frequency_log": f + rng.gauss(0, 0.1),
                "monetary_log": m + rng.gauss(0, 0.2),
            }
        )
    return rows


def test_segments_get_distinct_archetype_names_and_do_not_flap() -> None:
    model = SegmentModel(n_clusters=5, halflife=0.05, seed=1)
    for row in blobs(3000):
        model.learn_one(row)
    names = model.names()
    assert len(set(names.values())) == 5 and set(names.values()) <= set(ARCHETYPES)
    champion = {"recency_log": 0.5, "frequency_log": 3.0, "monetary_log": 8.0}
    lost = {"recency_log": 5.0, "frequency_log": 0.7, "monetary_log": 4.0}
    assert names[model.assign(champion)] in ("champions", "loyal")
    assert names[model.assign(lost)] in ("hibernating", "lost", "at_risk")
    # Hysteresis: a point roughly between two centroids keeps its current segment.
    here = model.assign(champion)
    dist = model.distances(champion)
    other = min((c for c in dist if c != here), key=dist.__getitem__)
    assert model.assign(champion, current=other) in (other, here)
    if dist[here] >= 0.8 * dist[other]:
        assert model.assign(champion, current=other) == other


def test_text_features_cover_chinese_characters_and_english_words() -> None:
    zh = text_features("质量很好")
    assert {"质", "质量", "质量很"} <= set(zh)
    en = text_features("Not GOOD at all @Brand http://x.y/z")
    assert {"w:not", "w:good", " go", "w:@user", "w:url"} <= set(en)
    assert "w:brand" not in en


def test_sentiment_learns_from_ratings_only() -> None:
    assert rating_label(5) is True and rating_label(4) is True
    assert rating_label(2) is False and rating_label(1) is False
    assert rating_label(3) is None and rating_label(None) is None
    model = SentimentModel()
    assert model.predict_proba("anything") == 0.5
    for _ in range(5):
        model.learn_one("很好 great", True)
        model.learn_one("很差 terrible", False)
    assert model.predict_proba("很好") > 0.5 > model.predict_proba("terrible")


def test_value_formulas() -> None:
    assert expected_clv(600.0, 60.0, 0.5) == pytest.approx(900.0)
    assert expected_clv(600.0, 10.0, 0.5) == pytest.approx(600.0 / 30 * 90)  # 30-day floor
    assert expected_clv(-50.0, 60.0, 0.5) == 0.0
    assert expected_clv(365.0, 365.0, 1e-9) == pytest.approx(3 * 365.0)  # capped at 3 years
    assert value_at_risk(0.25, 400.0) == pytest.approx(100.0)


def test_live_quality_windows_are_prequential() -> None:
    from models.sentiment import SentimentModel

    model = SentimentModel()
    assert model.recent_accuracy() is None
    for _ in range(20):
        model.learn_one("great, love it", True)
        model.learn_one("awful, broken", False)
    accuracy = model.recent_accuracy()
    # The first of each is a guess before anything was learned; then all are right.
    assert accuracy is not None and 0.9 <= accuracy < 1.0


def test_naive_bayes_gives_rivers_probabilities_on_the_buckets_test_then_train() -> None:
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(5).shuffle(texts)
    ours, river = MultinomialNaiveBayes(), naive_bayes.MultinomialNB()  # type: ignore[no-untyped-call]
    assert ours.predict_proba_one({"w:x": 1}) == {}
    for text in texts[:900]:
        features, label = text_features(text.text), text.label == "positive"
        bucketed = dict.fromkeys(feature_buckets(features).tolist(), 1)
        if river.class_counts:
            theirs = river.predict_proba_one(bucketed)  # type: ignore[no-untyped-call]
            mine = ours.predict_proba_one(features)
            assert mine.keys() == theirs.keys()
            for c, proba in theirs.items():
                assert mine[c] == pytest.approx(proba, rel=1e-9, abs=1e-12)
        ours.learn_one(features, label)
        river.learn_one(bucketed, label)  # type: ignore[no-untyped-call]
    assert ours.vocabulary == len(river.feature_counts)


def test_naive_bayes_memory_is_fixed_and_its_checkpoint_holds_what_it_learned() -> None:
    """However many texts, a class's counts are one array of 2**bits; pickled, only the
    buckets learned, and restored it predicts the same."""
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(7).shuffle(texts)
    model = MultinomialNaiveBayes()
    sizes = []
    for n, text in enumerate(texts[:1200]):
        model.learn_one(text_features(text.text), text.label == "positive")
        if n in (99, 1199):
            sizes.append(sum(c.nbytes for c in model.counts.values()))
    assert sizes == [2 * 2 * 2**19] * 2
    pickled = pickle.dumps(model)
    learned = sum(int((c != 0).sum()) for c in model.counts.values())
    assert len(pickled) < 6 * learned + 4096 < sizes[-1] / 2
    restored = pickle.loads(pickled)
    # As written by main for a while: the learned buckets themselves, not their gaps.
    state = {k: v for k, v in vars(model).items() if k != "counts"}
    state["counts"] = {c: (np.flatnonzero(a), a[a != 0]) for c, a in model.counts.items()}
    buckets_then = pickle.loads(pickle.dumps(PickledAs(MultinomialNaiveBayes, state)))
    for other in (restored, buckets_then):
        assert other.vocabulary == model.vocabulary and other.class_totals == model.class_totals
        for c, counts in model.counts.items():
            assert np.array_equal(other.counts[c], counts)
    for text in texts[1200:1300]:
        features = text_features(text.text)
        assert restored.predict_proba_one(features) == model.predict_proba_one(features)


def test_counts_at_their_limit_halve_and_the_prediction_stays() -> None:
    """A bucket about to pass 16 bits halves every count (rounding up) instead of
    wrapping: the classes' odds and each learned bucket survive."""
    model = MultinomialNaiveBayes()
    good, bad, both = model.buckets(["w:good"]), model.buckets(["w:bad"]), model.buckets(["w:ok"])
    for _ in range(3):
        model.learn_buckets(np.concatenate([good, both]), True)
        model.learn_buckets(bad, False)
    model.counts[True][both] = COUNT_LIMIT - 1  # as if 65,534 positive texts had it
    model.class_totals[True] += COUNT_LIMIT - 4
    before = [model.predict_buckets(b)[True] for b in (good, bad, both)]
    model.learn_buckets(both, True)  # reaches the limit: still exact
    assert int(model.counts[True][both][0]) == COUNT_LIMIT and model.class_counts[True] == 4
    model.learn_buckets(both, True)  # would pass it
    assert int(model.counts[True][both][0]) == (COUNT_LIMIT + 1) // 2 + 1
    assert int(model.counts[True][good][0]) == 2 and int(model.counts[False][bad][0]) == 2
    assert model.class_counts == {True: 3, False: 2} and model.vocabulary == 3
    assert model.class_totals == {c: float(counts.sum()) for c, counts in model.counts.items()}
    after = [model.predict_buckets(b)[True] for b in (good, bad, both)]
    assert [p > 0.5 for p in after] == [p > 0.5 for p in before] == [False, False, True]
    assert max(abs(a - b) for a, b in zip(after, before, strict=True)) < 0.05


def test_a_checkpoint_of_32_bit_counts_loads_halved_to_fit() -> None:
    model = MultinomialNaiveBayes()
    state = {k: v for k, v in vars(model).items() if k != "counts"}
    buckets = np.array([5, 9, 700], dtype=np.int64)
    state["class_counts"] = {True: 150_000, False: 3}
    state["class_totals"] = {True: 150_003.0, False: 3.0}
    state["vocabulary"] = 3
    state["bucket_gaps"] = {
        True: (np.diff(buckets[:2], prepend=0).astype(np.int32), np.array([150_000, 3], np.int32)),
        False: (np.diff(buckets[2:], prepend=0).astype(np.int32), np.array([3], np.int32)),
    }
    loaded = pickle.loads(pickle.dumps(PickledAs(MultinomialNaiveBayes, state)))
    assert loaded.counts[True].dtype == np.uint16
    assert loaded.counts[True][buckets[:2]].tolist() == [37_500, 1]  # halved twice, up
    assert loaded.counts[False][buckets[2:]].tolist() == [1]
    assert loaded.class_counts == {True: 37_500, False: 1}
    assert loaded.class_totals == {True: 37_501.0, False: 1.0} and loaded.vocabulary == 3


@dataclass
class PickledAs:
    """Pickles as an instance of ``kind`` with this ``state``, as older code wrote it."""

    kind: type
    state: dict[str, Any]

    def __reduce__(self) -> tuple[type, tuple[()], dict[str, Any]]:
        return self.kind, (), self.state


def test_a_model_saved_with_counts_by_n_gram_loads_with_them_in_buckets() -> None:
    """Checkpoints and model files written before the buckets held River's
    ``MultinomialNB``, and then counts keyed by n-gram: both load, each n-gram's counts
    in its bucket, and predict as a model that learned the same texts in buckets."""
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(6).shuffle(texts)
    texts = texts[:300]
    river = naive_bayes.MultinomialNB()  # type: ignore[no-untyped-call]
    bucketed = SentimentModel()
    for text in texts:
        river.learn_one(text_features(text.text), text.label == "positive")  # type: ignore[no-untyped-call]
        bucketed.learn_one(text.text, text.label == "positive")
    saved = SentimentModel()
    saved.model = river  # type: ignore[assignment]  # as checkpoints and model files before held it
    saved.learned = bucketed.learned
    from_river = pickle.loads(pickle.dumps(saved))
    # The layout of 2026-12-02 to 2026-12-06: a dict of counts per class, by n-gram.
    by_n_gram = {
        "alpha": 1.0,
        "class_counts": dict(river.class_counts),
        "feature_counts": {
            c: {f: counts[c] for f, counts in river.feature_counts.items() if c in counts}
            for c in river.class_counts
        },
        "class_totals": dict(river.class_totals),
        "vocabulary": len(river.feature_counts),
    }
    flat = pickle.loads(pickle.dumps(PickledAs(MultinomialNaiveBayes, by_n_gram)))
    for restored in (from_river.model, flat):
        assert isinstance(restored, MultinomialNaiveBayes)
        assert restored.vocabulary == bucketed.model.vocabulary
        for c, counts in bucketed.model.counts.items():
            # Two n-grams of one text in one bucket count once when learned, twice here.
            assert (restored.counts[c] >= counts).all()
            assert (restored.counts[c] != counts).sum() <= 10
    for text in texts[:50]:
        assert from_river.predict_proba(text.text) == pytest.approx(
            bucketed.predict_proba(text.text), abs=1e-3
        )


def test_a_cached_prediction_is_used_once_and_never_pickled() -> None:
    model = SentimentModel()
    for _ in range(3):
        model.learn_one("great product, love it", True)
        model.learn_one("awful, broken and late", False)
    secret = "call me about my broken parcel 0471"
    before = model.predict_proba(secret)
    assert secret.encode() not in pickle.dumps(model)  # a checkpoint holds no text
    model.learn_one(secret, False)  # learned with the prediction it was scored with
    assert model.recent[-1] == (before < 0.5)
    assert model.predict_proba(secret) < before  # the model changed: predicted anew
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict_proba(secret) == model.predict_proba(secret)
