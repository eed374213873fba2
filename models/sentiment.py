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
import zlib
from collections import deque
from collections.abc import Iterable
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


#: The hashed feature space: 2**19 buckets, a 1-MiB array of counts per class. A text
#: model's n-grams grow with every text (150,000 per partition's model after 3,700
#: texts, still growing); the buckets are the most a model ever holds. Prequential
#: accuracy on the full corpora (docs/models.md): reviews-zh 0.8779 with the n-grams
#: as keys, 0.8748 at 2**20 buckets, 0.8707 at 2**19, 0.8620 at 2**18; sentiment-en
#: 0.8433, 0.8438, 0.8439, 0.8456.
BUCKET_BITS = 19
#: A bucket's count of texts is 16-bit: at this, every count is halved (rounding up, so
#: no learned bucket empties). One partition's model reaches it after 65,535 texts of a
#: class share a bucket ("的" is in most Chinese reviews); until then the counts are
#: River's exactly, and 32-bit counts took 16 MiB more in a worker of 8 partitions.
COUNT_LIMIT = 0xFFFF


def feature_buckets(features: Iterable[str], bits: int = BUCKET_BITS) -> np.ndarray:
    """The distinct buckets of these features, ascending: the low ``bits`` of the CRC-32
    of each one's UTF-8 (the same in every process, which ``hash`` of a str is not: a
    model moves between workers in its checkpoint).

    >>> feature_buckets(["w:good", "w:good", "goo"], bits=8).tolist()
    [22, 115]
    """
    buckets = _hashed(features, bits)
    buckets.sort()
    # Features share a bucket in a few texts only: np.unique's own steps cost 10 us.
    if (buckets[1:] == buckets[:-1]).any():
        return np.unique(buckets)
    return buckets


def _hashed(features: Iterable[str], bits: int) -> np.ndarray:
    """The bucket of each feature, in order (repeats and all)."""
    hashes = np.fromiter(map(zlib.crc32, map(str.encode, features)), dtype=np.uint32)
    return (hashes & np.uint32((1 << bits) - 1)).astype(np.intp)


