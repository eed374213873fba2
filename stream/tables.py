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


class CustomerTable:
    """Customer id -> ``CustomerState`` bytes, in a Faust table (``stream.app.raw_table``).

    Writes go to the store of the current event's partition (Faust's rule for table
    writes): call them while handling an event of the customer's partition, or a scan
    tick of it.
    """

    def __init__(self, table: Any, sink: BatchSink) -> None:
        self.table = table
        self.sink = sink
        self.changelog = table.changelog_topic.get_topic_name()
        self._serializers = table.app.serializers
        sink.state_topics.add(self.changelog)  # stored before the outputs appended with it
        sink.on_delivered(self.changelog, self._stored)

    def get(self, customer_id: str) -> bytes | None:
        """One read of the store (a Faust table's ``get`` reads it twice)."""
        value: bytes | None = self.table.data.get(customer_id)
        return value

    def set(self, customer_id: str, partition: int, value: bytes) -> None:
        self.table.data[customer_id] = value
        self.sink.append(self.changelog, partition, self._key(customer_id), value)

    def delete(self, customer_id: str, partition: int) -> None:
        """Remove the customer, and tombstone them on the changelog."""
        del self.table.data[customer_id]
        self.sink.append(self.changelog, partition, self._key(customer_id), None)

    def _key(self, customer_id: str) -> bytes:
        # The table's own key encoding: recovery writes changelog keys to the store as
        # they are, and reads encode the key this way.
        key: bytes = self._serializers.dumps_key(
            str, customer_id, serializer=self.table.key_serializer
        )
        return key

    def _stored(self, partition: int, offset: int) -> None:
        self.table.data.set_persisted_offset(TP(self.changelog, partition), offset)
