"""The benchmark workload: a seeded mixed stream of 70% browse, 20% purchase and 10%
feedback events over many customers, in event-time order. The feedback texts and their
labels are real (the review corpora of ``../shared/data``, or the shipped extract where
that is absent); customers, browsing, purchases and which customer wrote which text are
synthetic, and every benchmark result says so. A purchase lists 1-30 products of 4,000,
the popular ones more often (as Online Retail's invoices list theirs, about 20 on
average): what next-best-offer and co-purchase influence learn from.

>>> events = mixed_events(1_000, customers=100, seed=1)
>>> len(events), sorted({e["type"] for e in events})
(1000, ['browse', 'feedback', 'purchase'])
>>> events == mixed_events(1_000, customers=100, seed=1)
True
"""

from __future__ import annotations

import argparse
import random
from functools import cache
from pathlib import Path
from typing import Any

from eventdata.events import DEMO_DATA, find
from eventdata.extract import SHARED
from eventdata.feedback import RATINGS, LabelledText, labelled_texts
from eventdata.retail import read_csv_gz

#: Event mix, as in the issue: browse, purchase, feedback.
MIX = (("browse", 0.7), ("purchase", 0.2), ("feedback", 0.1))
ACTIONS = ("view", "view", "view", "search", "add_to_cart", "remove_from_cart", "checkout")
START_MS = 1_293_840_000_000  # 2011-01-01T00:00:00Z
PRODUCTS = 4_000
#: Mean event-time step between consecutive events of the stream.
STEP_MS = 2_000


def workload_arguments(description: str, events: int, customers: int) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--events``, ``--customers`` (these defaults) and
    ``--partitions`` (8); the caller adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--partitions", type=int, default=8)
    return parser


def described(events: int, customers: int, partitions: int) -> str:
    """What a report says of the workload it ran."""
    return (
        f"{events:,} events (70% browse, 20% purchase, 10% feedback with real review texts; "
        f"synthetic customers and stream), {customers:,} customers, {partitions} partitions"
    )


@cache
def review_texts(data_dir: Path | None = None) -> tuple[LabelledText, ...]:
    """The real labelled texts: the full corpora when ``../shared/data`` is there."""
    data = data_dir or (SHARED if SHARED.exists() else DEMO_DATA)
    texts = labelled_texts(read_csv_gz(find(data, "reviews-zh")), "zh")
    texts += labelled_texts(read_csv_gz(find(data, "sentiment-en")), "en")
    return tuple(texts)


def mixed_events(
    count: int, *, customers: int = 50_000, seed: int = 7, data_dir: Path | None = None
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    texts = review_texts(data_dir)
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    events: list[dict[str, Any]] = []
    ts = START_MS
    for n in range(count):
        ts += rng.randint(0, 2 * STEP_MS)
        customer = f"b{rng.randrange(customers):06d}"
        kind = rng.choices(kinds, weights)[0]
        event: dict[str, Any] = {
            "type": kind,
            "event_id": f"e{seed}-{n}",
            "customer_id": customer,
            "ts": ts,
        }
        if kind == "browse":
            event["action"] = rng.choice(ACTIONS)
            event["sku"] = f"sku-{rng.randrange(PRODUCTS)}"
        elif kind == "purchase":
            refund = rng.random() < 0.03
            amount = round(rng.lognormvariate(3.0, 1.0), 2)
            event["amount"] = -amount if refund else amount
            event["cost"] = round(abs(amount) * rng.uniform(0.5, 0.8), 2)
            event["order_id"] = f"o{seed}-{n}"
            if not refund:
                size = min(1 + int(rng.lognormvariate(2.3, 0.9)), 30)
                event["skus"] = [f"sku-{int(PRODUCTS * rng.random() ** 2)}" for _ in range(size)]
        else:
            text = rng.choice(texts)
            event["text"] = text.text
            if rng.random() < 0.8:
                event["rating"] = rng.choice(RATINGS[text.label])
        events.append(event)
    return events
