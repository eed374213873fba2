"""What splitting the models by input partition costs: churn AUC and sentiment accuracy
with 1, 2, 4 and 8 partitions, measured as in docs/models.md.

    python -m bench.partitioned_models [--data ../shared/data]

Churn: purchases split by the worker's partitioner, one replay per partition, AUC over
all customers. Sentiment: texts dealt round robin to the partitions' models, prequential
accuracy; then warm-started from 20% of the texts, on the other 80%. Results in
docs/operations.md.
"""

from __future__ import annotations

import argparse
import copy
import random
from pathlib import Path

import orjson

from eventdata.evaluate import _ms
from eventdata.events import DEMO_DATA, find
from eventdata.feedback import LabelledText, labelled_texts
from eventdata.retail import read_csv_gz, retail_purchases
from models.metrics import roc_auc
from models.sentiment import SentimentModel
from stream.replay import replay_lines
from stream.topics import partition_for

PARTITIONS = (1, 2, 4, 8)


def churn_auc(data: Path, partitions: int) -> float:
    events = [e for e in retail_purchases(find(data, "online-retail")) if e["amount"] > 0]
    as_of, end = _ms("2011-09-01"), _ms("2011-12-09T23:59:59")
    bought_after = {e["customer_id"] for e in events if as_of < e["ts"] <= end}
    labels, probas = [], []
    for p in range(partitions):
        own = [e for e in events if partition_for(e["customer_id"], partitions) == p]
        result = replay_lines((orjson.dumps(e) for e in own), as_of_ms=as_of, scans=False)
        for customer_id, state in result.states.items():
            labels.append(customer_id not in bought_after)
            probas.append(result.models.churn.predict_proba(state, as_of))
    return roc_auc(labels, probas)


def sentiment_accuracy(texts: list[LabelledText], partitions: int, start: SentimentModel) -> float:
    models = [copy.deepcopy(start) for _ in range(partitions)]
    correct = 0
    for i, item in enumerate(texts):
        model, positive = models[i % partitions], item.label == "positive"
        correct += (model.predict_proba(item.text) >= 0.5) == positive
        model.learn_one(item.text, positive)
    return correct / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_DATA)
    args = parser.parse_args()
    print("| input partitions | " + " | ".join(map(str, PARTITIONS)) + " |")
    print("| --- |" + " ---: |" * len(PARTITIONS))
    aucs = [churn_auc(args.data, p) for p in PARTITIONS]
    print("| churn AUC | " + " | ".join(f"{a:.4f}" for a in aucs) + " |", flush=True)
    for stem in ("reviews-zh", "sentiment-en"):
        texts = [
            t for t in labelled_texts(read_csv_gz(find(args.data, stem)), stem)
            if t.label != "neutral"
        ]  # fmt: skip
        random.Random(42).shuffle(texts)
        cold = [sentiment_accuracy(texts, p, SentimentModel()) for p in PARTITIONS]
        print(f"| {stem} accuracy | " + " | ".join(f"{a:.4f}" for a in cold) + " |", flush=True)
        warm = SentimentModel()
        split = len(texts) // 5
        for item in texts[:split]:
            warm.learn_one(item.text, item.label == "positive")
        rest = [sentiment_accuracy(texts[split:], p, warm) for p in PARTITIONS]
        print(f"| {stem}, warm from 20% | " + " | ".join(f"{a:.4f}" for a in rest) + " |")


if __name__ == "__main__":
    main()
