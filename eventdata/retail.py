"""Online Retail (UCI, CC BY 4.0) invoices as purchase events: one event per invoice.

Cancellation invoices (``C`` prefix) become refunds (negative amount). Lines without a
CustomerID are skipped. InvoiceDate is UK local time and is read as UTC.
"""

from __future__ import annotations

import csv
import functools
import gzip
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

RETAIL_FILE = "online-retail.csv.gz"


def read_csv_gz(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _ts_ms(invoice_date: str) -> int:
    dt = datetime.strptime(invoice_date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def customer_key(raw: str) -> str | None:
    """``'17850.0'`` -> ``'17850'``; blank -> ``None``."""
    raw = raw.strip()
    return str(int(float(raw))) if raw else None


def purchase_events(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    """Invoices as purchase events, in time order (ties by invoice number)."""
    invoices: dict[str, dict[str, Any]] = {}
    for row in rows:
        customer = customer_key(row["CustomerID"])
        if customer is None:
            continue
        invoice = row["InvoiceNo"]
        quantity = int(row["Quantity"])
        line_amount = quantity * float(row["UnitPrice"])
        event = invoices.get(invoice)
        if event is None:
            event = invoices[invoice] = {
                "type": "purchase",
                "event_id": f"inv-{invoice}",
                "customer_id": customer,
                "ts": _ts_ms(row["InvoiceDate"]),
                "amount": 0.0,
                "order_id": invoice,
                "currency": "GBP",
                "items": 0,
                "skus": {},  # ordered set: the order's products as first listed
            }
        event["amount"] += line_amount
        event["items"] += abs(quantity)
        if row["StockCode"][:1].isdigit():  # products; not POST, M, D, BANK CHARGES...
            event["skus"][row["StockCode"]] = None
    events = list(invoices.values())
    for event in events:
        event["amount"] = round(event["amount"], 2)
        event["skus"] = list(event["skus"])
    events.sort(key=lambda e: (e["ts"], e["order_id"]))
    return events


def retail_purchases(path: Path) -> list[dict[str, Any]]:
    """:func:`purchase_events` of an Online Retail file, read once per process (the full
    file takes 4.7 s, and each quality measurement read it again); a fresh copy for each
    caller, who may change it."""
    events: list[dict[str, Any]] = orjson.loads(_purchases_json(path))
    return events


@functools.cache
def _purchases_json(path: Path) -> bytes:
    return orjson.dumps(purchase_events(read_csv_gz(path)))
