"""The worker's RocksDB table store: Faust's, with one memory budget for every table
partition of the worker.

Faust opens a RocksDB database per table partition, each with its own block cache and
memtables, so memory grows with the partitions a worker owns: three tables of 8
partitions are 24 databases (Faust's defaults: a 2-GiB cache and 3 x 64-MiB memtables
each). Here they all share one block cache of ``CRM_ROCKSDB_MEMORY_BYTES``, and their
memtables are charged to it through one write buffer manager, so the budget holds
however many partitions a worker owns. RocksDB enforces it only on a write, and only on
the database written to, skipping one whose last flush has not finished: a burst that
outruns the flushes leaves memtables over the budget in databases no longer written to
(seen in CI: 17 MiB of an 8-MiB budget's 4). :meth:`RocksDBMemory.release`, run on a
timer by the worker, flushes the largest of them. And the cache is sharded (RocksDB's
LRU cache, whose shards rocksdict does not let us set): the memtables' reservations are
pinned in it, and a shard that holds more of them than its share of the budget goes
over it, which the other shards' evictions do not make up for. So the budget can be
passed by up to what the memtables hold: their half of it, once ``release`` has brought
them back (seen: 16.9 and, in CI, 18.7 MiB of 16 with the memtables within their 8).

RocksDB's write-ahead log is off, as Kafka Streams has it: the changelog topic is the
log. A clean stop or a revoke flushes the memtables; after a crash a database is back at
its last flush, an earlier point of the same writes (its changelog offset included), and
Faust's recovery replays the changelog from there. With the log on, each write also
appended to a file: 5.6-8.3 us a write against 1.4 us without (docs/benchmarks.md).

The store is registered with Faust as ``crmrocksdb://`` (an entry point of the
``faust.stores`` group, in pyproject.toml).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import rocksdb
from faust.types import TP, CollectionT

log = logging.getLogger(__name__)

#: A memtable's unit of allocation. RocksDB's default (an eighth of the memtable) is
#: 1 MiB at 8-MiB memtables, and every database holds one: 24 databases then kept 24
#: MiB of memtables whatever the budget said; at 256 KiB they stay within it.
ARENA_BLOCK_BYTES = 256 * 1024

#: How often the worker brings memtables left over the budget back within it
#: (:meth:`RocksDBMemory.release`): a second's writes, at most, held over it.
RELEASE_INTERVAL_S = 1.0


class RocksDBMemory:
    """The memory of a worker's RocksDB databases: one block cache, which the memtables
    are charged to (at most half of it).

    >>> memory = RocksDBMemory(64 * 1024 * 1024)
    >>> memory.usage(), memory.memtables(), memory.release()
    (0, 0, 0)
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.cache = rocksdict.Cache(budget_bytes)
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_bytes // 2, False, self.cache
        )
        # Weak: a store lives as long as its table, and is Faust's to drop.
        self.stores: weakref.WeakSet[RocksDBStore] = weakref.WeakSet()

    def databases(self) -> Iterator[rocksdict.Rdict]:
        """The open databases of every store on this memory."""
        for store in list(self.stores):
            yield from list(store._dbs.values())

    def release(self) -> int:
        """Flush the largest active memtables, in the background, until what they hold is
        back within the memtables' half of the budget; skip a database already flushing
        (its memtable is freed when that flush ends). Returns how many were flushed."""
        excess = self.memtables() - self.budget_bytes // 2
        if excess <= 0:
            return 0
        active = sorted(
            (
                (_property(db, "cur-size-active-mem-table"), db)
                for db in self.databases()
                if not _property(db, "num-immutable-mem-table")
            ),
            key=lambda sized: sized[0],
            reverse=True,
        )
        flushed = 0
        for size, db in active:
            if excess <= 0 or size <= ARENA_BLOCK_BYTES:  # an empty memtable holds a block
                break
            db.flush(wait=False)
            excess -= size
            flushed += 1
        return flushed

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

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        db: rocksdict.Rdict = super().open(path, read_only=read_only)
        writes = rocksdict.WriteOptions()
        # A property at run time; rocksdict's stubs call it a method.
        writes.disable_wal = True  # type: ignore[method-assign,assignment]
        db.set_write_options(writes)
        return db


