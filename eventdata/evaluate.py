"""Model quality on real data, measured the way the models run: prequential
(test-then-train) or at an as-of time through ``replay``.

    crm-scorer evaluate [--data ../shared/data] [--limit N]

Prints the table kept in docs/models.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from eventdata.events import build_events, find
from eventdata.feedback import labelled_texts
from eventdata.retail import read_csv_gz, retail_purchases
from models.demand import DemandTarget
from models.features import DAY_MS
from models.metrics import roc_auc
from models.offers import CoPurchaseOffers
from models.retention import ModelConfig, RetentionModels
from models.segments import segment_features
from models.sentiment import SentimentModel
from stream.replay import replay_lines
from stream.topics import partition_for


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class ChurnResult:
    auc: float
    recency_auc: float
    customers: int
    churn_rate: float
    mean_predicted: float
    calibration_error: float
    labels_learned: dict[int, int]


def churn_auc(
    data_dir: Path,
    as_of: str = "2011-09-01",
    end: str = "2011-12-09T23:59:59",
    config: ModelConfig | None = None,
) -> ChurnResult:
    """AUC of churn risk at ``as_of``; label = no purchase in (as_of, end].

    Positive-amount invoices with a customer id, one purchase event per invoice, replayed
    through the worker's code; only events up to ``as_of`` are seen.
    """
    events = [e for e in retail_purchases(find(data_dir, "online-retail")) if e["amount"] > 0]
    as_of_ms, end_ms = _ms(as_of), _ms(end)
    result = replay_lines(
        (orjson.dumps(e) for e in events), config=config, as_of_ms=as_of_ms, scans=False
    )
    buyers_after = {e["customer_id"] for e in events if as_of_ms < e["ts"] <= end_ms}
    ids = list(result.states)
    labels = [c not in buyers_after for c in ids]
    probas = [result.models.churn_risk(result.states[c], as_of_ms) for c in ids]
    recency = [
        as_of_ms - (result.states[c].last_purchase_ms or result.states[c].first_seen_ms)
        for c in ids
    ]
    return ChurnResult(
        auc=roc_auc(labels, probas),
        recency_auc=roc_auc(labels, recency),
        customers=len(ids),
        churn_rate=sum(labels) / len(labels),
        mean_predicted=sum(probas) / len(probas),
        calibration_error=_expected_calibration_error(labels, probas),
        labels_learned=dict(result.models.churn.labels_learned),
    )


def _expected_calibration_error(labels: list[bool], probas: list[float], bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width bins, weighted by size."""
    total = 0.0
    for b in range(bins):
        members = [
            (y, p) for y, p in zip(labels, probas, strict=True) if min(int(p * bins), bins - 1) == b
        ]
        if members:
            observed = sum(y for y, _ in members) / len(members)
            predicted = sum(p for _, p in members) / len(members)
            total += len(members) * abs(observed - predicted)
    return total / len(labels)


def sentiment_accuracy(
    data_dir: Path, stem: str, *, seed: int = 42, limit: int | None = None
) -> tuple[float, int]:
    """Prequential accuracy (predict, then learn) on positive vs negative texts,
    shuffled with a fixed seed; returns (accuracy, examples)."""
    texts = [
        t for t in labelled_texts(read_csv_gz(find(data_dir, stem)), stem) if t.label != "neutral"
    ]
    random.Random(seed).shuffle(texts)
    texts = texts[:limit] if limit else texts
    model = SentimentModel()
    correct = 0
    for item in texts:
        positive = item.label == "positive"
        correct += (model.predict_proba(item.text) >= 0.5) == positive
        model.learn_one(item.text, positive)
    return correct / len(texts), len(texts)


@dataclass(frozen=True)
class SegmentResult:
    online_inertia: float
    batch_inertia: float
    k: int
    names: dict[int, str]
    sizes: dict[str, int]

    @property
    def ratio(self) -> float:
        return self.online_inertia / self.batch_inertia


