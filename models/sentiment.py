"""Sentiment of feedback text: River multinomial naive Bayes on binary n-gram features
that work for Chinese and English alike.

Word tokens alone fail on Chinese (no spaces), so runs of CJK characters give character
1-3 grams, and other text gives words, word pairs and character 3-5 grams inside words. URLs and
@mentions are replaced by placeholders (they name brands, not feelings). Features are
binary (presence), which beats counts for short texts (docs/models.md).

Ratings are the labels: 4-5 positive, 1-2 negative, 3 not learned.

>>> model = SentimentModel()
>>> for _ in range(3):
...     model.learn_one("质量很好，非常满意", True)
...     model.learn_one("太差了，很失望", False)
...     model.learn_one("great product, love it", True)
...     model.learn_one("awful, broken and late", False)
>>> model.predict_proba("很满意") > 0.5, model.predict_proba("broken again") < 0.5
(True, True)
"""

from __future__ import annotations

import itertools
import math
import re
from collections import deque
from typing import Any

from river import naive_bayes

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)


def text_features(text: str) -> dict[str, int]:
    """Binary n-gram features of one text."""
    text = _MENTION.sub(" @user ", _URL.sub(" url ", text.lower()))
    feats: dict[str, int] = {}
    for run in _CJK.findall(text):
        for n in (1, 2, 3):
            for i in range(len(run) - n + 1):
                feats[run[i : i + n]] = 1
    words = _WORD.findall(_CJK.sub(" ", text))
    for word in words:
        feats["w:" + word] = 1
        padded = f" {word} "
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                feats[padded[i : i + n]] = 1
    for first, second in itertools.pairwise(words):
        feats[f"b:{first} {second}"] = 1  # "not good", "no longer"
    if "@user" in text:
        feats["w:@user"] = 1
    return feats


def rating_label(rating: int | None) -> bool | None:
    """True for 4-5, False for 1-2, None (not learned) for 3 or no rating."""
    if rating is None or rating == 3:
        return None
    return rating > 3


#: Rated texts behind the live (prequential) accuracy.
RECENT_TEXTS = 1_000
#: Rated texts learned before a predicted sentiment may raise an alert.
MIN_EXAMPLES_FOR_ALERTS = 200


def naive_bayes_proba(model: naive_bayes.MultinomialNB, x: dict[str, int]) -> dict[Any, float]:
    """``model.predict_proba_one(x)``, computed in one pass: River calls a method per
    feature and class, each recounting the vocabulary, then scipy's logsumexp on two
    numbers; that was a third of a worker's time. Same formula, same order of
    operations (tests/test_models/test_sentiment.py compares the two).

    >>> model = naive_bayes.MultinomialNB()
    >>> model.learn_one({"good": 1}, True); model.learn_one({"bad": 1}, False)
    >>> naive_bayes_proba(model, {"good": 1}) == model.predict_proba_one({"good": 1})
    True
    """
    counts = model.class_counts
    if not counts:
        return {}
    alpha = model.alpha
    feature_counts = model.feature_counts
    vocabulary = alpha * len(feature_counts)
    total = sum(counts.values())
    empty: dict[Any, float] = {}
    jll: dict[Any, float] = {}
    for c, count in counts.items():
        den = model.class_totals[c] + vocabulary
        likelihood = 0.0
        for f, frequency in x.items():
            seen = feature_counts.get(f, empty).get(c, 0.0)
            likelihood += frequency * math.log((seen + alpha) / den)
        jll[c] = math.log(count / total) + likelihood
    top = max(jll.values())
    lse = top + math.log(sum(math.exp(v - top) for v in jll.values()))
    return {c: math.exp(v - lse) for c, v in jll.items()}


class SentimentModel:
    VERSION = "sentiment-mnb/1"

    def __init__(self, alpha: float = 1.0) -> None:
        self.model = naive_bayes.MultinomialNB(alpha=alpha)
        self.learned = 0
        #: Whether each of the latest rated texts was predicted right before learning it.
        self.recent: deque[bool] = deque(maxlen=RECENT_TEXTS)
        #: The latest prediction (text, features, probabilities): a rated text is scored,
        #: then learned with the same prediction (test-then-train), so it is made once.
        #: Not pickled: a checkpoint holds no text.
        self._last: tuple[str, dict[str, int], dict[Any, float]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._last = None

    def _predict(self, text: str) -> tuple[dict[str, int], dict[Any, float]]:
        last = self._last
        if last is not None and last[0] == text:
            return last[1], last[2]
        features = text_features(text)
        proba = naive_bayes_proba(self.model, features)
        self._last = (text, features, proba)
        return features, proba

    def predict_proba(self, text: str) -> float:
        """P(positive); 0.5 before anything was learned."""
        _, proba = self._predict(text)
        if not proba:
            return 0.5
        return float(proba.get(True, 0.0))

    @property
    def ready(self) -> bool:
        return self.learned >= MIN_EXAMPLES_FOR_ALERTS

    def recent_accuracy(self) -> float | None:
        """Prequential accuracy over the latest rated texts; ``None`` before any."""
        return sum(self.recent) / len(self.recent) if self.recent else None

    def learn_one(self, text: str, positive: bool) -> None:
        features, proba = self._predict(text)
        self.recent.append((proba.get(True, 0.5) >= 0.5) == positive if proba else False)
        self.model.learn_one(features, positive)
        self._last = None  # the model changed
        self.learned += 1
