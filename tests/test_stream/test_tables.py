"""The customer table as the agents use it, on a real store (RocksDB via rocksdict, or
memory), no broker: what it writes, Faust's own reads find, under the key the changelog
carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from stream.app import faust_app, partition_items, raw_table
from stream.settings import Settings
from stream.stores import RocksDBStore
from stream.tables import CustomerTable, customer_id_of, customer_key

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
    assert customer_id_of(customer_key(customer_id)) == customer_id


SERIALIZERS = faust_app(Settings(table_store="memory"), PARTITIONS).serializers


@pytest.fixture
def rocksdb_customers(tmp_path: Path) -> Any:
    settings = Settings(table_store="rocksdb", data_dir=tmp_path)
    app = faust_app(settings, PARTITIONS)
    table = raw_table(app, settings, "customers", PARTITIONS, "customers")
    yield CustomerTable(table, RecordingSink()), table.data  # type: ignore[arg-type]
    for database in table.data._dbs.values():
        database.close()


def in_database(store: RocksDBStore, customer_id: str, partition: int) -> bytes | None:
    value: bytes | None = store._db_for_partition(partition).get(customer_key(customer_id))
    return value


def test_writes_are_held_until_written_behind_and_every_read_sees_them(
    rocksdb_customers: tuple[CustomerTable, RocksDBStore],
) -> None:
    customers, store = rocksdb_customers
    customers.set("c1", 0, b"v1")
    assert in_database(store, "c1", 0) is None
    assert customers.get("c1", 0) == b"v1"
    customers.write_behind()
    assert in_database(store, "c1", 0) == b"v1"
    customers.delete("c1", 0)
    assert customers.get("c1", 0) is None and in_database(store, "c1", 0) == b"v1"
    customers.write_behind()
    assert in_database(store, "c1", 0) is None
    # Faust's own reads and a partition's walk (the model ticks) write behind first.
    customers.set("c2", 1, b"v2")
    assert store["c2"] == b"v2"
    customers.set("c3", 1, b"v3")
    assert dict(partition_items(store.table, 1, PARTITIONS)) == {"c2": b"v2", "c3": b"v3"}


def test_reads_ahead_are_answered_from_memory_until_forgotten(
    rocksdb_customers: tuple[CustomerTable, RocksDBStore],
) -> None:
    customers, store = rocksdb_customers
    database = store._db_for_partition(2)
    database.put(customer_key("c1"), b"before")
    customers.read_ahead([(2, b"c1"), (2, b"nobody"), (2, b"\xff not utf-8"), (2, None)])
    database.put(customer_key("c1"), b"under it")  # not through the table: not seen
    database.put(customer_key("nobody"), b"under it")
    assert customers.get("c1", 2) == b"before" and customers.get("nobody", 2) is None
    customers.set("c1", 2, b"written")
    customers.write_behind()
    assert customers.get("c1", 2) == b"written"  # what was read ahead, as written since
    customers.forget_reads()
    assert customers.get("nobody", 2) == b"under it"
    customers.read_ahead_customers(3, ["c9"])
    database3 = store._db_for_partition(3)
    database3.put(customer_key("c9"), b"under it")
    assert customers.get("c9", 3) is None
    customers.forget_reads([3])
    assert customers.get("c9", 3) == b"under it"


def test_a_stored_changelog_batchs_offset_is_written_with_the_states_it_covers(
    rocksdb_customers: tuple[CustomerTable, RocksDBStore],
) -> None:
    """Without a write-ahead log a crash keeps a prefix of the database's writes: the
    changelog offset a restart recovers from must not be stored before the states it
    covers, which the worker holds until its batch is handled."""
    customers, store = rocksdb_customers
    database = store._db_for_partition(2)
    customers.set("c1", 2, b"v1")
    customers._stored(2, 10)
    assert database.get(store.offset_key) is None and in_database(store, "c1", 2) is None
    customers.write_behind()
    assert database.get(store.offset_key) == b"10" and in_database(store, "c1", 2) == b"v1"
    customers._stored(2, 11)  # nothing held: written at once
    assert database.get(store.offset_key) == b"11"
    customers.set("c2", 3, b"v2")
    customers._stored(3, 5)
    assert store.persisted_offset(TP(customers.changelog, 3)) == 5  # Faust's read: held first
    assert in_database(store, "c2", 3) == b"v2"


def test_a_partition_whose_write_fails_keeps_its_writes_held_and_the_others_are_written(
    rocksdb_customers: tuple[CustomerTable, RocksDBStore], caplog: pytest.LogCaptureFixture
) -> None:
    """A failed write batch (here a closed database: rocksdict's DbClosedError) loses
    nothing the worker still reads, and the changelog offset is not stored alone, ahead
    of the states the database lacks."""
    customers, store = rocksdb_customers
    customers.set("c1", 1, b"v1")
    customers.set("c2", 2, b"v2")
    store._db_for_partition(1).close()
    with pytest.raises(Exception, match="closed"):
        customers.write_behind()
    assert in_database(store, "c2", 2) == b"v2"  # the other partition is written
    assert customers.get("c1", 1) == b"v1"
    customers._stored(1, 10)  # held with the states, not written alone
    with pytest.raises(Exception, match="closed"):
        customers.write_behind()
    del store._dbs[1]  # opened again
    customers.write_behind()
    database = store._db_for_partition(1)
    assert in_database(store, "c1", 1) == b"v1" and database.get(store.offset_key) == b"10"
    # At a revoke (or a stop) what cannot be written is dropped, logged: the next
    # owner's recovery replays the changelog from the offset the database holds.
    customers.set("c3", 1, b"v3")
    customers._stored(1, 11)
    database.close()
    store.revoke_partitions(store.table, {TP(customers.changelog, 1)})
    assert "the held writes of partitions [1] could not be stored; dropped" in caplog.text
    assert customers.get("c3", 1) is None  # the database is dropped too: opened again
    assert store._db_for_partition(1).get(store.offset_key) == b"10"