def segmentation(data_dir: Path, as_of: str = "2011-12-09T23:59:59") -> SegmentResult:
    """Inertia of the online k-means at ``as_of`` against scikit-learn's KMeans with the
    same k on the same scaled features of every customer."""
    import numpy as np
    from sklearn.cluster import KMeans

    events = retail_purchases(find(data_dir, "online-retail"))
    as_of_ms = _ms(as_of)
    result = replay_lines((orjson.dumps(e) for e in events), as_of_ms=as_of_ms, scans=False)
    seg = result.models.segments
    rows = [segment_features(s, as_of_ms) for s in result.states.values() if s.purchase_count]
    scaled = np.array([[seg.scaled(r)[f] for f in sorted(r)] for r in rows])
    batch = KMeans(n_clusters=seg.n_clusters, n_init=10, random_state=0).fit(scaled)
    names = seg.names()
    sizes: dict[str, int] = {}
    for row in rows:
        name = names[seg.assign(row)]
        sizes[name] = sizes.get(name, 0) + 1
    return SegmentResult(seg.inertia(rows), float(batch.inertia_), seg.n_clusters, names, sizes)


@dataclass(frozen=True)
class OfferResult:
    customers: int  # evaluated: bought before the cutoff, and a new product after it
    hit_rate: float  # top 10 of the model held a product they then bought for the first time
    popular_hit_rate: float  # the same for the 10 most ordered products they lacked
    partitions: int


def offer_hit_rate(
    data_dir: Path, cutoff: str = "2011-11-09T00:00:00", partitions: int = 1, k: int = 10
) -> OfferResult:
    """Hit rate at ``k`` of next-best-offer on the last month of Online Retail.

    Orders before ``cutoff`` are learned one at a time in time order, each with the
    customer's earlier products, by the model of the customer's partition (as the worker
    does, one per input partition). At the cutoff, each customer who had bought before
    and buys a product new to them after it gets ``k`` offers of products new to them; a
    hit is one of those bought after the cutoff. The baseline offers the ``k`` most
    ordered products they lack (same models' counts).
    """
    orders = retail_purchases(find(data_dir, "online-retail"))
    until = _ms(cutoff)
    models = [CoPurchaseOffers() for _ in range(partitions)]
    history: dict[str, dict[str, None]] = {}
    later: dict[str, set[str]] = {}
    for order in orders:
        if order["amount"] <= 0 or not order["skus"]:
            continue  # refunds and orders of no products are not purchases of products
        customer = str(order["customer_id"])
        if order["ts"] < until:
            bought = history.setdefault(customer, {})
            models[partition_for(customer, partitions)].learn_one(list(bought), order["skus"])
            for sku in order["skus"]:
                bought.pop(sku, None)
                bought[sku] = None  # latest last
        else:
            later.setdefault(customer, set()).update(order["skus"])
    hits = popular_hits = evaluated = 0
    for customer, bought_after in later.items():
        before = history.get(customer)
        if not before or not bought_after - before.keys():
            continue
        evaluated += 1
        model = models[partition_for(customer, partitions)]
        hits += bool(bought_after & set(model.recommend(list(before), k)))
        popular_hits += bool(bought_after & set(model.popular(k, exclude=set(before))))
    return OfferResult(
        evaluated, hits / max(evaluated, 1), popular_hits / max(evaluated, 1), partitions
    )


@dataclass(frozen=True)
class DemandResult:
    targets: int  # test forecasts: snapshots from the split on whose horizon ended
    customers: int
    online_mae: float  # the online model, each forecast made before its target was learned
    last_period_mae: float  # "the same as in the last horizon"
    batch_mae: float  # scikit-learn decision tree trained on the targets matured by the split
    zero_mae: float  # forecasting no spend at all
    mean_spend: float
    trained: int  # targets the batch tree learned


