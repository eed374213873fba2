"""The worker's RocksDB store keeps every table partition within one memory budget (real
RocksDB via rocksdict, no broker)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stream.app import faust_app, raw_table
from stream.settings import Settings

PARTITIONS = 4
MIB = 1024 * 1024


def fill(tables: list[Any], megabytes: int) -> dict[tuple[int, int, bytes], bytes]:
    """Write about ``megabytes`` across every partition of ``tables``, as the worker does."""
    written = {}
    value_bytes = 1024
    for n in range(megabytes * MIB // value_bytes):
        t, p = n % len(tables), (n // len(tables)) % PARTITIONS
        store = tables[t].data
        key = store._encode_key(f"c{n}")
        value = os.urandom(value_bytes)
        store._db_for_partition(p).put(key, value)
        written[t, p, key] = value
    return written


def memtable_bytes(tables: list[Any]) -> int:
    return sum(
        int(store._db_for_partition(p).property_int_value("rocksdb.cur-size-all-mem-tables"))
        for store in (table.data for table in tables)
        for p in range(PARTITIONS)
    )


@pytest.mark.parametrize("budget_mib", [8, 16])
def test_all_partitions_of_all_tables_share_one_memory_budget(
    tmp_path: Path, budget_mib: int
) -> None:
    settings = Settings(
        table_store="rocksdb",
        data_dir=tmp_path,
        rocksdb_memory_bytes=budget_mib * MIB,
        rocksdb_write_buffer_bytes=8 * MIB,
    )
    app = faust_app(settings, PARTITIONS)
    memory = app.rocksdb_memory
    assert memory is not None and memory.budget_bytes == budget_mib * MIB
    tables = [
        raw_table(app, settings, name, PARTITIONS, name)
        for name in ("customers", "model-checkpoints")
    ]
    # 8 databases with 8-MiB memtables: alone they would hold all 48 MiB in memory. Shared,
    # a memtable is flushed once all pass half the budget; flushes run in the background,
    # so the bound checked is the whole budget.
    written = fill(tables, 48)
    assert memtable_bytes(tables) <= memory.memtables() <= budget_mib * MIB
    for (t, p, key), value in written.items():  # everything reads back, flushed or not
        assert tables[t].data._db_for_partition(p).get(key) == value
    assert 0 < memory.usage() <= budget_mib * MIB * 1.1
