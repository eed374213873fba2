"""One time-ordered event stream from a data directory (the shipped extract or
``../shared/data``), in the public event schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from eventdata.browsing import browse_events
from eventdata.feedback import feedback_events, labelled_texts
from eventdata.retail import read_csv_gz, retail_purchases

#: The shipped extract, made by ``python -m eventdata.extract`` from ``../shared/data``.
DEMO_DATA = Path(__file__).resolve().parent.parent / "data" / "demo"
_ORDER = {"browse": 0, "purchase": 1, "feedback": 2}


def find(data_dir: Path, stem: str) -> Path:
    """``stem.csv.gz`` in ``data_dir`` or its ``stem/`` folder (the shared layout)."""
    for candidate in (data_dir / f"{stem}.csv.gz", data_dir / stem / f"{stem}.csv.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no {stem}.csv.gz under {data_dir}")


def build_events(data_dir: Path = DEMO_DATA, *, seed: int = 7) -> list[dict[str, Any]]:
    purchases = retail_purchases(find(data_dir, "online-retail"))
    texts = labelled_texts(read_csv_gz(find(data_dir, "reviews-zh")), "zh")
    texts += labelled_texts(read_csv_gz(find(data_dir, "sentiment-en")), "en")
    events = [
        *purchases,
        *feedback_events(purchases, texts, seed=seed),
        *browse_events(purchases, seed=seed + 4),
    ]
    events.sort(key=lambda e: (e["ts"], _ORDER[e["type"]], e["event_id"]))
    return events


def write_jsonl(events: list[dict[str, Any]], path: Path) -> None:
    with path.open("wb") as fh:
        for event in events:
            fh.write(orjson.dumps(event) + b"\n")


def read_jsonl(path: Path) -> Iterator[bytes]:
    """Raw lines (without the newline); blank lines skipped."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield line
