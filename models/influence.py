"""Co-purchase influence: customers linked by the products they buy close in time, kept
incrementally and bounded in memory.

When customer ``c`` orders product ``p`` within ``window_days`` after customer ``b`` did,
``c`` *followed* ``b`` on ``p``: a link ``b -> c``. Each order hands out one unit of
weight across the customers it followed, each product's share split among its recent
buyers (a best seller bought by everyone says little about anyone). A customer's
``influence`` is the decayed weight of the links to their followers (half-life
``half_life_days``): about how many orders of others came after theirs, on the same
products, lately. ``degree`` counts the distinct customers they are linked to, either
way. Memory is bounded: each product remembers its ``buyers_per_product`` latest buyers,
each customer their ``neighbours`` strongest followers (pruned at twice that), and an
order links only to its ``neighbours`` strongest leaders.

>>> graph = CoPurchaseInfluence()
>>> day = 86_400_000
>>> graph.learn_one("ann", 0, ["tea", "cups"])
>>> graph.learn_one("bob", 1 * day, ["tea"])
>>> graph.learn_one("cat", 2 * day, ["cups"])
>>> graph.learn_one("dan", 90 * day, ["tea"])  # long after: follows nobody
>>> round(graph.influence("ann", 2 * day), 2), graph.degree("ann"), graph.degree("dan")
(1.99, 2, 0)
>>> graph.forget("ann"); graph.degree("bob")
0
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Any

from models.features import DAY_MS, halving


def strongest(weights: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    """The ``n`` largest weights, first come first on a tie: ``heapq.nlargest``'s
    answer, sorted in C (it ran a Python key function on each of a hundred leaders)."""
    items = weights.pairs() if isinstance(weights, Followers) else weights.items()
    return sorted(items, key=itemgetter(1), reverse=True)[:n]


def _pairs(buyers: list[Any]) -> Iterator[tuple[str, int]]:
    """(customer, order time) of a product's flat list of buyers."""
    items = iter(buyers)
    return zip(items, items, strict=True)


def _bought_between(buyers: list[Any], earliest: int, latest: int) -> list[str]:
    """The customers of a product's flat list of buyers who ordered it between
    ``earliest`` and ``latest``, in the list's order. All or none of them, mostly: those
    cases are told by the order times' min and max, in C (a Python loop over the pairs
    was a third of the model's time)."""
    times = buyers[1::2]
    if not times:
        return []
    first, last = min(times), max(times)
    if earliest <= first and last <= latest:
        return buyers[::2]
    if last < earliest or first > latest:
        return []
    return [b for b, at in _pairs(buyers) if earliest <= at <= latest]


def _flat(pairs: Iterable[tuple[str, int]]) -> list[Any]:
    """The flat list of these (customer, order time) pairs."""
    return [x for pair in pairs for x in pair]


class Followers(Mapping[str, float]):
    """A leader's links: each follower and the link's weight, in the order linked (a
    dict's order), changed through :meth:`add`, :meth:`scale` and :meth:`discard`. A list
    of the followers and an array of doubles, not a dict of float objects: about even
    for the 1-3 links most leaders have, a third of the memory for 10-20; 4 MiB less in
    a worker of 8 partitions (docs/benchmarks.md).

    >>> links = Followers({"bob": 1.0})
    >>> links.add("cat", 0.5); links.add("bob", 0.25); links.scale(0.5)
    >>> links
    {'bob': 0.625, 'cat': 0.25}
    """

    __slots__ = ("ids", "weights")

    def __init__(self, links: Mapping[str, float] | Iterable[tuple[str, float]] = ()) -> None:
        pairs = links.items() if isinstance(links, Mapping) else links
        self.ids: list[str] = []
        self.weights = array("d")
        for follower, weight in pairs:
            self.ids.append(follower)
            self.weights.append(weight)

    def __getstate__(self) -> tuple[list[str], array[float]]:
        return self.ids, self.weights

    def __setstate__(self, state: tuple[list[str], array[float]]) -> None:
        self.ids, self.weights = state

    def __getitem__(self, follower: str) -> float:
        try:
            return self.weights[self.ids.index(follower)]
        except ValueError:
            raise KeyError(follower) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def pairs(self) -> Iterator[tuple[str, float]]:
        """(follower, weight) in the order linked: ``items()`` without a lookup each."""
        return zip(self.ids, self.weights, strict=True)

    def add(self, follower: str, weight: float) -> None:
        """Add ``weight`` to the link to ``follower`` (a new one last)."""
        ids = self.ids
        # A test first: most links are new, and a caught ValueError cost more than it.
        if follower in ids:
            self.weights[ids.index(follower)] += weight
        else:
            ids.append(follower)
            self.weights.append(weight)

    def scale(self, factor: float) -> None:
        weights = self.weights
        for i in range(len(weights)):
            weights[i] *= factor

    def discard(self, follower: str) -> None:
        try:
            i = self.ids.index(follower)
        except ValueError:
            return
        del self.ids[i], self.weights[i]


#: How much larger than its own a new link's weight may be stated, as of the time of the
#: leader's older links (2**10: ten half-lives apart), before they are all moved to it.
RESTATE_FACTOR = 1024.0


