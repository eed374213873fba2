"""Changelog recovery (``stream.recovery``) on a real table store, no broker: the records
a pass finds queued are all applied as Faust's loop applies them, and whether recovery is
over is asked once per pass, not once per record. The worker tests restore real
changelogs end to end (tests/test_stream/test_worker.py, test_delivery.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from faust.types import TP, Message

from stream.app import faust_app, raw_table
from stream.recovery import Recovery, TableManager
from stream.settings import Settings
from stream.tables import CustomerTable
from tests.test_stream.test_tables import RecordingSink

PARTITIONS = 4
#: Records per recovering partition: more than a table's recovery buffer (Faust's 1,000).
RECORDS = 1_500
CUSTOMERS = 40


async def recover(tmp_path: Path, store: str) -> tuple[dict[tuple[str, int], bytes | None], Any]:
    settings = Settings(table_store=store, data_dir=tmp_path)
    app = faust_app(settings, PARTITIONS)
    table = raw_table(app, settings, "customers", PARTITIONS, "customers")
    tables = cast(TableManager, app.tables)
    recovery = tables.recovery
    assert isinstance(recovery, Recovery)
    changelog = table.changelog_topic
    actives = [TP(changelog.get_topic_name(), p) for p in (0, 2)]
    standby = TP(changelog.get_topic_name(), 1)
    # As Faust's recovery sets it up once it has the highwaters (none read yet).
    for tp in actives:
        recovery.active_tps.add(tp)
        recovery.active_offsets[tp] = -1
        recovery.active_highwaters[tp] = RECORDS - 1
        recovery.tp_to_table[tp] = table
    recovery.standby_tps.add(standby)
    recovery.standby_offsets[standby] = -1
    recovery.standby_highwaters[standby] = 9
    recovery.tp_to_table[standby] = table
    recovery._set_recovery_started()

    def message(tp: TP, offset: int, customer: str, value: bytes | None) -> Message:
        key = app.serializers.dumps_key(str, customer, serializer="json")
        return Message(tp.topic, tp.partition, offset, 0.0, 0, None, key, value, None, tp=tp)

    queue = tables.changelog_queue
    records: list[Message] = []
    for offset in range(RECORDS):
        for tp in actives:
            customer = f"c{tp.partition}-{offset % CUSTOMERS}"
            records.append(message(tp, offset, customer, f"{customer}@{offset}".encode()))
        if offset == RECORDS // 2:  # redelivered: older than what was applied
            records.append(message(actives[0], 3, "c0-3", b"stale"))
    records.append(message(actives[1], RECORDS, "c2-7", None))  # a tombstone, past the end
    records.extend(message(standby, offset, "s", b"standby") for offset in range(10))
    records.append(message(TP("elsewhere", 0), 0, "x", b"not ours"))
    for record in records:
        queue.put_nowait(await changelog.decode(record, propagate=True))

    asked: list[bool] = []
    faust_asks = recovery.need_recovery

    def need_recovery() -> bool:
        asked.append(True)
        return faust_asks()

    recovery.need_recovery = need_recovery  # type: ignore[method-assign]
    ended = asyncio.ensure_future(recovery.signal_recovery_end.wait())
    slurping = asyncio.ensure_future(Recovery._slurp_changelogs(recovery))
    try:
        await asyncio.wait_for(ended, timeout=30)
        for _ in range(100):  # the rest of the queue: the standby's records and the tombstone
            if queue.empty():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
    finally:
        slurping.cancel()
    recovery.flush_buffers()
    customers = CustomerTable(table, RecordingSink())  # type: ignore[arg-type]
    state = {
        (f"c{p}-{n}", p): customers.get(f"c{p}-{n}", p) for p in (0, 2) for n in range(CUSTOMERS)
    }
    state[("s", 1)] = customers.get("s", 1)
    result = {
        "asked": len(asked),
        "in_recovery": recovery.in_recovery,
        "offsets": {tp.partition: o for tp, o in recovery.active_offsets.items()},
        "standby_offsets": {tp.partition: o for tp, o in recovery.standby_offsets.items()},
        "standbys_ready": tables.standbys_ready,
        "persisted": {tp.partition: table.data.persisted_offset(tp) for tp in actives},
    }
    for database in getattr(table.data, "_dbs", {}).values():
        database.close()
    return state, result


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_recovery_applies_queued_records_in_passes(tmp_path: Path, store: str) -> None:
    state, result = asyncio.run(recover(tmp_path, store))
    last = {n: max(o for o in range(RECORDS) if o % CUSTOMERS == n) for n in range(CUSTOMERS)}
    expected: dict[tuple[str, int], bytes | None] = {
        (f"c{p}-{n}", p): f"c{p}-{n}@{last[n]}".encode() for p in (0, 2) for n in range(CUSTOMERS)
    }
    expected[("c2-7", 2)] = None  # the tombstone
    expected[("s", 1)] = b"standby"
    assert state == expected
    assert result["in_recovery"] is False
    assert result["standbys_ready"] is True
    assert result["offsets"] == {0: RECORDS - 1, 2: RECORDS}
    assert result["standby_offsets"] == {1: 9}
    if store == "rocksdb":
        assert result["persisted"] == {0: RECORDS - 1, 2: RECORDS}
    # Faust's loop asks after every record (3,011 here).
    assert result["asked"] <= 2 * RECORDS // 20