class MultinomialNaiveBayes:
    """River's ``naive_bayes.MultinomialNB`` (the same formula and order of operations:
    tests/test_models compares the two to 1e-9) on hashed binary features: each text's
    features fall in ``2**bits`` buckets (:func:`feature_buckets`), and a class's counts
    are one array over the buckets. Its memory is fixed: keyed by n-gram, the counts of 8
    partitions' models took 75 MiB after 30,000 texts and grew with every text
    (docs/benchmarks.md); hashed, they take 2 MiB a model, for good. A count that would
    pass :data:`COUNT_LIMIT` halves every count first (:meth:`_halve`).

    >>> model = MultinomialNaiveBayes()
    >>> model.learn_one({"good": 1}, True); model.learn_one({"bad": 1}, False)
    >>> model.predict_proba_one({"good": 1})[True] > 0.5
    True
    """

    def __init__(self, alpha: float = 1.0, bits: int = BUCKET_BITS) -> None:
        self.alpha = alpha
        self.bits = bits
        self.class_counts: dict[Any, int] = {}
        #: Per class: each bucket's count of texts, and the sum of them all.
        self.counts: dict[Any, np.ndarray] = {}
        self.class_totals: dict[Any, float] = {}
        #: Buckets learned, in any class.
        self.vocabulary = 0

    @classmethod
    def from_river(cls, river: naive_bayes.MultinomialNB) -> MultinomialNaiveBayes:
        """The same model from River's (checkpoints and model files written before)."""
        by_class: dict[Any, dict[str, float]] = {}
        for feature, counts in river.feature_counts.items():
            for c, count in counts.items():
                by_class.setdefault(c, {})[feature] = count
        return cls._from_feature_counts(river.alpha, dict(river.class_counts), by_class)

    @classmethod
    def _from_feature_counts(
        cls, alpha: float, class_counts: dict[Any, int], by_class: dict[Any, dict[str, float]]
    ) -> MultinomialNaiveBayes:
        """The model with each n-gram's counts added to its bucket (colliding n-grams add up)."""
        model = cls(alpha)
        model.class_counts = class_counts
        wide = {}
        for c, features in by_class.items():
            wide[c] = counts = np.zeros(1 << model.bits, dtype=np.int64)
            buckets = _hashed(features, model.bits)
            np.add.at(counts, buckets, np.fromiter(features.values(), dtype=np.int64))
        model._hold(wide)
        model.class_totals = {c: float(counts.sum()) for c, counts in model.counts.items()}
        model.vocabulary = model._buckets_learned()
        return model

    def _class_counts(self, c: Any) -> np.ndarray:
        counts = self.counts.get(c)
        if counts is None:
            counts = self.counts[c] = np.zeros(1 << self.bits, dtype=np.uint16)
        return counts

    def _hold(self, wide: dict[Any, np.ndarray]) -> None:
        """Hold these counts per class (any integer type, every bucket), halved as many
        times as they need to fit (checkpoints of 32-bit counts)."""
        self.counts = wide
        while any(int(counts.max(initial=0)) > COUNT_LIMIT for counts in wide.values()):
            self._halve()
        self.counts = {c: counts.astype(np.uint16) for c, counts in wide.items()}

    def _halve(self) -> None:
        """Halve every count, rounding up (a learned bucket stays learned, so the
        vocabulary stays): the texts learned so far weigh half as much as the next ones."""
        for counts in self.counts.values():
            counts[:] = (counts >> 1) + (counts & 1)  # not (counts + 1) >> 1: 16 bits wrap
        self.class_counts = {c: (n + 1) // 2 for c, n in self.class_counts.items()}
        self.class_totals = {c: float(counts.sum()) for c, counts in self.counts.items()}

    def _buckets_learned(self) -> int:
        return int(np.count_nonzero(sum(c != 0 for c in self.counts.values())))

    def __getstate__(self) -> dict[str, Any]:
        # The learned buckets only (most of a young model's are empty), each as its gap
        # from the one before: small numbers, which the checkpoint's zlib packs into 40%
        # less than the buckets themselves.
        state = {k: v for k, v in self.__dict__.items() if k != "counts"}
        state["bucket_gaps"] = {}
        for c, counts in self.counts.items():
            buckets = np.flatnonzero(counts)
            gaps = np.diff(buckets, prepend=0).astype(np.int32)
            state["bucket_gaps"][c] = (gaps, counts[buckets])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "feature_counts" in state:  # keyed by n-gram (checkpoints before 2026-12-06)
            state = vars(
                self._from_feature_counts(
                    state["alpha"], state["class_counts"], state["feature_counts"]
                )
            )
            self.__dict__.update(state)
            return
        if "bucket_gaps" in state:
            learned = {c: (np.cumsum(g), v) for c, (g, v) in state.pop("bucket_gaps").items()}
        else:  # the buckets themselves (written by main between 6c333bb and 98e7627)
            learned = state.pop("counts")
        self.__dict__.update(state)
        wide = {}
        for c, (buckets, values) in learned.items():
            wide[c] = np.zeros(1 << self.bits, dtype=np.int64)
            wide[c][buckets] = values
        self._hold(wide)  # 32-bit counts (before 2026-12-07) may need halving

    def buckets(self, x: Iterable[str]) -> np.ndarray:
        """The distinct buckets of the features ``x`` (a dict's keys, or any strings)."""
        return feature_buckets(x, self.bits)

    def learn_one(self, x: Iterable[str], y: Any) -> None:
        self.learn_buckets(self.buckets(x), y)

    def learn_buckets(self, buckets: np.ndarray, y: Any) -> None:
        """Learn one text of class ``y`` by its :meth:`buckets`."""
        counts = self._class_counts(y)
        held = counts[buckets]
        if len(held) and int(held.max()) == COUNT_LIMIT:
            self._halve()
            held = counts[buckets]
        self.class_counts[y] = self.class_counts.get(y, 0) + 1
        unseen = held == 0
        for c, others in self.counts.items():
            if c != y:
                unseen &= others[buckets] == 0
        self.vocabulary += int(np.count_nonzero(unseen))
        counts[buckets] += 1
        self.class_totals[y] = self.class_totals.get(y, 0.0) + len(buckets)

    def predict_proba_one(self, x: Iterable[str]) -> dict[Any, float]:
        """P(class | x) per class learned; ``{}`` before any."""
        return self.predict_buckets(self.buckets(x))

    def predict_buckets(self, buckets: np.ndarray) -> dict[Any, float]:
        """P(class | the text of these :meth:`buckets`) per class learned; ``{}`` before any."""
        counts = self.class_counts
        if not counts:
            return {}
        alpha = self.alpha
        vocabulary = alpha * self.vocabulary
        total = sum(counts.values())
        n = len(buckets)
        jll: dict[Any, float] = {}
        for c, count in counts.items():
            den = self.class_totals[c] + vocabulary
            likelihood = float(np.log(self.counts[c][buckets] + alpha).sum())
            jll[c] = math.log(count / total) + likelihood - n * math.log(den)
        top = max(jll.values())
        lse = top + math.log(sum(math.exp(v - top) for v in jll.values()))
        return {c: math.exp(v - lse) for c, v in jll.items()}


class SentimentModel:
    VERSION = "sentiment-mnb/2"

    def __init__(self, alpha: float = 1.0) -> None:
        self.model = MultinomialNaiveBayes(alpha=alpha)
        self.learned = 0
        #: Whether each of the latest rated texts was predicted right before learning it.
        self.recent: deque[bool] = deque(maxlen=RECENT_TEXTS)
        #: The latest prediction (text, buckets, probabilities): a rated text is scored,
        #: then learned with the same prediction (test-then-train), so it is made once.
        #: Not pickled: a checkpoint holds no text.
        self._last: tuple[str, np.ndarray, dict[Any, float]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["model"], naive_bayes.MultinomialNB):
            state = {**state, "model": MultinomialNaiveBayes.from_river(state["model"])}
        self.__dict__.update(state)
        self._last = None

    def _predict(self, text: str) -> tuple[np.ndarray, dict[Any, float]]:
        last = self._last
        if last is not None and last[0] == text:
            return last[1], last[2]
        buckets = self.model.buckets(text_features(text))
        proba = self.model.predict_buckets(buckets)
        self._last = (text, buckets, proba)
        return buckets, proba

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
        buckets, proba = self._predict(text)
        self.recent.append((proba.get(True, 0.5) >= 0.5) == positive if proba else False)
        self.model.learn_buckets(buckets, positive)
        self._last = None  # the model changed
        self.learned += 1
