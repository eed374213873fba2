"""The framework's floor: what Faust alone costs per event on this broker, with none of
the product's work, in three steps (each a Faust worker configured as the product's,
reading the same input topics from the beginning):

- ``agent``: one agent per input topic; each event is decoded (orjson) and counted;
- ``table``: and its bytes written to a RocksDB table keyed by customer (a changelog
  record per event, as the product's state write);
- ``score``: and one record published per event with ``send_soon`` (as the product's
  score was until it had its own record batches);
- ``batched``: the table write and the record of ``score``, as the product writes them
  now: the store written directly, the changelog record and the score appended to the
  worker's record batches (``stream.sink``, ``stream.tables``).

``python -m bench.throughput`` runs them beside the product and the bound. Run alone:
``python -m bench.floor --variant table --total N`` with the worker's ``CRM_*``
environment; it prints the seconds from its first event to its N-th, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import Any, cast

import orjson

from stream.app import faust_app, raw_table, raw_topic
from stream.settings import Settings
from stream.tables import CustomerTable
from stream.topics import ensure_topics
from stream.transport import Producer
from stream.worker import faust_worker

VARIANTS = ("agent", "table", "score", "batched")


def run(settings: Settings, variant: str, total: int) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    partitions = loop.run_until_complete(ensure_topics(settings))
    app = faust_app(settings, partitions)
    table = (
        raw_table(app, settings, "customers", partitions, "floor") if variant != "agent" else None
    )
    scores = raw_topic(app, settings.topic_scores, settings.topic_partitions)
    sink = cast(Producer, app.producer).batches
    batched = CustomerTable(table, sink) if variant == "batched" else None
    seen = [0, 0.0]

    async def agent(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            customer_id = orjson.loads(message.value)["customer_id"]
            if batched is not None:
                batched.set(customer_id, message.partition, message.value)
                sink.append_keyed(settings.topic_scores, customer_id, message.value)
                if sink.backlog > sink.max_backlog:
                    await sink.ebb()
            elif table is not None:
                table[customer_id] = message.value
            if variant == "score":
                scores.send_soon(key=message.key, value=message.value)
            seen[0] += 1
            if seen[0] == 1:
                seen[1] = time.perf_counter()
            elif seen[0] == total:
                print(f"{time.perf_counter() - seen[1]:.3f}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    for name in settings.input_topics:
        app.agent(raw_topic(app, name, partitions), name=f"floor-{name}")(agent)
    faust_worker(app, settings, loop).execute_from_commandline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--total", type=int, required=True)
    args = parser.parse_args()
    run(Settings(), args.variant, args.total)


if __name__ == "__main__":
    main()
