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
0.252, 200 gave 0.254 and 50 gave 0.234 (docs/models.md; 0.264 at 100 since ties keep
the newer products); 100 ranks half the candidates of 200.

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

import itertools
import math
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

RERANK_EVERY = 100
#: How a checkpoint holds links' products and counts: 32-bit, little-endian.
WIRE_INT = np.dtype("<i4")


class Links:
    """One product's links: ``ids`` the linked products (their index, ascending, found
    by bisection) and ``counts`` the orders behind each. Two arrays of C ints, 8 bytes a
    link, that a ranking adds up in C through views of their memory. The offers models
    of 8 partitions took 149.6 MiB with a dict of each linked product's place and two
    64-bit arrays, 40.4 with three arrays of C ints, 28.3 with these
    (docs/benchmarks.md)."""

    __slots__ = ("counts", "ids")

    def __init__(self) -> None:
        self.ids = array("i")
        self.counts = array("i")

    @property
    def size(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> tuple[bytes, bytes]:
        # As bytes: pickled as numpy arrays (until 2026-12-06), a partition's thousands
        # of them took 0.5 s of the event loop per checkpoint on Online Retail.
        return _view(self.ids).astype(WIRE_INT).tobytes(), _view(self.counts).astype(
            WIRE_INT
        ).tobytes()

    def __setstate__(self, state: tuple[np.ndarray | bytes, np.ndarray | bytes]) -> None:
        ids, counts = (np.frombuffer(x, WIRE_INT) if isinstance(x, bytes) else x for x in state)
        self._hold(ids, counts)

    def _hold(self, ids: np.ndarray, counts: np.ndarray) -> None:
        """Hold exactly these links (``ids`` distinct, in any order; arrays of any
        integer or whole-float type)."""
        by_id = np.argsort(ids, kind="stable")
        self.ids = _array(ids[by_id])
        self.counts = _array(counts[by_id])

    def add(self, ids: list[int]) -> None:
        """One more order of each of ``ids`` (distinct)."""
        own, counts = self.ids, self.counts
        for j in ids:
            place = bisect_left(own, j)
            if place < len(own) and own[place] == j:
                counts[place] += 1
            else:
                own.insert(place, j)
                counts.insert(place, 1)

    def keep_strongest(self, n: int) -> None:
        """Only the ``n`` strongest links; of equal counts, the products first ordered
        last (the higher index: newer products sell on). Until 2026-12-07 the links made
        first: that took a third array, 11 MiB in a worker of 8 partitions, for a hit
        rate at 10 on Online Retail of 0.290 (8 partitions: 0.252) where this has 0.291
        (0.264; docs/models.md)."""
        ids = _view(self.ids)
        kept = np.lexsort((-ids, -_view(self.counts)))[:n]
        self._hold(ids[kept], _view(self.counts)[kept])

    def as_dict(self) -> dict[int, int]:
        """Linked product -> orders, by product index."""
        return dict(zip(self.ids, self.counts, strict=True))


def _view(values: array[int]) -> np.ndarray:
    return np.frombuffer(values, dtype=np.intc)


def _array(values: np.ndarray) -> array[int]:
    return array("i", values.astype(np.intc, copy=False).tobytes())


class CoPurchaseOffers:
    VERSION = "offers-cooc/1"

    def __init__(self, neighbours: int = 100, history: int = 30) -> None:
        self.neighbours = neighbours
        self.history = history
        #: Orders each product was in.
        self.orders: dict[str, int] = {}
        #: The products by index (the order first ordered), and their indices.
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        #: 1 / sqrt(orders) by index.
        self.inv_root = np.zeros(0)
        #: co[i]: the products ordered by customers who had bought i before, and how often.
        self.co: dict[str, Links] = {}
        self.learned = 0
        #: The most ordered products as of ``ranked_at`` learned orders (re-ranked every
        #: RERANK_EVERY orders: ranking all products per offer cost a millisecond).
        self.ranked: list[str] = []
        self.ranked_at = -RERANK_EVERY

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "index"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "names" not in state:  # links kept as dicts of product names (until 2026-12-03)
            state = _from_named_links(state)
        self.__dict__.update(state)
        self.index = {j: n for n, j in enumerate(self.names)}

    def _id(self, product: str) -> int:
        n = self.index.get(product)
        if n is None:
            n = self.index[product] = len(self.names)
            self.names.append(product)
            if n == len(self.inv_root):
                self.inv_root = np.concatenate((self.inv_root, np.zeros(max(n, 64))))
        return n

    def learn_one(self, history: Sequence[str], order: Iterable[str]) -> None:
        """Learn one order, given the customer's earlier products (latest last)."""
        # One object per product name in every model that keeps it, however many events
        # and states decode their own copies (three copies a product a partition before).
        bought = [sys.intern(j) for j in dict.fromkeys(order)]
        ids = [self._id(j) for j in bought]
        self.learned += 1
        for j, n in zip(bought, ids, strict=True):
            count = self.orders[j] = self.orders.get(j, 0) + 1
            self.inv_root[n] = 1.0 / math.sqrt(count)
        for i in dict.fromkeys(history[-self.history :]):
            links = self.co.get(i)
            if links is None:
                links = self.co[sys.intern(i)] = Links()
            own = self.index.get(i)
            links.add(ids if own not in ids else [n for n in ids if n != own])
            if links.size > 2 * self.neighbours:
                links.keep_strongest(self.neighbours)

    def recommend(self, history: Sequence[str], k: int = 10) -> list[str]:
        """The ``k`` best products the customer has not bought (``history``); of equal
        scores, the product ordered first."""
        owned = set(history)
        # All the history's links gathered into two arrays and added up in one bincount,
        # in the order of one product at a time (the same sums): numpy's calls for each
        # product took half the time of an offer (docs/benchmarks.md); a Python loop over
        # up to 30 x 200 links, 1-3 ms.
        inv_root = self.inv_root
        ids, counts = array("i"), array("i")
        scales: list[float] = []
        sizes: list[int] = []
        for i in dict.fromkeys(history[-self.history :]):
            links = self.co.get(i)
            if links is not None and links.ids:
                own = self.index.get(i)
                ids += links.ids
                counts += links.counts
                scales.append(inv_root[own] if own is not None else 1.0)
                sizes.append(len(links.ids))
        scores: np.ndarray
        if ids:
            weights = _view(counts) * np.repeat(scales, sizes)
            scores = np.bincount(_view(ids), weights, minlength=len(self.names))
        else:  # bincount of no weights counts in ints
            scores = np.zeros(len(self.names))
        scores *= inv_root[: len(scores)]
        scores[[self.index[j] for j in owned if j in self.index]] = 0.0
        # No score is negative; a float array's own nonzero scan takes four times longer.
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            # The k best, and any that tie with the k-th: the tie-break below picks.
            kth = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
            candidates = candidates[scores[candidates] >= kth]
        ranked = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
        offers = [self.names[j] for j in ranked.tolist()]
        if len(offers) < k:
            offers += self.popular(k - len(offers), exclude=owned | set(offers))
        return offers

    def popular(self, k: int, exclude: set[str] | None = None) -> list[str]:
        """The ``k`` most ordered products outside ``exclude``."""
        skip = exclude or set()
        wanted = k + len(skip)
        if self.learned - self.ranked_at >= RERANK_EVERY or len(self.ranked) < wanted:
            # Most orders first is least 1 / sqrt(orders) first; a stable sort keeps
            # equal ones in the order first ordered. A tenth of heapq.nlargest's time
            # over the orders' dict, which ran a Python key function on each product.
            names = self.names
            by_orders = np.argsort(self.inv_root[: len(names)], kind="stable")
            self.ranked = [names[j] for j in by_orders[: max(wanted, 200)].tolist()]
            self.ranked_at = self.learned
        return list(itertools.islice((j for j in self.ranked if j not in skip), k))


def _from_named_links(state: dict[str, Any]) -> dict[str, Any]:
    """A model pickled with its links as ``{i: {j: count}}`` dicts, in today's form (its
    ``inv_root`` dict is derived from the counts again)."""
    model = CoPurchaseOffers(state["neighbours"], state["history"])
    for j, count in state["orders"].items():
        n = model._id(j)  # first: it may grow inv_root
        model.inv_root[n] = 1.0 / math.sqrt(count)
    for i, named in state["co"].items():
        links = model.co[i] = Links()
        links._hold(
            np.array([model.index[j] for j in named], dtype=np.intp),
            np.array(list(named.values()), dtype=float),
        )
    return {
        **vars(model),
        "orders": state["orders"],
        "learned": state["learned"],
        "ranked": state["ranked"],
        "ranked_at": state["ranked_at"],
    }
