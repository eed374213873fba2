"""The customer table's per-partition walk, on a real RocksDB store (no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson

from stream.app import faust_app, partition_items, raw_table
from stream.settings import Settings
from stream.topics import partition_for

PARTITIONS = 4


def test_a_partitions_walk_reads_its_own_rocksdb_database_and_no_other(tmp_path: Path) -> None:
    settings = Settings(table_store="rocksdb", data_dir=tmp_path)
    app = faust_app(settings, PARTITIONS)
    table = raw_table(app, settings, "customers", PARTITIONS, "test")
    store = table.data
    written: dict[int, set[tuple[str, bytes]]] = {p: set() for p in range(PARTITIONS)}
    for n in range(200):
        customer_id = f"c{n}"
        p = partition_for(customer_id, PARTITIONS)
        value = orjson.dumps({"customer_id": customer_id})
        # As the worker writes: in the context of an event of the customer's partition.
        store._db_for_partition(p).put(store._encode_key(customer_id), value)
        written[p].add((customer_id, value))
    for p in range(PARTITIONS):
        walked = list(partition_items(table, p, PARTITIONS))
        assert len(walked) == len(written[p]) > 0
        assert set(walked) == written[p]
        odd = list(partition_items(table, p, PARTITIONS, lambda v: v[-3] in b"13579"))
        assert set(odd) == {(c, v) for c, v in written[p] if int(c[1:]) % 2}