def demand_mae(
    data_dir: Path, split: str = "2011-09-01", horizon_days: float = 30.0, max_depth: int = 8
) -> DemandResult:
    """Mean absolute error of the 30-day spend forecast, on the weekly snapshots taken
    from ``split`` on (each customer who bought in the 180 days before), against the
    spend they then made (net of refunds, at least 0).

    Every invoice (refunds too) is replayed through the worker's code. The online model's
    forecasts are the ones it made when each snapshot was taken, before it learned that
    target; it goes on learning matured targets after the split, as it does in production.
    The batch tree (scikit-learn ``DecisionTreeRegressor``, ``max_depth``) learns, once,
    the same features and ``log1p`` targets of every snapshot matured by the split, and
    predicts ``expm1``. "Last period" forecasts the spend of the ``horizon_days`` before.
    """
    import bisect

    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    events = retail_purchases(find(data_dir, "online-retail"))
    models = RetentionModels(ModelConfig(demand_horizon_days=horizon_days))
    log: list[DemandTarget] = []
    models.demand.log = log
    replay_lines((orjson.dumps(e) for e in events), models=models, scans=False)
    split_ms, horizon = _ms(split), int(horizon_days * DAY_MS)
    train = [t for t in log if t.taken_ms + horizon <= split_ms]
    test = [t for t in log if t.taken_ms >= split_ms]
    stamps: dict[str, list[int]] = {}
    running: dict[str, list[float]] = {}  # cumulative net spend after each purchase
    for e in events:
        stamps.setdefault(e["customer_id"], []).append(e["ts"])
        sums = running.setdefault(e["customer_id"], [])
        sums.append((sums[-1] if sums else 0.0) + e["amount"])

    def spend_between(customer: str, after_ms: int, until_ms: int) -> float:
        ts, sums = stamps[customer], running[customer]
        lo, hi = bisect.bisect_right(ts, after_ms), bisect.bisect_right(ts, until_ms)
        return max((sums[hi - 1] if hi else 0.0) - (sums[lo - 1] if lo else 0.0), 0.0)

    names = sorted(train[0].names)

    def rows(targets: list[DemandTarget]) -> np.ndarray:
        return np.array([[t.features()[n] for n in names] for t in targets])

    batch = DecisionTreeRegressor(max_depth=max_depth, random_state=0).fit(
        rows(train),
        np.log1p([max(t.spend, 0.0) for t in train]),
    )
    batch_pred = np.maximum(np.expm1(batch.predict(rows(test))), 0.0)
    actual = np.array([max(t.spend, 0.0) for t in test])
    last = np.array([spend_between(t.customer_id, t.taken_ms - horizon, t.taken_ms) for t in test])
    online = np.array([t.predicted for t in test])
    return DemandResult(
        targets=len(test),
        customers=len({t.customer_id for t in test}),
        online_mae=float(np.mean(np.abs(online - actual))),
        last_period_mae=float(np.mean(np.abs(last - actual))),
        batch_mae=float(np.mean(np.abs(batch_pred - actual))),
        zero_mae=float(np.mean(actual)),
        mean_spend=float(np.mean(actual)),
        trained=len(train),
    )


