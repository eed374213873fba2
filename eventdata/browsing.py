"""Seeded synthetic browsing: no real clickstream exists for this data.

Every results table that includes browse events says they come from here. Each real
purchase is preceded by a session that ends in a checkout. After a purchase, some
customers come back 1-45 days later, put items in the cart and leave (abandoned carts),
whether or not they ever buy again: a generator that only placed abandoned carts
between two purchases would leak the future (an open cart would promise another
order, and the churn model learned exactly that).
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
    purchases = list(purchases)
    last_ts = max((p["ts"] for p in purchases), default=0)  # no session after the data ends
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
        if rng.random() < abandon_rate:
            when = ts + rng.randint(24 * 60, 45 * 24 * 60) * MINUTE_MS
            if when <= last_ts:
                abandoned = f"s-{order}-a"
                actions = ["view"] * rng.randint(1, 5) + ["add_to_cart"] * rng.randint(1, 2)
                for i, action in enumerate(actions):
                    out.append(_event(customer, abandoned, i, action, when + i * MINUTE_MS, rng))
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
