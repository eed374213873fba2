from __future__ import annotations

import pickle
import random

import pytest
from river import naive_bayes

from bench.workload import review_texts
from models.segments import ARCHETYPES, SegmentModel
from models.sentiment import (
    MultinomialNaiveBayes,
    SentimentModel,
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


def test_naive_bayes_gives_rivers_probabilities_test_then_train() -> None:
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(5).shuffle(texts)
    ours, river = MultinomialNaiveBayes(), naive_bayes.MultinomialNB()  # type: ignore[no-untyped-call]
    assert ours.predict_proba_one({"w:x": 1}) == {}
    for text in texts[:900]:
        features, label = text_features(text.text), text.label == "positive"
        if river.class_counts:
            theirs = river.predict_proba_one(features)  # type: ignore[no-untyped-call]
            mine = ours.predict_proba_one(features)
            assert mine.keys() == theirs.keys()
            for c, proba in theirs.items():
                assert mine[c] == pytest.approx(proba, rel=1e-9, abs=1e-12)
        ours.learn_one(features, label)
        river.learn_one(features, label)  # type: ignore[no-untyped-call]
    assert ours.vocabulary == len(river.feature_counts)


def test_naive_bayes_models_share_one_string_per_n_gram_also_once_restored() -> None:
    """The worker keeps a model per partition, each learning its own texts: the n-gram
    keys are interned, so the same n-gram in two classes, two partitions or a restored
    checkpoint is one string, not one per text that brought it."""
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(7).shuffle(texts)
    texts = texts[:400]
    models = [MultinomialNaiveBayes() for _ in range(2)]
    for n, text in enumerate(texts):
        # Each model its own texts, and its own string objects for them (as decoded).
        models[n % 2].learn_one(text_features(text.text), text.label == "positive")
    restored = pickle.loads(pickle.dumps(models[0]))
    assert restored.feature_counts == models[0].feature_counts
    keys: dict[str, int] = {}
    for model in (*models, restored):
        for counts in model.feature_counts.values():
            for feature in counts:
                keys.setdefault(feature, id(feature))
                assert id(feature) == keys[feature], feature
    positive, negative = models[0].feature_counts[True], models[1].feature_counts[False]
    assert len(positive.keys() & negative.keys()) > 100  # so the check above had work


def test_a_model_saved_with_rivers_naive_bayes_loads_and_predicts_the_same() -> None:
    texts = [t for t in review_texts() if t.label != "neutral"]
    random.Random(6).shuffle(texts)
    texts = texts[:300]
    saved = SentimentModel()
    river = naive_bayes.MultinomialNB()  # type: ignore[no-untyped-call]
    for text in texts:
        river.learn_one(text_features(text.text), text.label == "positive")  # type: ignore[no-untyped-call]
    saved.model = river  # type: ignore[assignment]  # as checkpoints and model files before the flat counts held it
    restored = pickle.loads(pickle.dumps(saved))
    assert isinstance(restored.model, MultinomialNaiveBayes)
    for text in texts[:50]:
        features = text_features(text.text)
        theirs = river.predict_proba_one(features)  # type: ignore[no-untyped-call]
        assert restored.predict_proba(text.text) == pytest.approx(theirs[True], rel=1e-9)


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