class CoPurchaseInfluence:
    VERSION = "influence-copurchase/1"

    def __init__(
        self,
        window_days: float = 14.0,
        buyers_per_product: int = 20,
        neighbours: int = 10,
        half_life_days: float = 90.0,
    ) -> None:
        self.window_ms = int(window_days * DAY_MS)
        self.buyers_per_product = buyers_per_product
        self.neighbours = neighbours
        self.half_life_days = half_life_days
        # Lists, not deques and sets: a deque or set of a few items takes 3-5 times the
        # memory of a list, and there is one per product and one per linked customer.
        #: Each product's latest buyers, latest last, flat: customer, order time,
        #: customer, order time... (a tuple per buyer took 56 bytes more: 31 MiB at
        #: 555,000 buyers, docs/benchmarks.md).
        self.buyers: dict[str, list[Any]] = {}
        #: followers[b][c]: weight of the link b -> c, decayed to decayed_at[b] (a link
        #: made later is stated as of that time too: larger than its own weight).
        self.followers: dict[str, Followers] = {}
        self.decayed_at: dict[str, int] = {}
        #: leaders[c]: the customers with a link to c (the reverse index), distinct.
        self.leaders: dict[str, list[str]] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; checkpoints written before 2026-12-04 hold deques and sets, before
        2026-12-07 a (customer, order time) tuple per buyer and a dict per leader."""
        state["followers"] = {
            b: links if isinstance(links, Followers) else Followers(links)
            for b, links in state["followers"].items()
        }
        state["buyers"] = {
            p: _flat(b) if b and isinstance(b[0], tuple) else list(b)
            for p, b in state["buyers"].items()
        }
        state["leaders"] = {c: list(ls) for c, ls in state["leaders"].items()}
        self.__dict__.update(state)

    def learn_one(self, customer_id: str, ts_ms: int, products: Iterable[str]) -> None:
        """One order of ``customer_id`` at event time ``ts_ms``."""
        # One object per customer id, however many buyer lists and links hold it (each
        # event decodes its own copy).
        customer_id = sys.intern(customer_id)
        earliest = ts_ms - self.window_ms
        shares: dict[str, float] = {}
        share_of = shares.get
        for product in dict.fromkeys(products):
            buyers = self.buyers.get(product)
            if buyers is None:
                buyers = self.buyers[sys.intern(product)] = []
            # Distinct, in the order they bought: a set's order would follow the hash
            # seed, and with it the sum below and which of equal leaders are kept.
            earlier = dict.fromkeys(_bought_between(buyers, earliest, ts_ms))
            earlier.pop(customer_id, None)
            if earlier:
                each = 1.0 / len(earlier)
                for leader in earlier:
                    shares[leader] = share_of(leader, 0.0) + each
            if not buyers or buyers[-2] != customer_id:
                buyers += (customer_id, ts_ms)
                if len(buyers) > 2 * self.buyers_per_product:
                    del buyers[:2]
        total = sum(shares.values())
        # The order's strongest leaders only: a large order of common products follows
        # a hundred customers, each barely; linking them all would cost most of the time.
        for leader, share in strongest(shares, self.neighbours):
            self._link(leader, customer_id, share / total, ts_ms)

    def _link(self, leader: str, follower: str, weight: float, ts_ms: int) -> None:
        links = self.followers.get(leader)
        if links is None:
            links = self.followers[leader] = Followers()
        at = self.decayed_at.get(leader)
        if at is None:
            self.decayed_at[leader] = ts_ms
        elif ts_ms > at:
            # The new weight is stated as of the leader's links' time, not all of them
            # moved to the new one (a loop over them at each link, 15% of the model's
            # time); moved only once that inflates it past RESTATE_FACTOR.
            kept = halving(ts_ms - at, self.half_life_days)
            if kept < 1.0 / RESTATE_FACTOR:
                links.scale(kept)
                self.decayed_at[leader] = ts_ms
            else:
                weight /= kept
        links.add(follower, weight)
        leaders = self.leaders.setdefault(follower, [])
        if leader not in leaders:
            leaders.append(leader)
        if len(links) > 2 * self.neighbours:
            keep = Followers(strongest(links, self.neighbours))
            for dropped in set(links.ids).difference(keep.ids):
                self._unlead(leader, dropped)
            self.followers[leader] = keep

    def _unlead(self, leader: str, follower: str) -> None:
        leaders = self.leaders.get(follower)
        if leaders is not None and leader in leaders:
            leaders.remove(leader)
            if not leaders:
                del self.leaders[follower]

    def influence(self, customer_id: str, now_ms: int) -> float:
        """Decayed weight of the customer's links to their followers, at ``now_ms``."""
        links = self.followers.get(customer_id)
        if not links:
            return 0.0
        at = self.decayed_at[customer_id]
        return sum(links.weights) * (
            halving(now_ms - at, self.half_life_days) if now_ms > at else 1.0
        )

    def degree(self, customer_id: str) -> int:
        """Distinct customers linked to this one, as leader or follower."""
        # Each side is distinct already: a set only when both have some (a set of a
        # customer's followers at each score went through Followers' __iter__).
        followers = self.followers.get(customer_id)
        leaders = self.leaders.get(customer_id)
        if not followers:
            return len(leaders) if leaders else 0
        if not leaders:
            return len(followers)
        return len(set(followers.ids).union(leaders))

    def forget(self, customer_id: str) -> None:
        """Keep nothing of the customer: their links, both ways, and their purchases."""
        for follower in self.followers.pop(customer_id, {}):
            self._unlead(customer_id, follower)
        self.decayed_at.pop(customer_id, None)
        for leader in self.leaders.pop(customer_id, []):
            self.followers[leader].discard(customer_id)
        for product, buyers in list(self.buyers.items()):
            if customer_id in buyers[::2]:
                kept = (pair for pair in _pairs(buyers) if pair[0] != customer_id)
                self.buyers[product] = _flat(kept)
