"""RetentionModels as a whole: the CRM models scored per event, and models saved by an
older version brought up to date."""

from __future__ import annotations

import gc
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from eventdata.events import DEMO_DATA
from eventdata.retail import purchase_events, read_csv_gz
from models.checkpoint import CheckpointError, ModelCheckpoint
from models.features import CustomerState
from models.retention import MODEL_VERSION, UPGRADES_FROM, ModelConfig, RetentionModels
from schemas.events import parse_event_object
from stream.processor import EventProcessor
from stream.replay import replay_lines
from tests.factories import BASE_TS, DAY, purchase

#: RetentionModels of churn-lr/1+segments-kmeans/1+sentiment-mnb/1, pickled by that
#: code (commit 3a707a3) after replaying the first 400 invoices of the shipped extract.
OLD_MODELS = Path(__file__).parent / "data" / "retention-models-1.pkl.zlib"
#: RetentionModels of churn-lr/1+...+sentiment-mnb/1+...+influence-copurchase/1 (its
#: sentiment counts keyed by n-gram), pickled by that code (commit c4630f2) after
#: replaying the first 400 invoices of the shipped extract and feedback on each of them
#: (sentiment-en texts, eventdata.feedback.feedback_events with rate 1, no incident).
MODELS_2 = Path(__file__).parent / "data" / "retention-models-2.pkl.zlib"


def old_models_pickle() -> bytes:
    return zlib.decompress(OLD_MODELS.read_bytes())


def test_models_of_the_previous_version_load_predict_the_same_and_learn_on() -> None:
    old_version = "churn-lr/1+segments-kmeans/1+sentiment-mnb/1"
    events = purchase_events(read_csv_gz(DEMO_DATA / "online-retail.csv.gz"))[:400]
    states = replay_lines((orjson.dumps(e) for e in events), scans=False).states
    models = pickle.loads(old_models_pickle())
    assert isinstance(models, RetentionModels) and models.model_version == MODEL_VERSION
    assert models.config.demand_horizon_days == 30.0 and not models.config.churn_uses_influence
    # What it had learned is kept: the same prediction as the old code made (recorded).
    assert models.churn_risk(states["17096"], events[-1]["ts"]) == pytest.approx(
        0.7117215278661615, rel=1e-12
    )
    # Its churn snapshots, features as dicts then, are packed and mature as before.
    assert models.churn.pending and all(
        isinstance(s.values, bytes) and len(s.features()) == 16 for s in models.churn.pending
    )
    learned = sum(models.churn.labels_learned.values())
    models.churn.mature(models.churn.pending[-1].taken_ms + models.churn.horizon_ms)
    assert sum(models.churn.labels_learned.values()) > learned
    processor = EventProcessor(scorer=models, customers=states.values)
    later = parse_event_object(
        purchase("new-1", "17096", events[-1]["ts"] + DAY, 30.0, skus=["22423", "85123A"])
    )
    out = processor.process(states["17096"], later)
    assert out is not None and out.score.offers is None  # the offers model starts new
    newcomer = parse_event_object(purchase("new-2", "x", later.ts_ms + 1, 9.0, skus=["22423"]))
    then = processor.process(None, newcomer)
    assert then is not None and then.score.offers == ["85123A"]  # learned from 17096
    # In a checkpoint, the old version is accepted only where an upgrade is allowed.
    checkpoint = ModelCheckpoint.build(
        zlib.compress(old_models_pickle()),
        old_version,
        partition=0,
        offsets={},
        clock_ms=None,
        next_scan_ms=None,
        written_at_ms=0,
    )
    with pytest.raises(CheckpointError):
        checkpoint.restore(RetentionModels, MODEL_VERSION)
    restored = checkpoint.restore(RetentionModels, MODEL_VERSION, UPGRADES_FROM)
    assert restored.model_version == MODEL_VERSION


def test_models_with_sentiment_keyed_by_n_gram_load_hashed_and_keep_the_rest() -> None:
    """The previous version's checkpoints: everything learned stays, offers and
    influence included, and sentiment's counts move to their buckets."""
    pickled = zlib.decompress(MODELS_2.read_bytes())
    checkpoint = ModelCheckpoint.build(
        zlib.compress(pickled),
        "churn-lr/1+segments-kmeans/1+sentiment-mnb/1+demand-hoeffding/1+offers-cooc/1"
        "+influence-copurchase/1",
        partition=0,
        offsets={},
        clock_ms=None,
        next_scan_ms=None,
        written_at_ms=0,
    )
    models = checkpoint.restore(RetentionModels, MODEL_VERSION, UPGRADES_FROM)
    assert models.model_version == MODEL_VERSION
    # What the old code printed for the same models (the fixture's script).
    assert models.offers.learned == 333 and len(models.influence.followers) == 165
    assert models.influence.degree("17096") == 10
    events = purchase_events(read_csv_gz(DEMO_DATA / "online-retail.csv.gz"))[:400]
    bought = replay_lines((orjson.dumps(e) for e in events), scans=False).states["17096"].products
    assert models.offers.recommend(bought, k=5) == ["21027", "21031", "21682", "22378", "22292"]
    sentiment = models.sentiment
    assert sentiment.learned == 141
    # 9,720 n-grams in 2**19 buckets: a few share one.
    assert 9_600 <= sentiment.model.vocabulary <= 9_720
    for text, old in (
        ("great product, love it", 0.9999999980258849),
        ("awful, broken and late", 0.00018585281187967842),
    ):
        assert sentiment.predict_proba(text) == pytest.approx(old, abs=1e-3)
    sentiment.learn_one("great product, love it", True)
    assert sentiment.learned == 142
    # Churn snapshots and demand targets (a dataclass holding a PackedFeatures then) are
    # records now, open per customer as before; pickled again, they mature the same.
    churn, demand = models.churn, models.demand
    for model in (churn, demand):
        waiting = [r for r in model.pending if not r.resolved]
        assert waiting and all(
            len(r.features()) == 16 and r in model.open.of(r.customer_id) for r in waiting
        )
    churn_again, demand_again = pickle.loads(pickle.dumps((churn, demand)))
    later = churn.pending[-1].taken_ms + churn.horizon_ms
    for model in (churn, demand, churn_again, demand_again):
        model.mature(later)
        assert not model.open and not model.pending
    assert churn_again.labels_learned == churn.labels_learned
    assert churn_again.avg_weights == churn.avg_weights
    assert list(demand_again.recent) == list(demand.recent)


