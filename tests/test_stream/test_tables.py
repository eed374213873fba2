"""The customer table as the agents use it, on a real store (RocksDB via rocksdict, or
memory), no broker: what it writes, Faust's own reads find, under the key the changelog
carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.app import faust_app, raw_table
from stream.settings import Settings
from stream.stores import RocksDBStore
from stream.tables import CustomerTable, customer_key

PARTITIONS = 4


class RecordingSink:
    """What the table hands to the worker's record sink (tests/test_stream/test_sink.py
    has the real one against the broker)."""

    def __init__(self) -> None:
        self.state_topics: set[str] = set()
        self.records: list[tuple[str, int, bytes | None, bytes | None]] = []

    def on_delivered(self, topic: str, callback: Any) -> None:
        pass

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        self.records.append((topic, partition, key, value))


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_what_the_table_writes_faust_reads_and_the_changelog_carries(
    tmp_path: Path, store: str
) -> None:
    settings = Settings(table_store=store, data_dir=tmp_path)
    app = faust_app(settings, PARTITIONS)
    table = raw_table(app, settings, "customers", PARTITIONS, "customers")
    assert isinstance(table.data, RocksDBStore) == (store == "rocksdb")
    sink = RecordingSink()
    customers = CustomerTable(table, sink)  # type: ignore[arg-type]
    changelog = table.changelog_topic.get_topic_name()
    names = ["c1", "kundé-ø", "c2"]  # not only ASCII: Faust's JSON keys escape it
    try:
        for n, name in enumerate(names):
            assert customers.get(name, n) is None
            customers.set(name, n, f"state of {name}".encode())
        for n, name in enumerate(names):
            assert customers.get(name, n) == f"state of {name}".encode()
            assert table.data[name] == f"state of {name}".encode()  # Faust's read
        if store == "rocksdb":
            assert customers.get("c1", 1) is None  # each partition its own database
        keys = [table.data._encode_key(name) for name in names]
        assert [(t, p, k) for t, p, k, _ in sink.records] == [
            (changelog, n, key) for n, key in enumerate(keys)
        ]
        customers.delete("kundé-ø", 1)
        assert customers.get("kundé-ø", 1) is None and "kundé-ø" not in table.data
        assert sink.records[-1] == (changelog, 1, keys[1], None)
        assert customers.get("c2", 2) == b"state of c2"
    finally:
        for database in getattr(table.data, "_dbs", {}).values():
            database.close()


@given(st.text(max_size=64))
def test_a_customers_key_is_fausts_json_key_encoding(customer_id: str) -> None:
    assert customer_key(customer_id) == SERIALIZERS.dumps_key(str, customer_id, serializer="json")


SERIALIZERS = faust_app(Settings(table_store="memory"), PARTITIONS).serializers