def report(data_dir: Path, limit: int | None = None) -> str:
    churn = churn_auc(data_dir)
    zh, n_zh = sentiment_accuracy(data_dir, "reviews-zh", limit=limit)
    en, n_en = sentiment_accuracy(data_dir, "sentiment-en", limit=limit)
    influenced = churn_auc(data_dir, config=ModelConfig(churn_uses_influence=True))
    seg = segmentation(data_dir)
    offers, offers_8 = offer_hit_rate(data_dir), offer_hit_rate(data_dir, partitions=8)
    demand = demand_mae(data_dir)
    lines = [
        "| task | data | measured | anchors (from the issue) | goal |",
        "| --- | --- | --- | --- | --- |",
        f"| churn AUC at 2011-09-01 | Online Retail, {churn.customers:,} customers, "
        f"churn rate {churn.churn_rate:.3f} | **{churn.auc:.4f}** (recency only, same run: "
        f"{churn.recency_auc:.4f}) | recency only 0.685; batch logistic on log RFM 0.735 "
        "| ≥ 0.74 |",
        f"| sentiment accuracy, prequential | reviews-zh, {n_zh:,} texts | **{zh:.4f}** | "
        "River MultinomialNB char 1-2 grams 0.833; batch MultinomialNB 0.855 | ≥ 0.86 |",
        f"| sentiment accuracy, prequential, pos vs neg | sentiment-en, {n_en:,} texts | "
        f"**{en:.4f}** | River MultinomialNB 0.809; batch MultinomialNB 0.838 | ≥ 0.84 |",
        f"| segmentation inertia, k={seg.k} | Online Retail at 2011-12-09 | "
        f"**{seg.ratio:.3f}x** batch ({seg.online_inertia:,.0f} vs {seg.batch_inertia:,.0f}) | "
        "scikit-learn KMeans, same k and features | ≤ 1.10x, named |",
        f"| next-best-offer hit rate at 10, products new to the customer | Online Retail, "
        f"last month (from 2011-11-09), {offers.customers:,} customers | "
        f"**{offers.hit_rate:.3f}** (8 partitions: {offers_8.hit_rate:.3f}) | "
        f"most ordered products they lack: {offers.popular_hit_rate:.3f} "
        f"(8 partitions: {offers_8.popular_hit_rate:.3f}) | above most ordered |",
        f"| 30-day spend forecast, mean absolute error | Online Retail, weekly snapshots "
        f"from 2011-09-01, {demand.targets:,} forecasts of {demand.customers:,} customers "
        f"(mean spend {demand.mean_spend:,.1f}) | **{demand.online_mae:,.1f}** | same as the "
        f"last 30 days {demand.last_period_mae:,.1f}; batch decision tree "
        f"{demand.batch_mae:,.1f} ({demand.trained:,} targets to the split); no spend "
        f"{demand.zero_mae:,.1f} | below last 30 days |",
        f"| churn AUC at 2011-09-01 with co-purchase influence as a feature | as churn AUC "
        f"| **{influenced.auc:.4f}** (without: {churn.auc:.4f}) | - | report the lift |",
        "",
        f"Churn calibration at 2011-09-01: mean predicted {churn.mean_predicted:.3f} vs "
        f"observed {churn.churn_rate:.3f}; "
        f"expected calibration error {churn.calibration_error:.3f}. "
        f"Labels learned by then: {churn.labels_learned[0]:,} stayed, "
        f"{churn.labels_learned[1]:,} churned.",
        f"Segments at 2011-12-09: {seg.sizes}.",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AlertQuality:
    customers: int
    days: float
    per_kind: dict[str, int]
    #: Per customer alert kind: (alerts whose horizon ends in the data, share churned).
    churned_after: dict[str, tuple[int, float]]
    churn_alerts_evaluable: int
    churn_precision: float
    churn_precision_high: float
    churn_customers_precision: float
    base_churn_rate: float
    base_samples: int

    def per_1000(self, kind: str) -> float:
        return 1000 * self.per_kind.get(kind, 0) / self.customers


def alert_quality(
    data_dir: Path,
    horizon_days: float = 90.0,
    max_recency_days: float = 180.0,
    alerts_out: Path | None = None,
) -> AlertQuality:
    """Replay the full event stream (real purchases and feedback texts, synthetic
    browsing) with alerts, and score the ``churn_risk`` alerts against what followed.

    Precision: the share of churn_risk alerts (whose horizon ends inside the data) after
    which the customer made no purchase for ``horizon_days``. Base rate: the same
    outcome for every customer the churn model scores (bought within
    ``max_recency_days``), at weekly times over the same period.
    """
    import io

    events = build_events(data_dir)
    out = io.BytesIO()
    result = replay_lines((orjson.dumps(e) for e in events), alerts=out)
    if alerts_out is not None:
        alerts_out.write_bytes(out.getvalue())
    alerts = [orjson.loads(line) for line in out.getvalue().splitlines()]
    horizon = int(horizon_days * DAY_MS)
    end = max(e["ts"] for e in events)
    purchases: dict[str, list[int]] = {}
    for e in events:
        if e["type"] == "purchase" and e["amount"] > 0:
            purchases.setdefault(e["customer_id"], []).append(e["ts"])

    def churned(customer: str, at: int) -> bool:
        return not any(at < ts <= at + horizon for ts in purchases.get(customer, ()))

    evaluable = [a for a in alerts if a["customer_id"] and _alert_ms(a) + horizon <= end]
    churned_after: dict[str, tuple[int, float]] = {}
    for kind in sorted({a["kind"] for a in evaluable}):
        flags = [churned(a["customer_id"], _alert_ms(a)) for a in evaluable if a["kind"] == kind]
        churned_after[kind] = (len(flags), _share(flags))
    churn = [
        (a["customer_id"], _alert_ms(a), a["severity"])
        for a in evaluable
        if a["kind"] == "churn_risk"
    ]
    outcomes = [churned(c, at) for c, at, _ in churn]
    high = [churned(c, at) for c, at, sev in churn if sev == "high"]
    first: dict[str, int] = {}
    for c, at, _ in churn:
        first.setdefault(c, at)
    base: list[bool] = []
    if churn:
        start = min(at for _, at, _ in churn)
        for at in range(start, end - horizon + 1, 7 * DAY_MS):
            for c, stamps in purchases.items():
                bought = [ts for ts in stamps if ts <= at]
                if bought and at - max(bought) <= max_recency_days * DAY_MS:
                    base.append(churned(c, at))
    first_events = min(e["ts"] for e in events)
    return AlertQuality(
        customers=len(result.states),
        days=(end - first_events) / DAY_MS,
        per_kind=dict(result.alerts),
        churned_after=churned_after,
        churn_alerts_evaluable=len(churn),
        churn_precision=_share(outcomes),
        churn_precision_high=_share(high),
        churn_customers_precision=_share([churned(c, at) for c, at in first.items()]),
        base_churn_rate=_share(base),
        base_samples=len(base),
    )


def _alert_ms(alert: dict[str, object]) -> int:
    return int(datetime.fromisoformat(str(alert["ts"])).timestamp() * 1000)


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def alert_report(data_dir: Path, alerts_out: Path | None = None) -> str:
    q = alert_quality(data_dir, alerts_out=alerts_out)
    kinds = [
        "churn_risk",
        "negative_feedback",
        "segment_downgrade",
        "cart_abandonment",
        "satisfaction_drop",
        "sentiment_surge",
    ]
    lines = [
        f"Replay of {q.customers:,} customers over {q.days:.0f} days "
        "(real purchases and review texts; browsing synthetic, seeded).",
        "",
        "| kind | alerts | per 1,000 customers | no purchase in the 90 days after |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {k} | {q.per_kind.get(k, 0):,} | {q.per_1000(k):.1f} | "
            + (
                f"{q.churned_after[k][1]:.3f} of {q.churned_after[k][0]:,}"
                if k in q.churned_after
                else "-"
            )
            + " |"
            for k in kinds
        ),
        "",
        f"churn_risk precision (no purchase in the 90 days after the alert): "
        f"**{q.churn_precision:.3f}** on {q.churn_alerts_evaluable:,} alerts "
        f"(high severity: {q.churn_precision_high:.3f}; first alert per customer: "
        f"{q.churn_customers_precision:.3f}), against a base churn rate of "
        f"**{q.base_churn_rate:.3f}** ({q.base_samples:,} weekly customer samples).",
    ]
    return "\n".join(lines) + "\n"
