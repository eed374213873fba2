"""Sentiment of feedback text: multinomial naive Bayes (River's formula) on binary
n-gram features that work for Chinese and English alike.

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
import sys
from collections import deque
from typing import Any

import numpy as np
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


def _interned(counts: dict[str, float]) -> dict[str, float]:
    """The same counts, keyed by the interned n-grams (a checkpoint's keys are its own)."""
    return {sys.intern(f): n for f, n in counts.items()}


class MultinomialNaiveBayes:
    """River's ``naive_bayes.MultinomialNB`` (the same formula and order of operations:
    tests/test_models compares the two to 1e-9), with its counts in one flat dict per
    class. River keeps a ``Counter`` per feature: at 420,000 n-grams (a quarter of the
    texts) that was 150 MB, 420,000 objects for every full garbage collection to walk
    (0.1 s pauses in the worker) and 1.6 s to pickle for a checkpoint; flat, it is about
    40 MB, nothing to walk (dicts of strings and numbers are not tracked), 0.1 s.

    >>> model = MultinomialNaiveBayes()
    >>> model.learn_one({"good": 1}, True); model.learn_one({"bad": 1}, False)
    >>> model.predict_proba_one({"good": 1})[True] > 0.5
    True
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.class_counts: dict[Any, int] = {}
        #: Per class: the sum of each feature's frequencies, and of all of them.
        self.feature_counts: dict[Any, dict[str, float]] = {}
        self.class_totals: dict[Any, float] = {}
        #: Distinct features learned, in any class.
        self.vocabulary = 0

    @classmethod
    def from_river(cls, river: naive_bayes.MultinomialNB) -> MultinomialNaiveBayes:
        """The same model from River's (checkpoints and model files written before)."""
        model = cls(river.alpha)
        model.class_counts = dict(river.class_counts)
        model.class_totals = dict(river.class_totals)
        for feature, counts in river.feature_counts.items():
            for c, count in counts.items():
                model.feature_counts.setdefault(c, {})[sys.intern(feature)] = count
        model.vocabulary = len(river.feature_counts)
        return model

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.feature_counts = {c: _interned(counts) for c, counts in self.feature_counts.items()}

    def learn_one(self, x: dict[str, int], y: Any) -> None:
        self.class_counts[y] = self.class_counts.get(y, 0) + 1
        counts = self.feature_counts.setdefault(y, {})
        others = [d for c, d in self.feature_counts.items() if c != y]
        total = self.class_totals.get(y, 0.0)
        for f, frequency in x.items():
            seen = counts.get(f)
            if seen is None:
                if not any(f in d for d in others):
                    self.vocabulary += 1
                # One string per n-gram for all classes and partitions: each text makes
                # its own, and the n-grams were two thirds of the counts' memory.
                counts[sys.intern(f)] = frequency
            else:
                counts[f] = seen + frequency
            total += frequency
        self.class_totals[y] = total

    def predict_proba_one(self, x: dict[str, int]) -> dict[Any, float]:
        """P(class | x) per class learned; ``{}`` before any."""
        counts = self.class_counts
        if not counts:
            return {}
        alpha = self.alpha
        vocabulary = alpha * self.vocabulary
        total = sum(counts.values())
        # sum(f * log((n + alpha) / den)) as f . log(n + alpha) - sum(f) * log(den), the
        # counts looked up and the logs taken in C: a text has hundreds of n-grams (1.3x
        # faster than a Python loop over them, docs/benchmarks.md).
        features = list(x)
        frequencies = np.array(list(x.values()), dtype=float)
        total_frequency = float(frequencies.sum())
        jll: dict[Any, float] = {}
        for c, count in counts.items():
            den = self.class_totals[c] + vocabulary
            seen = np.array(
                list(map(self.feature_counts[c].get, features, itertools.repeat(0.0))),
                dtype=float,
            )
            likelihood = float(frequencies @ np.log(seen + alpha))
            jll[c] = math.log(count / total) + likelihood - total_frequency * math.log(den)
        top = max(jll.values())
        lse = top + math.log(sum(math.exp(v - top) for v in jll.values()))
        return {c: math.exp(v - lse) for c, v in jll.items()}


class SentimentModel:
    VERSION = "sentiment-mnb/1"

    def __init__(self, alpha: float = 1.0) -> None:
        self.model = MultinomialNaiveBayes(alpha=alpha)
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
        if isinstance(state["model"], naive_bayes.MultinomialNB):
            state = {**state, "model": MultinomialNaiveBayes.from_river(state["model"])}
        self.__dict__.update(state)
        self._last = None

    def _predict(self, text: str) -> tuple[dict[str, int], dict[Any, float]]:
        last = self._last
        if last is not None and last[0] == text:
            return last[1], last[2]
        features = text_features(text)
        proba = self.model.predict_proba_one(features)
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
