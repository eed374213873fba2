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
import re
from collections import deque

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


class SentimentModel:
    VERSION = "sentiment-mnb/1"

    def __init__(self, alpha: float = 1.0) -> None:
        self.model = naive_bayes.MultinomialNB(alpha=alpha)
        self.learned = 0
        #: Whether each of the latest rated texts was predicted right before learning it.
        self.recent: deque[bool] = deque(maxlen=RECENT_TEXTS)

    def predict_proba(self, text: str) -> float:
        """P(positive); 0.5 before anything was learned."""
        proba = self.model.predict_proba_one(text_features(text))
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
        features = text_features(text)
        proba = self.model.predict_proba_one(features)
        self.recent.append((proba.get(True, 0.5) >= 0.5) == positive if proba else False)
        self.model.learn_one(features, positive)
        self.learned += 1
