"""The worker's RocksDB table store: Faust's, with one memory budget for every table
partition of the worker.

Faust opens a RocksDB database per table partition, each with its own block cache and
memtables, so memory grows with the partitions a worker owns: three tables of 8
partitions are 24 databases (Faust's defaults: a 2-GiB cache and 3 x 64-MiB memtables
each). Here they all share one block cache of ``CRM_ROCKSDB_MEMORY_BYTES``, and their
memtables are charged to it through one write buffer manager (a memtable is flushed
when they all pass half of the budget), so the budget holds however many partitions a
worker owns.

The store is registered with Faust as ``crmrocksdb://`` (an entry point of the
``faust.stores`` group, in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rocksdict
from faust.stores import rocksdb

#: A memtable's unit of allocation. RocksDB's default (an eighth of the memtable) is
#: 1 MiB at 8-MiB memtables, and every database holds one: 24 databases then kept 24
#: MiB of memtables whatever the budget said; at 256 KiB they stay within it.
ARENA_BLOCK_BYTES = 256 * 1024


class RocksDBMemory:
    """The memory of a worker's RocksDB databases: one block cache, which the memtables
    are charged to (at most half of it).

    >>> memory = RocksDBMemory(64 * 1024 * 1024)
    >>> memory.usage(), memory.memtables()
    (0, 0)
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.cache = rocksdict.Cache(budget_bytes)
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_bytes // 2, False, self.cache
        )

    def usage(self) -> int:
        """Bytes held: cached blocks and memtables."""
        usage: int = self.cache.get_usage()
        return usage

    def memtables(self) -> int:
        """Bytes of it held by memtables."""
        usage: int = self.write_buffers.get_usage()
        return usage


class BudgetedRocksDBOptions(rocksdb.RocksDBOptions):
    """Faust's options of one database, on the worker's shared memory."""

    def __init__(self, memory: RocksDBMemory, **options: Any) -> None:
        super().__init__(**options)
        self.memory = memory

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.memory.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.memory.write_buffers)
        options.set_arena_block_size(ARENA_BLOCK_BYTES)
        return options


class RocksDBStore(rocksdb.Store):
    """Faust's RocksDB store; its table's ``options`` carry the worker's
    :class:`RocksDBMemory` as ``memory``."""

    def __init__(self, *args: Any, options: Mapping[str, Any], **kwargs: Any) -> None:
        # A copy: Faust's store pops keys from the table's own dict, which a second store
        # of the same table reads again.
        options = dict(options)
        memory = options.pop("memory")
        super().__init__(*args, options=options, driver="rocksdict", **kwargs)
        self.rocksdb_options = BudgetedRocksDBOptions(memory, **options)
