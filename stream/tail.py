"""Read alerts, scores or dead letters from their topics (``crm-scorer tail``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer

from stream.settings import Settings

Stream = Literal["alerts", "scores", "dead-letters"]


def topic_of(settings: Settings, which: Stream) -> str:
    return {
        "alerts": settings.topic_alerts,
        "scores": settings.topic_scores,
        "dead-letters": settings.topic_dead_letter,
    }[which]


async def records(
    settings: Settings,
    which: Stream,
    *,
    from_beginning: bool = True,
    idle_timeout_s: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[dict[str, Any]]:
    """Decoded records as they arrive; ends after ``idle_timeout_s`` without one."""
    consumer = AIOKafkaConsumer(
        topic_of(settings, which),
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    try:
        last = time.monotonic()
        while not stop():
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    return
                continue
            last = time.monotonic()
            for messages in batch.values():
                for message in messages:
                    if message.value is None:  # a forgotten customer's score tombstone
                        yield {"customer_id": message.key.decode(), "forgotten": True}
                    else:
                        yield orjson.loads(message.value)
    finally:
        await consumer.stop()


def describe(which: Stream, record: dict[str, Any]) -> str:
    """One human-readable line per record."""
    if which == "alerts":
        reasons = "; ".join(r["text"] for r in record.get("reasons", []))
        who = record.get("customer_id")
        scope = f"customer {who:>8}" if who else "all customers   "
        money = record.get("value_at_risk")
        at_risk = f"  [value at risk {money:,.0f}]" if money else ""
        excerpt = f'  "{record["excerpt"]}"' if record.get("excerpt") else ""
        return (
            f"{record['ts'][:19]}  {record['severity'].upper():8} {record['kind']:17} "
            f"{scope}  {reasons}{at_risk}{excerpt}"
        )
    if which == "scores":
        if record.get("forgotten"):
            return f"customer {record['customer_id']:>8}  forgotten (state and scores removed)"
        risk = record.get("churn_risk")
        return (
            f"{record['as_of'][:19]}  customer {record['customer_id']:>8}  "
            f"orders {record['purchase_count']:3}  net {record['net_value']:10.2f}  "
            f"days since order {_num(record.get('days_since_last_purchase'))}  "
            f"churn {'-' if risk is None else f'{risk:4.0%}'} {record.get('churn_tier') or '':6} "
            f"segment {record.get('segment') or '-'}"
        )
    return (
        f"{record['topic']}[{record['partition']}]@{record['offset']}  "
        f"{record['reason_code']}: {record['reason']}"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:6.1f}"


async def tail(
    settings: Settings,
    which: Stream,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_timeout_s: float | None,
    as_json: bool,
) -> int:
    count = 0
    async for record in records(
        settings, which, from_beginning=from_beginning, idle_timeout_s=idle_timeout_s
    ):
        print(orjson.dumps(record).decode() if as_json else describe(which, record), flush=True)
        count += 1
        if limit is not None and count >= limit:
            break
    return count


def run_tail(settings: Settings, which: Stream, **kwargs: Any) -> int:
    return asyncio.run(tail(settings, which, **kwargs))
