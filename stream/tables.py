"""The customer table as the agents read and write it: values straight from and to the
table's store (RocksDB, or memory), and its changelog records through the worker's
record batches (:mod:`stream.sink`) instead of one Faust send per write.

The changelog is the table's own: Faust recovers it, keeps standbys from it and moves
it at a rebalance as before. Once a batch of it is stored, its offset is written to
the store as Faust's own sends do, so that a restart on the same disk replays only
what came after.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP

from stream.sink import BatchSink
from stream.stores import RocksDBStore


class CustomerTable:
    """Customer id -> ``CustomerState`` bytes, in a Faust table (``stream.app.raw_table``).

    Reads and writes name the customer's partition. On RocksDB they go straight to that
    partition's database with the key encoded once for the read, the write and the
    changelog record (through Faust's table: three encodings, and a look-up of the
    current event for each); on the memory store, through the table's store.
    """

    def __init__(self, table: Any, sink: BatchSink) -> None:
        self.table = table
        self.sink = sink
        self.changelog = table.changelog_topic.get_topic_name()
        self._serializers = table.app.serializers
        sink.state_topics.add(self.changelog)  # stored before the outputs appended with it
        sink.on_delivered(self.changelog, self._stored)
        store = table.data
        self._rocksdb = store if isinstance(store, RocksDBStore) else None
        #: The latest (customer id, encoded key): an event reads, then writes, one customer.
        self._latest_key: tuple[str, bytes] | None = None

    def get(self, customer_id: str, partition: int) -> bytes | None:
        """One read of the store (a Faust table's ``get`` reads it twice)."""
        if self._rocksdb is not None:
            return self._rocksdb.read(self._key(customer_id), partition)
        value: bytes | None = self.table.data.get(customer_id)
        return value

    def set(self, customer_id: str, partition: int, value: bytes) -> None:
        key = self._key(customer_id)
        if self._rocksdb is not None:
            self._rocksdb.write(key, value, partition)
        else:
            self.table.data[customer_id] = value
        self.sink.append(self.changelog, partition, key, value)

    def delete(self, customer_id: str, partition: int) -> None:
        """Remove the customer, and tombstone them on the changelog."""
        key = self._key(customer_id)
        if self._rocksdb is not None:
            self._rocksdb.remove(key, partition)
        else:
            del self.table.data[customer_id]
        self.sink.append(self.changelog, partition, key, None)

    def _key(self, customer_id: str) -> bytes:
        # The table's own key encoding: recovery writes changelog keys to the store as
        # they are, and Faust's reads encode the key this way.
        latest = self._latest_key
        if latest is not None and latest[0] == customer_id:
            return latest[1]
        key: bytes = self._serializers.dumps_key(
            str, customer_id, serializer=self.table.key_serializer
        )
        self._latest_key = (customer_id, key)
        return key

    def _stored(self, partition: int, offset: int) -> None:
        self.table.data.set_persisted_offset(TP(self.changelog, partition), offset)