def test_orders_with_products_give_offers_of_products_not_bought() -> None:
    processor = EventProcessor()
    state = None
    basket = ["tea", "teapot", "cups"]
    # Others who bought tea went on to buy the teapot and cups.
    for i in range(5):
        for n, skus in enumerate((["tea"], ["teapot", "cups"])):
            event = purchase(f"o{i}-{n}", f"other{i}", BASE_TS + n * DAY, 10.0, skus=skus)
            out = processor.process(None if n == 0 else state, parse_event_object(event))
            assert out is not None
            state = out.state
    first = processor.process(
        None, parse_event_object(purchase("m1", "me", BASE_TS, 5.0, skus=["tea"]))
    )
    assert first is not None
    assert first.state.products == ["tea"] and first.score.offers is not None
    assert first.score.offers[:2] == ["teapot", "cups"] and "tea" not in first.score.offers
    browse = parse_event_object(
        {
            "type": "browse",
            "event_id": "b1",
            "customer_id": "me",
            "ts": BASE_TS + 1,
            "action": "view",
        }
    )
    seen = processor.process(first.state, browse)
    assert seen is not None and seen.score.offers == first.score.offers  # kept between orders
    second = processor.process(
        seen.state, parse_event_object(purchase("m2", "me", BASE_TS + DAY, 5.0, skus=basket))
    )
    assert second is not None and not set(second.score.offers or ()) & set(basket)
    # Everyone bought tea: "me" followed the others within the window.
    assert second.score.influence_degree and second.score.influence_degree >= 1
    assert second.score.spend_forecast_30d is None  # the demand model is not ready yet


@pytest.mark.parametrize("enabled_before", [True, False], ids=["gc-on", "gc-off"])
def test_a_tick_runs_with_the_garbage_collector_paused_and_leaves_it_as_it_was(
    enabled_before: bool,
) -> None:
    """A tick decodes every customer of the partition; a full collection set off by
    those allocations doubled its time (models.checkpoint.collections_paused)."""
    out = EventProcessor().process(None, parse_event_object(purchase("o1", "c1", BASE_TS, 5.0)))
    assert out is not None
    models = RetentionModels()
    models.advance(BASE_TS, list)
    seen: list[bool] = []

    def customers() -> Iterator[CustomerState]:
        seen.append(gc.isenabled())
        yield out.state

    was = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    try:
        models.advance(BASE_TS + 8 * DAY, customers)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False]  # one tick, walked with the collector paused
    assert after is enabled_before
    assert models.segments.seen == 1  # the tick learned the customer


@pytest.mark.parametrize("influence", [False, True], ids=["churn-alone", "churn-with-influence"])
def test_a_demand_target_shares_the_values_of_the_churn_snapshot_taken_with_it(
    influence: bool,
) -> None:
    """Both models take the same customers' features at the same ticks; churn's may add
    influence's: one copy of the values, each model reading its own features."""
    events = purchase_events(read_csv_gz(DEMO_DATA / "online-retail.csv.gz"))[:300]
    states = replay_lines((orjson.dumps(e) for e in events), scans=False).states
    models = RetentionModels(ModelConfig(churn_uses_influence=influence))
    last = max(e["ts"] for e in events)
    models.advance(last, list)
    models.advance(last + 8 * DAY, lambda: states.values())
    churn, demand = models.churn.pending, models.demand.pending
    assert len(churn) == len(demand) > 10
    for snap, target in zip(churn, demand, strict=True):
        assert target.values is snap.values
        features = target.features()
        assert len(features) == 16 and len(snap.features()) == 16 + influence
        assert snap.features().items() >= features.items()
    # A pickle (a checkpoint) keeps one copy.
    churn_again, demand_again = pickle.loads(pickle.dumps((models.churn, models.demand)))
    assert all(
        t.values is s.values for s, t in zip(churn_again.pending, demand_again.pending, strict=True)
    )
