"""Make the small extract shipped in ``data/demo`` from ``../shared/data``.

    python -m eventdata.extract [--shared ../shared/data] [--out data/demo]

Whole histories of a seeded sample of Online Retail customers, and seeded samples of
both review corpora. Output is byte-for-byte reproducible (gzip without timestamps).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import random
from pathlib import Path

from eventdata.events import DEMO_DATA, find
from eventdata.retail import customer_key, read_csv_gz

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def write_csv_gz(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))


def make_extract(
    shared: Path, out: Path, *, customers: int = 400, texts: int = 1500, seed: int = 2024
) -> None:
    rng = random.Random(seed)
    retail = list(read_csv_gz(find(shared, "online-retail")))
    ids = sorted({c for row in retail if (c := customer_key(row["CustomerID"]))}, key=int)
    chosen = set(rng.sample(ids, customers))
    sample = [row for row in retail if customer_key(row["CustomerID"]) in chosen]
    out.mkdir(parents=True, exist_ok=True)
    write_csv_gz(out / "online-retail.csv.gz", list(retail[0].keys()), sample)
    for stem in ("reviews-zh", "sentiment-en"):
        rows = list(read_csv_gz(find(shared, stem)))
        picked = sorted(rng.sample(range(len(rows)), texts))
        write_csv_gz(out / f"{stem}.csv.gz", list(rows[0].keys()), [rows[i] for i in picked])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=DEMO_DATA)
    args = parser.parse_args()
    make_extract(args.shared, args.out)


if __name__ == "__main__":
    main()
