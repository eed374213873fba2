"""Next-best-offer: the products to offer a customer, from item-to-item co-occurrence
learned online, one order at a time.

Learning an order: every product the customer had bought before (their latest
``history`` distinct products) is linked to every product in the new order — "who
bought i went on to buy j". Recommending: each product ``j`` the customer has not
bought scores the sum over their history ``i`` of ``co(i, j) / sqrt(orders(i) *
orders(j))`` (cosine-normalised, so that best sellers do not win everything); empty
histories fall back to the most ordered products. Memory is bounded: each product
keeps at most ``neighbours`` links (the strongest, pruned when twice that many). On
Online Retail with 8 partitions, as in the worker, 100 links gave a hit rate at 10 of
0.252, 200 gave 0.254 and 50 gave 0.234 (docs/models.md); 100 ranks half the candidates
of 200.

>>> model = CoPurchaseOffers()
>>> for _ in range(3):
...     model.learn_one(["tea"], ["teapot", "cups"])
...     model.learn_one(["saw"], ["nails"])
>>> model.learn_one(["tea"], ["biscuits"])
>>> model.recommend(["tea"], k=3)
['teapot', 'cups', 'biscuits']
>>> model.recommend([], k=2)  # nothing bought yet: the most ordered
['teapot', 'cups']
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence

RERANK_EVERY = 100


class CoPurchaseOffers:
    VERSION = "offers-cooc/1"

    def __init__(self, neighbours: int = 100, history: int = 30) -> None:
        self.neighbours = neighbours
        self.history = history
        #: Orders each product was in.
        self.orders: dict[str, int] = {}
        #: co[i][j]: orders with j placed by customers who had bought i before.
        self.co: dict[str, dict[str, float]] = {}
        #: 1 / sqrt(orders[j]), kept with the counts: ranking's inner loop reads it.
        self.inv_root: dict[str, float] = {}
        self.learned = 0
        #: The most ordered products as of ``ranked_at`` learned orders (re-ranked every
        #: RERANK_EVERY orders: ranking all products per offer cost a millisecond).
        self.ranked: list[str] = []
        self.ranked_at = -RERANK_EVERY

    def learn_one(self, history: Sequence[str], order: Iterable[str]) -> None:
        """Learn one order, given the customer's earlier products (latest last)."""
        bought = list(dict.fromkeys(order))
        self.learned += 1
        for j in bought:
            n = self.orders[j] = self.orders.get(j, 0) + 1
            self.inv_root[j] = 1.0 / math.sqrt(n)
        for i in dict.fromkeys(history[-self.history :]):
            links = self.co.setdefault(i, {})
            for j in bought:
                if j != i:
                    links[j] = links.get(j, 0.0) + 1.0
            if len(links) > 2 * self.neighbours:
                strongest = heapq.nlargest(self.neighbours, links.items(), key=lambda kv: kv[1])
                self.co[i] = dict(strongest)

    def recommend(self, history: Sequence[str], k: int = 10) -> list[str]:
        """The ``k`` best products the customer has not bought (``history``)."""
        owned = set(history)
        scores: dict[str, float] = {}
        inv_root, get = self.inv_root, scores.get
        for i in dict.fromkeys(history[-self.history :]):
            scale = inv_root.get(i, 1.0)
            for j, count in self.co.get(i, {}).items():
                if j not in owned:
                    scores[j] = get(j, 0.0) + count * scale * inv_root[j]
        offers = heapq.nlargest(k, scores, key=scores.__getitem__)
        if len(offers) < k:
            offers += self.popular(k - len(offers), exclude=owned | set(offers))
        return offers

    def popular(self, k: int, exclude: set[str] | None = None) -> list[str]:
        """The ``k`` most ordered products outside ``exclude``."""
        skip = exclude or set()
        wanted = k + len(skip)
        if self.learned - self.ranked_at >= RERANK_EVERY or len(self.ranked) < wanted:
            ranked = heapq.nlargest(max(wanted, 200), self.orders.items(), key=lambda kv: kv[1])
            self.ranked = [j for j, _ in ranked]
            self.ranked_at = self.learned
        return [j for j in self.ranked if j not in skip][:k]
