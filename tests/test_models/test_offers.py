from __future__ import annotations

import math
import pickle
import random
from typing import Any

import numpy as np
import pytest

from models.offers import CoPurchaseOffers


def random_orders(seed: int, count: int) -> list[tuple[list[str], list[str]]]:
    """(history, order) pairs: 40 customers over 60 products, popular ones more often."""
    rng = random.Random(seed)
    products = [f"p{n}" for n in range(60)]
    weights = [1.0 / (n + 1) for n in range(60)]
    bought: dict[int, dict[str, None]] = {}
    out = []
    for _ in range(count):
        customer = rng.randrange(40)
        order = rng.choices(products, weights, k=rng.randint(1, 8))
        history = bought.setdefault(customer, {})
        out.append((list(history), order))
        for product in order:
            history.pop(product, None)
            history[product] = None
    return out


def reference_scores(model: CoPurchaseOffers, history: list[str]) -> dict[str, float]:
    """The docstring's formula, one link at a time."""
    owned = set(history)
    scores: dict[str, float] = {}
    for i in dict.fromkeys(history[-model.history :]):
        links = model.co.get(i)
        if links is None:
            continue
        for n, count in links.as_dict().items():
            j = model.names[n]
            if j not in owned:
                scores[j] = scores.get(j, 0.0) + count / math.sqrt(
                    model.orders[i] * model.orders[j]
                )
    return scores


@pytest.mark.parametrize("seed", range(5))
def test_offers_are_the_best_scored_by_the_formula(seed: int) -> None:
    model = CoPurchaseOffers(neighbours=5, history=6)  # small: pruning and the cap happen
    for history, order in random_orders(seed, 400):
        offers = model.recommend(history, k=4)
        scores = reference_scores(model, history)
        best = sorted(scores.values(), reverse=True)[:4]
        got = [scores[j] for j in offers[: len(best)]]
        assert got == pytest.approx(best, rel=1e-12)
        assert not set(offers) & set(history) and len(set(offers)) == len(offers)
        model.learn_one(history, order)


def test_links_are_pruned_to_the_strongest() -> None:
    model = CoPurchaseOffers(neighbours=3)
    for n in range(7):  # "tea" linked to 7 products, p0 the most often
        for _ in range(7 - n):
            model.learn_one(["tea"], [f"p{n}"])
    links = model.co["tea"].as_dict()
    assert len(links) <= 6
    assert [model.names[j] for j in links][:3] == ["p0", "p1", "p2"]


def test_of_equal_counts_pruning_keeps_the_products_ordered_last() -> None:
    model = CoPurchaseOffers(neighbours=2)
    model.learn_one([], ["p4", "p3", "p2", "p1", "p0"])  # indexed in the reverse order
    for n in range(5):  # one order each: the fifth link prunes to 2
        model.learn_one(["tea"], [f"p{n}"])
    model.learn_one(["tea"], ["p9"])
    assert model.co["tea"].as_dict() == {model.index[j]: 1 for j in ("p1", "p0", "p9")}
    for j in ("p9", "p2", "p3"):  # the fifth link again: p9 (2 orders), then p0
        model.learn_one(["tea"], [j])
    assert model.co["tea"].as_dict() == {model.index[j]: c for j, c in (("p0", 1), ("p9", 2))}


def test_a_model_pickled_with_named_links_loads_and_goes_on_the_same() -> None:
    orders = random_orders(1, 300)
    model = CoPurchaseOffers(neighbours=5, history=6)
    for history, order in orders[:200]:
        model.learn_one(history, order)
    # The state as it was pickled before the links were kept in arrays.
    old: dict[str, Any] = {
        "neighbours": model.neighbours,
        "history": model.history,
        "orders": dict(model.orders),
        "co": {
            i: {model.names[j]: c for j, c in links.as_dict().items()}
            for i, links in model.co.items()
        },
        "inv_root": {j: 1.0 / math.sqrt(n) for j, n in model.orders.items()},
        "learned": model.learned,
        "ranked": list(model.ranked),
        "ranked_at": model.ranked_at,
    }
    loaded = CoPurchaseOffers.__new__(CoPurchaseOffers)
    loaded.__setstate__(old)
    again = pickle.loads(pickle.dumps(model))
    for history, order in orders[200:]:
        expected = model.recommend(history, k=5)
        assert loaded.recommend(history, k=5) == expected
        assert again.recommend(history, k=5) == expected
        for m in (model, loaded, again):
            m.learn_one(history, order)


def test_a_model_pickled_with_links_as_numpy_arrays_loads_and_goes_on_the_same() -> None:
    orders = random_orders(2, 300)
    model = CoPurchaseOffers(neighbours=5, history=6)
    for history, order in orders[:200]:
        model.learn_one(history, order)
    loaded = pickle.loads(pickle.dumps(model))
    for n, links in enumerate(loaded.co.values()):
        # Products and counts, as bytes (numpy arrays pickle slowly).
        ids, counts = (np.frombuffer(x, "<i4") for x in links.__getstate__())
        # As pickled until 2026-12-06: 32-bit arrays, and 64-bit ones before those.
        as_before = (ids, counts) if n % 2 else (ids.astype(np.intp), counts.astype(np.float64))
        links.__setstate__(as_before)
    for history, order in orders[200:]:
        assert loaded.recommend(history, k=5) == model.recommend(history, k=5)
        for m in (model, loaded):
            m.learn_one(history, order)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_popular_products_are_the_most_ordered_first_ordered_first_on_a_tie(seed: int) -> None:
    model = CoPurchaseOffers()
    rng = random.Random(seed)
    for history, order in random_orders(seed, 300):
        model.learn_one(history, order)
        exclude = set(rng.sample(sorted(model.orders), min(5, len(model.orders))))
        model.ranked = []  # ranked again now, not at its next RERANK_EVERY orders
        # As heapq.nlargest ranked them: sorted(..., reverse=True)[:n], which is stable.
        expected = [j for j, n in sorted(model.orders.items(), key=lambda kv: kv[1], reverse=True)]
        assert model.popular(10, exclude) == [j for j in expected if j not in exclude][:10]
