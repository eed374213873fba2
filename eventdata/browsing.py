"""Seeded synthetic browsing: no real clickstream exists for this data.

Every results table that includes browse events says they come from here. Each real
purchase is preceded by a session that ends in a checkout; between purchases some
sessions put items in the cart and leave (abandoned carts).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

MINUTE_MS = 60_000


def browse_events(
    purchases: Iterable[dict[str, Any]], *, seed: int = 11, abandon_rate: float = 0.3
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    previous: dict[str, int] = {}
    for purchase in purchases:
        if purchase["amount"] <= 0:
            continue
        customer, ts, order = purchase["customer_id"], purchase["ts"], purchase["order_id"]
        session = f"s-{order}"
        start = ts - rng.randint(5, 90) * MINUTE_MS
        steps = ["search"] * rng.randint(0, 2) + ["view"] * rng.randint(1, 8)
        steps += ["add_to_cart"] * max(1, min(int(purchase.get("items") or 1), 3))
        for i, action in enumerate(steps):
            out.append(_event(customer, session, i, action, start + i * MINUTE_MS // 2, rng))
        out.append(_event(customer, session, len(steps), "checkout", ts - MINUTE_MS, rng))
        last = previous.get(customer)
        if last is not None and ts - last > 2 * 24 * 60 * MINUTE_MS and rng.random() < abandon_rate:
            when = rng.randint(last + 60 * MINUTE_MS, ts - 60 * MINUTE_MS)
            abandoned = f"s-{order}-a"
            actions = ["view"] * rng.randint(1, 5) + ["add_to_cart"] * rng.randint(1, 2)
            for i, action in enumerate(actions):
                out.append(_event(customer, abandoned, i, action, when + i * MINUTE_MS, rng))
        previous[customer] = ts
    return out


def _event(
    customer: str, session: str, step: int, action: str, ts: int, rng: random.Random
) -> dict[str, Any]:
    return {
        "type": "browse",
        "event_id": f"{session}-{step}",
        "customer_id": customer,
        "ts": ts,
        "action": action,
        "session_id": session,
        "sku": f"sku-{rng.randint(1, 4000)}",
    }
