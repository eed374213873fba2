"""Small builders of valid wire events for tests."""

from __future__ import annotations

from typing import Any

BASE_TS = 1_300_000_000_000  # 2011-03-13
DAY = 86_400_000


def _event(kind: str, event_id: str, customer: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": event_id, "customer_id": customer, "ts": ts, **fields}


def purchase(event_id: str, customer: str, ts: int, amount: float, **kw: Any) -> dict[str, Any]:
    return _event("purchase", event_id, customer, ts, amount=amount, **kw)


def browse(event_id: str, customer: str, ts: int, action: str, **kw: Any) -> dict[str, Any]:
    return _event("browse", event_id, customer, ts, action=action, **kw)


def feedback(event_id: str, customer: str, ts: int, text: str, **kw: Any) -> dict[str, Any]:
    return _event("feedback", event_id, customer, ts, text=text, **kw)
