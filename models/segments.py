"""Customer segments: River incremental k-means on scaled recency, frequency and
monetary value, with stable human names and per-customer hysteresis.

The model learns at the churn model's snapshot ticks from every customer's features at
that event time, so centroids follow the population as it is now. Each centroid gets
the name of the archetype it is closest to (one name per centroid), and a customer only
moves to another segment when it is clearly closer (``switch_margin``).

>>> model = SegmentModel(seed=1)
>>> for i in range(200):
...     model.learn_one({"recency_log": i % 5, "frequency_log": i % 3, "monetary_log": i % 7})
>>> len(set(model.names().values())) == model.n_clusters
True
"""

from __future__ import annotations

import itertools
import math

from river import cluster, preprocessing

from models.features import CustomerState

FEATURES = ("recency_log", "frequency_log", "monetary_log")

#: Archetypes in standardised (recency, frequency, monetary) space; high recency = long ago.
ARCHETYPES: dict[str, tuple[float, float, float]] = {
    "champions": (-0.9, 1.3, 1.3),
    "loyal": (-0.5, 0.4, 0.4),
    "new": (-0.9, -0.9, -0.7),
    "at_risk": (0.7, 0.3, 0.3),
    "hibernating": (1.0, -0.8, -0.8),
    "lost": (1.6, -1.0, -1.0),
}
#: Segments a customer should not fall out of unnoticed, and the ones that count as a
#: fall from them (segment_downgrade alerts); "new" is neither.
VALUABLE_SEGMENTS = frozenset({"champions", "loyal"})
WORSE_SEGMENTS = frozenset({"at_risk", "hibernating", "lost"})
#: Weight of the newest point in the running inertia (about the last 1,000 points).
INERTIA_EWM_RATE = 0.001
#: Customer snapshots learned before a move between segments may raise an alert.
MIN_LEARNED_FOR_ALERTS = 2_000


def segment_features(state: CustomerState, now_ms: int) -> dict[str, float]:
    since = state.last_purchase_ms if state.last_purchase_ms is not None else state.first_seen_ms
    return {
        "recency_log": math.log1p(max(0.0, (now_ms - since) / 86_400_000)),
        "frequency_log": math.log1p(state.purchase_count),
        "monetary_log": math.log1p(max(state.revenue, 0.0)),
    }


class SegmentModel:
    VERSION = "segments-kmeans/1"

    def __init__(
        self, n_clusters: int = 5, halflife: float = 0.1, switch_margin: float = 0.2, seed: int = 7
    ) -> None:
        self.n_clusters = n_clusters
        self.switch_margin = switch_margin
        self.scaler = preprocessing.StandardScaler()
        self.kmeans = cluster.KMeans(n_clusters=n_clusters, halflife=halflife, sigma=1.0, seed=seed)
        # River draws a centre's random start lazily, when a feature is first read, and
        # its distance reads features in set order (string hashes vary per process): draw
        # them all now, in a fixed order, so that a replay is the same in every process.
        for center in self.kmeans.centers.values():
            for feature in FEATURES:
                center[feature]  # the read draws the start value
        self._names: dict[int, str] = {}
        self.seen = 0
        #: Running mean of the squared distance of learned points to their nearest centre.
        self.inertia_ewm = 0.0

    @property
    def ready(self) -> bool:
        return self.seen >= MIN_LEARNED_FOR_ALERTS

    def scaled(self, features: dict[str, float]) -> dict[str, float]:
        return dict(self.scaler.transform_one(features))

    def learn_one(self, features: dict[str, float]) -> None:
        self.scaler.learn_one(features)
        x = self.scaled(features)
        if self.seen:  # the squared distance to the nearest centre, before it moves
            nearest = min(self.distances(features).values())
            self.inertia_ewm += INERTIA_EWM_RATE * (nearest - self.inertia_ewm)
        self.kmeans.learn_one(x)
        self.seen += 1
        self._names = {}

    def distances(self, features: dict[str, float]) -> dict[int, float]:
        x = self.scaled(features)
        return {
            c: sum((x.get(f, 0.0) - center.get(f, 0.0)) ** 2 for f in FEATURES)
            for c, center in self.kmeans.centers.items()
        }

    def assign(self, features: dict[str, float], current: int | None = None) -> int:
        """The customer's cluster, kept unless another is clearly closer."""
        dist = self.distances(features)
        best = min(dist, key=dist.__getitem__)
        if (
            current is not None
            and current in dist
            and dist[best] >= (1.0 - self.switch_margin) * dist[current]
        ):
            return current
        return best

    def names(self) -> dict[int, str]:
        """Cluster -> archetype name, one name per cluster, least total distance."""
        if not self._names and self.kmeans.centers:
            centers = {
                c: tuple(center.get(f, 0.0) for f in FEATURES)
                for c, center in self.kmeans.centers.items()
            }
            clusters = sorted(centers)
            best_cost, best = math.inf, tuple[str, ...]()
            for names in itertools.permutations(ARCHETYPES, len(clusters)):
                cost = sum(
                    sum((a - b) ** 2 for a, b in zip(centers[c], ARCHETYPES[n], strict=True))
                    for c, n in zip(clusters, names, strict=True)
                )
                if cost < best_cost:
                    best_cost, best = cost, names
            self._names = dict(zip(clusters, best, strict=True))
        return self._names

    def inertia(self, rows: list[dict[str, float]]) -> float:
        """Sum of squared distances of ``rows`` (raw features) to their nearest centroid."""
        return sum(min(self.distances(r).values()) for r in rows)
