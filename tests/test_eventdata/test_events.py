from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import pytest

from eventdata.events import DEMO_DATA, build_events
from eventdata.extract import make_extract
from eventdata.retail import purchase_events
from schemas.events import parse_event_object
from tests.conftest import SHARED_DATA


def test_invoices_become_one_purchase_each_and_cancellations_refunds() -> None:
    rows = [
        {
            "InvoiceNo": "1",
            "StockCode": "85123A",
            "Description": "",
            "Quantity": "2",
            "InvoiceDate": "2011-01-02 10:00:00",
            "UnitPrice": "1.25",
            "CustomerID": "17850.0",
            "Country": "UK",
        },
        {
            "InvoiceNo": "1",
            "StockCode": "22423",
            "Description": "",
            "Quantity": "1",
            "InvoiceDate": "2011-01-02 10:00:00",
            "UnitPrice": "10",
            "CustomerID": "17850.0",
            "Country": "UK",
        },
        {
            "InvoiceNo": "C2",
            "StockCode": "POST",
            "Description": "",
            "Quantity": "-1",
            "InvoiceDate": "2011-01-03 10:00:00",
            "UnitPrice": "10",
            "CustomerID": "17850.0",
            "Country": "UK",
        },
        {
            "InvoiceNo": "3",
            "StockCode": "b",
            "Description": "",
            "Quantity": "1",
            "InvoiceDate": "2011-01-03 11:00:00",
            "UnitPrice": "10",
            "CustomerID": "",
            "Country": "UK",
        },
    ]
    events = purchase_events(rows)
    assert [(e["event_id"], e["customer_id"], e["amount"], e["items"]) for e in events] == [
        ("inv-1", "17850", 12.5, 3),
        ("inv-C2", "17850", -10.0, 1),
    ]
    # Each product once, as first listed; postage, discounts and fees are not products.
    assert [e["skus"] for e in events] == [["85123A", "22423"], []]


def test_the_shipped_extract_gives_valid_time_ordered_events() -> None:
    events = build_events(DEMO_DATA)
    kinds = collections.Counter(e["type"] for e in events)
    assert kinds["purchase"] > 1000 and kinds["browse"] > 10_000 and kinds["feedback"] > 100
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        parse_event_object(event)
    zh = [e for e in events if e.get("channel") == "review-zh"]
    assert zh and any("\u4e00" <= ch <= "\u9fff" for ch in zh[0]["text"])


def test_event_building_is_deterministic() -> None:
    assert build_events(DEMO_DATA) == build_events(DEMO_DATA)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the repo")
def test_the_shipped_extract_is_what_the_committed_script_makes(tmp_path: Path) -> None:
    make_extract(SHARED_DATA, tmp_path)
    for path in sorted(DEMO_DATA.glob("*.csv.gz")):
        made = (tmp_path / path.name).read_bytes()
        assert hashlib.sha256(made).digest() == hashlib.sha256(path.read_bytes()).digest(), path
