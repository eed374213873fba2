"""Small builders of valid wire events for tests."""

from __future__ import annotations

from typing import Any

BASE_TS = 1_300_000_000_000  # 2011-03-13
DAY = 86_400_000


def purchase(event_id: str, customer: str, ts: int, amount: float, **kw: Any) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "customer_id": customer,
        "ts": ts,
        "amount": amount,
        **kw,
    }


def browse(event_id: str, customer: str, ts: int, action: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "browse",
        "event_id": event_id,
        "customer_id": customer,
        "ts": ts,
        "action": action,
        **kw,
    }


def feedback(event_id: str, customer: str, ts: int, text: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "feedback",
        "event_id": event_id,
        "customer_id": customer,
        "ts": ts,
        "text": text,
        **kw,
    }