class RocksDBStore(rocksdb.Store):
    """Faust's RocksDB store; its table's ``options`` carry the worker's
    :class:`RocksDBMemory` as ``memory``.

    The worker's own reads and writes (:meth:`read`, :meth:`write`, :meth:`remove`) go
    through a buffer per partition: writes are held until :meth:`write_behind` puts
    each partition's in one write batch, and keys read ahead (:meth:`read_ahead`: one
    multi-get per partition) are answered from memory until :meth:`forget_reads`. Called
    one at a time between the worker's Python work, each RocksDB call found its caches
    cold: 7.9 us of CPU a read and 7.1 a write in the worker, against 2.2 and 1.3 in a
    loop of them alone (docs/benchmarks.md). The worker reads ahead and writes behind
    500 fetched records at a time (``stream.transport.READ_AHEAD_RECORDS``) and a
    scan's slices; Faust's own reads and walks of the store (a model tick's) write
    behind first, and the changelog offset it records goes into the held writes.
    """

    def __init__(self, *args: Any, options: Mapping[str, Any], **kwargs: Any) -> None:
        # A copy: Faust's store pops keys from the table's own dict, which a second store
        # of the same table reads again.
        options = dict(options)
        memory: RocksDBMemory = options.pop("memory")
        super().__init__(*args, options=options, driver="rocksdict", **kwargs)
        self.rocksdb_options = BudgetedRocksDBOptions(memory, **options)
        memory.stores.add(self)
        #: Per partition: written and not yet in the database (``None``: removed).
        self._pending: dict[int, dict[bytes, bytes | None]] = {}
        #: Per partition: read ahead (``None``: not in the database).
        self._ahead: dict[int, dict[bytes, bytes | None]] = {}

    def read(self, key: bytes, partition: int) -> bytes | None:
        """The value of an encoded key in one partition's database. Faust's reads take
        the partition from the current event and encode the key again for each call."""
        pending = self._pending.get(partition)
        if pending is not None and key in pending:
            return pending[key]
        ahead = self._ahead.get(partition)
        if ahead is not None and key in ahead:
            return ahead[key]
        value: bytes | None = self._db_for_partition(partition).get(key)
        return value

    def read_ahead(self, partition: int, keys: Iterable[bytes]) -> None:
        """Read these keys of one partition in one call, for :meth:`read` to answer."""
        ahead = self._ahead.setdefault(partition, {})
        pending = self._pending.get(partition, {})
        wanted = [key for key in set(keys) if key not in ahead and key not in pending]
        if wanted:
            ahead.update(zip(wanted, self._db_for_partition(partition).get(wanted), strict=True))

    def write(self, key: bytes, value: bytes, partition: int) -> None:
        # Not in Faust's index of keys' partitions (a locked LRU): the worker's reads
        # name the partition; Faust's own, with none, find the key in its database.
        self._pending.setdefault(partition, {})[key] = value

    def remove(self, key: bytes, partition: int) -> None:
        self._key_index.pop(key, None)  # changelog recovery indexes what it writes
        self._pending.setdefault(partition, {})[key] = None

    def write_behind(self, partitions: Iterable[int] | None = None) -> None:
        """Put the held writes (of these partitions; of all by default) in their
        databases, a write batch each. A partition whose batch fails keeps its writes
        held: reads still see them, and the changelog offset stays with them rather than
        being stored alone, ahead of states its database lacks. The other partitions are
        still written; then the first failure is raised."""
        failure: Exception | None = None
        for partition in list(self._pending) if partitions is None else partitions:
            pending = self._pending.get(partition)
            if not pending:
                continue
            try:
                batch = rocksdict.WriteBatch(raw_mode=True)
                for key, value in pending.items():
                    if value is None:
                        batch.delete(key)
                    else:
                        batch.put(key, value)
                self._db_for_partition(partition).write(batch)
            except Exception as exc:
                failure = failure or exc
                continue
            del self._pending[partition]
            ahead = self._ahead.get(partition)
            if ahead:  # a key read ahead and written since: now as written
                ahead.update(pending)
        if failure is not None:
            raise failure

    def drop_held(self, partitions: Iterable[int] | None = None) -> None:
        """Write behind what these partitions hold (all by default), and drop what could
        not be written, logged: at a stop or a revoke nothing reads them here again, and
        recovery restores them from the changelog, replayed from the offset this
        database holds, which is before them (a held write whose changelog record was
        not delivered leaves its input record uncommitted: read again)."""
        wanted = None if partitions is None else list(partitions)
        try:
            self.write_behind(wanted)
        except Exception:
            held = list(self._pending) if wanted is None else wanted
            dropped = sorted(p for p in held if p in self._pending)
            log.exception(
                "table %s: the held writes of partitions %s could not be stored; dropped "
                "(changelog recovery restores them)",
                self.table.name,
                dropped,
            )
            for partition in dropped:
                self._pending.pop(partition, None)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Faust's record of the changelog offset the database holds, written with the
        partition's held writes when it has any: without a write-ahead log a crash keeps
        a prefix of a database's writes, which must not hold an offset past states it
        lacks. A write batch is stored whole or not at all."""
        pending = self._pending.get(tp.partition)
        if pending:
            pending[self.offset_key] = str(offset).encode()
        else:
            super().set_persisted_offset(tp, offset)

    def persisted_offset(self, tp: TP) -> int | None:
        self.write_behind([tp.partition])
        return super().persisted_offset(tp)

    def forget_reads(self, partitions: Iterable[int] | None = None) -> None:
        """Drop what was read ahead (of these partitions; of all by default)."""
        if partitions is None:
            self._ahead.clear()
        for partition in partitions or ():
            self._ahead.pop(partition, None)

    # Faust's own reads and walks: the held writes first.
    def _get(self, key: bytes) -> bytes | None:
        self.write_behind()
        return super()._get(key)

    def _contains(self, key: bytes) -> bool:
        self.write_behind()
        return super()._contains(key)

    def _visible_keys(self, db: Any) -> Iterator[bytes]:
        self.write_behind()
        return super()._visible_keys(db)

    def _visible_items(self, db: Any) -> Iterator[tuple[bytes, bytes]]:
        self.write_behind()
        return super()._visible_items(db)

    async def stop(self) -> None:
        self.drop_held()
        self.forget_reads()
        _flush(self._dbs.values())
        await super().stop()

    def revoke_partitions(self, table: CollectionT, tps: set[TP]) -> None:
        revoked = [tp.partition for tp in tps if tp.topic in table.changelog_topic.topics]
        self.drop_held(revoked)
        self.forget_reads(revoked)
        _flush(db for p in revoked if (db := self._dbs.get(p)) is not None)
        super().revoke_partitions(table, tps)


def _property(db: rocksdict.Rdict, name: str) -> int:
    return int(db.property_int_value(f"rocksdb.{name}") or 0)


def _flush(databases: Iterable[rocksdict.Rdict]) -> None:
    """Write the memtables to disk: with no write-ahead log, what a database keeps when
    Faust drops it (it never closes them) should not depend on when it is collected.
    One that fails is logged and left at its last flush, from which recovery replays."""
    for db in databases:
        try:
            db.flush(wait=True)
        except Exception:
            log.exception("flushing a table database failed: left at its last flush")
