"""``crm-scorer``: worker, demo, produce, tail, replay tools and schema export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_worker(args: argparse.Namespace) -> int:
    from stream.settings import Settings
    from stream.worker import run_worker

    run_worker(Settings())
    return 0


def _cmd_create_topics(args: argparse.Namespace) -> int:
    import asyncio

    from stream.settings import Settings
    from stream.topics import create_all_topics

    for name in asyncio.run(create_all_topics(Settings())):
        print(name)
    return 0


def _cmd_export_schemas(args: argparse.Namespace) -> int:
    from schemas.registry import json_schemas, schema_file_text

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, schema in json_schemas().items():
        path = directory / f"{stem}.schema.json"
        path.write_text(schema_file_text(schema), encoding="utf-8")
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return run_demo(limit=args.limit, duration_s=args.duration, keep_open_s=args.keep_open)


def _cmd_produce(args: argparse.Namespace) -> int:
    import asyncio

    from eventdata.events import read_jsonl
    from stream.producer import produce_lines
    from stream.settings import Settings

    report = asyncio.run(produce_lines(Settings(), read_jsonl(Path(args.file)), speed=args.speed))
    for topic, count in sorted(report.by_topic.items()):
        print(f"{topic}: {count}")
    if report.unroutable:
        shown = ", ".join(map(str, report.unroutable[:20]))
        print(
            f"not sent, no known type or customer_id: {len(report.unroutable)} line(s): {shown}",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    import asyncio

    from stream.producer import send_forget
    from stream.settings import Settings

    sent = asyncio.run(send_forget(Settings(), args.customer_ids))
    print(f"sent {sent} forget request(s); scores topic gets a tombstone for each")
    return 0


def _cmd_tail(args: argparse.Namespace) -> int:
    from stream.settings import Settings
    from stream.tail import Stream, run_tail

    which: Stream = "scores" if args.scores else "dead-letters" if args.dead_letters else "alerts"
    run_tail(
        Settings(),
        which,
        from_beginning=args.from_beginning,
        limit=args.max,
        idle_timeout_s=args.idle_timeout,
        as_json=args.json,
    )
    return 0


def _cmd_make_events(args: argparse.Namespace) -> int:
    from eventdata.events import DEMO_DATA, build_events, write_jsonl

    events = build_events(Path(args.data) if args.data else DEMO_DATA, seed=args.seed)
    write_jsonl(events, Path(args.out))
    print(f"{len(events)} events -> {args.out}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import contextlib
    from datetime import UTC, datetime

    from eventdata.events import read_jsonl
    from schemas.events import ts_to_ms
    from stream.replay import (
        final_scores,
        load_models,
        replay_lines,
        report,
        save_models,
        write_scores_csv,
    )
    from stream.settings import Settings

    if args.partitions < 1 or (args.partitions > 1 and args.models_out):
        print("--partitions must be 1 or more, and 1 with --models-out", file=sys.stderr)
        return 2
    settings = Settings()
    config = settings.models()
    if args.churn_horizon_days is not None:
        from dataclasses import replace

        config = replace(config, churn_horizon_days=args.churn_horizon_days)
    as_of = ts_to_ms(args.as_of) if args.as_of else None
    with contextlib.ExitStack() as stack:
        predictions = (
            stack.enter_context(open(args.predictions_out, "wb")) if args.predictions_out else None
        )
        alerts = stack.enter_context(open(args.alerts_out, "wb")) if args.alerts_out else None
        result = replay_lines(
            read_jsonl(Path(args.events)),
            config=config,
            models=load_models(Path(args.models_in)) if args.models_in else None,
            as_of_ms=as_of,
            predictions=predictions,
            alerts=alerts,
            progress=sys.stderr,
            partitions=args.partitions,
        )
    report(result)
    if result.as_of_ms is not None:
        print(
            f"scored as of {datetime.fromtimestamp(result.as_of_ms / 1000, UTC).isoformat()}",
            file=sys.stderr,
        )
    if args.scores_out:
        write_scores_csv(final_scores(result), Path(args.scores_out))
    if args.models_out:
        save_models(result.models, Path(args.models_out))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from eventdata.evaluate import report
    from eventdata.extract import SHARED

    print(report(Path(args.data) if args.data else SHARED, limit=args.limit), end="")
    return 0


def _cmd_evaluate_alerts(args: argparse.Namespace) -> int:
    from eventdata.evaluate import alert_report
    from eventdata.extract import SHARED

    out = Path(args.alerts_out) if args.alerts_out else None
    print(alert_report(Path(args.data) if args.data else SHARED, alerts_out=out), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-scorer",
        description="Real-time customer-retention scorer. Configuration: CRM_* env vars.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run the stream worker against CRM_KAFKA_BOOTSTRAP")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser(
        "create-topics", help="create every topic the service uses (where workers may not)"
    )
    p.set_defaults(func=_cmd_create_topics)

    p = sub.add_parser("demo", help="embedded broker + worker + real data replayed, live")
    p.add_argument("--duration", type=float, default=45.0, help="replay length in seconds")
    p.add_argument("--limit", type=int, default=None, help="replay only the first N events")
    p.add_argument(
        "--keep-open", type=float, default=0.0, help="seconds to keep the worker up afterwards"
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("produce", help="send a JSONL file of events to their topics")
    p.add_argument("file")
    p.add_argument("--speed", type=float, default=None, help="event-time x wall-time pacing")
    p.set_defaults(func=_cmd_produce)

    p = sub.add_parser("forget", help="erase customers' state and scores (docs/personal-data.md)")
    p.add_argument("customer_ids", nargs="+", metavar="CUSTOMER_ID")
    p.set_defaults(func=_cmd_forget)

    p = sub.add_parser("tail", help="print alerts (default), scores or dead letters")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--alerts", action="store_true")
    group.add_argument("--scores", action="store_true")
    group.add_argument("--dead-letters", action="store_true")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--max", type=int, default=None, help="stop after N records")
    p.add_argument("--idle-timeout", type=float, default=None, help="stop after N idle seconds")
    p.add_argument("--json", action="store_true", help="raw JSON records")
    p.set_defaults(func=_cmd_tail)

    p = sub.add_parser("replay", help="run EVENTS.jsonl through the models, no broker")
    p.add_argument("events")
    p.add_argument("--as-of", help="RFC 3339 or epoch ms; default: the last event time")
    p.add_argument("--scores-out", help="CSV, one row per customer")
    p.add_argument("--predictions-out", help="JSONL, one line per event")
    p.add_argument("--alerts-out", help="JSONL of alerts")
    p.add_argument("--churn-horizon-days", type=float, default=None)
    p.add_argument("--models-out", help="save the learned models (pickle) to warm-start")
    p.add_argument("--models-in", help="start from models saved by --models-out")
    p.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="models per input partition, as a worker with that many has them (default 1: "
        "one model of every customer, as evaluated in docs/models.md)",
    )
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("evaluate", help="measure the models on real data (docs/models.md)")
    p.add_argument("--data", help="data folder (default: ../shared/data)")
    p.add_argument("--limit", type=int, default=None, help="texts per sentiment corpus")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "evaluate-alerts", help="alerts per kind and churn_risk precision (docs/alerts.md)"
    )
    p.add_argument("--data", help="data folder (default: ../shared/data)")
    p.add_argument("--alerts-out", help="also write the replay's alerts (JSONL)")
    p.set_defaults(func=_cmd_evaluate_alerts)

    p = sub.add_parser("make-events", help="data set -> EVENTS.jsonl in the public schema")
    p.add_argument("out")
    p.add_argument("--data", help="data folder (default: the shipped extract)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_cmd_make_events)

    p = sub.add_parser("export-schemas", help="write the JSON Schema files of every record")
    p.add_argument("dir", nargs="?", default=str(Path(__file__).parent.parent / "schemas/json"))
    p.set_defaults(func=_cmd_export_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
