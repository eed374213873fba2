"""The customer table as the agents read and write it: values straight from and to the
table's store (RocksDB, or memory), and its changelog records through the worker's
record batches (:mod:`stream.sink`) instead of one Faust send per write.

The changelog is the table's own: Faust recovers it, keeps standbys from it and moves
it at a rebalance as before. Once a batch of it is stored, its offset is written to
the store as Faust's own sends do, so that a restart on the same disk replays only
what came after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from faust.types import TP

from stream.sink import BatchSink
from stream.stores import RocksDBStore


def customer_key(customer_id: str) -> bytes:
    """The table's key of a customer: Faust's JSON key encoding, as recovery writes the
    changelog's keys to the store and Faust's reads look them up. With orjson installed
    (a dependency) Faust's is ``orjson.dumps``; called directly, the key costs a tenth
    (Faust's registry took 1.1% of the worker's samples). A test holds the two equal."""
    return orjson.dumps(customer_id)


def customer_id_of(key: bytes) -> str:
    """The customer id of a table key (:func:`customer_key`), as Faust decodes it."""
    customer_id: str = orjson.loads(key)
    return customer_id


class CustomerTable:
    """Customer id -> ``CustomerState`` bytes, in a Faust table (``stream.app.raw_table``).

    Reads and writes name the customer's partition. On RocksDB they go straight to that
    partition's database under :func:`customer_key` (500 fetched records' states read
    ahead in one call a partition, their writes put behind them in one:
    :class:`stream.stores.RocksDBStore`), as
    does the changelog record (through Faust's table: three encodings through its
    registry, and a look-up of the current event for each); on the memory store, through
    the table's store.
    """

    def __init__(self, table: Any, sink: BatchSink) -> None:
        self.table = table
        self.sink = sink
        self.changelog = table.changelog_topic.get_topic_name()
        sink.state_topics.add(self.changelog)  # stored before the outputs appended with it
        sink.on_delivered(self.changelog, self._stored)
        store = table.data
        self._rocksdb = store if isinstance(store, RocksDBStore) else None

    def get(self, customer_id: str, partition: int) -> bytes | None:
        """One read of the store (a Faust table's ``get`` reads it twice)."""
        if self._rocksdb is not None:
            return self._rocksdb.read(customer_key(customer_id), partition)
        value: bytes | None = self.table.data.get(customer_id)
        return value

    def read_ahead(self, keys: Iterable[tuple[int, bytes | None]]) -> None:
        """Read the states of the customers these (partition, Kafka key) pairs name, a
        call per partition, for :meth:`get` to answer from memory until
        :meth:`forget_reads` (RocksDB only). A key that is no customer id costs a read
        of nothing: the producers key events by customer id, and a record keyed
        otherwise is read on its own when handled."""
        if self._rocksdb is None:
            return
        wanted: dict[int, list[bytes]] = {}
        for partition, key in keys:
            if key:
                try:
                    wanted.setdefault(partition, []).append(customer_key(key.decode()))
                except UnicodeDecodeError:
                    continue
        for partition, encoded in wanted.items():
            self._rocksdb.read_ahead(partition, encoded)

    def read_ahead_customers(self, partition: int, customer_ids: Iterable[str]) -> None:
        """Read these customers' states of one partition in one call (RocksDB only)."""
        if self._rocksdb is not None:
            self._rocksdb.read_ahead(partition, map(customer_key, customer_ids))

    def write_behind(self) -> None:
        """Put the held writes in the store (RocksDB holds them until then)."""
        if self._rocksdb is not None:
            self._rocksdb.write_behind()

    def forget_reads(self, partitions: Iterable[int] | None = None) -> None:
        """Drop what was read ahead (of these partitions; of all by default)."""
        if self._rocksdb is not None:
            self._rocksdb.forget_reads(partitions)

    def set(self, customer_id: str, partition: int, value: bytes) -> None:
        key = customer_key(customer_id)
        if self._rocksdb is not None:
            self._rocksdb.write(key, value, partition)
        else:
            self.table.data[customer_id] = value
        self.sink.append(self.changelog, partition, key, value)

    def delete(self, customer_id: str, partition: int) -> None:
        """Remove the customer, and tombstone them on the changelog."""
        key = customer_key(customer_id)
        if self._rocksdb is not None:
            self._rocksdb.remove(key, partition)
        else:
            del self.table.data[customer_id]
        self.sink.append(self.changelog, partition, key, None)

    def _stored(self, partition: int, offset: int) -> None:
        # On RocksDB, written with the states held for the partition (RocksDBStore).
        self.table.data.set_persisted_offset(TP(self.changelog, partition), offset)
