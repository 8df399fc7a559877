"""Detectors of the unknown: a novelty model trained on benign flows only, and the hybrid of it with the
flow classifier (the classifier names what it knows; the novelty model raises what it does not).

Features are the flow layout's (CICFlowMeter or NSL-KDD, `features.FeatureSpec`), transformed for
distances: numbers as sign·log(1+|x|) (flow statistics span ten orders of magnitude), then scaled by
the benign rows' mean and spread; categories one-hot (a value never seen is all zeros).

Methods (`method`), compared in `bench/learn.py` on leave-one-class-out and NSL-KDD:

- `knn` (default): mean distance to the 5 nearest benign training flows. It kept its false-alarm
  budget on unseen benign flows best (CIC-IDS2017: 0.6 % flagged at a 1 % budget) and is on par with
  the autoencoder on NSL-KDD once combined with the classifier.
- `isolation-forest`: scikit-learn's IsolationForest (200 trees).
- `autoencoder`: a 32-8-32 MLP trained to reproduce benign rows; the score is the reconstruction error.
  Best ROC-AUC on NSL-KDD, but it spends more of the budget than it was calibrated for.

Thresholds are never a fixed score. A share of the benign rows (`calibration`, 25 %) is kept out of
fitting; their scores are the calibration: `threshold(share)` is the score that that share of benign
flows exceeds, so a false-alarm budget (alerts per asset and day, see `novelty_detector.AssetBudget`)
becomes a threshold by the asset's flow rate. `score_one` is the calibrated rank: the share of
calibration benign flows scoring below this one (0 … 1).

The hybrid keeps a random forest (`FlowClassifier`) and a novelty model over the same features; each
gets half of the budget `budget` (a share of benign flows). The forest's threshold comes from its
out-of-bag attack probabilities of the benign training rows, the novelty model's from its calibration
rows — neither from any test data. A flow is the forest's attack class when its attack probability
passes the forest's threshold, else `novel` when its novelty score passes its own, else benign.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.neural_network import MLPRegressor

from healthswarm.detect.learn.base import Classifier, Model
from healthswarm.detect.learn.datasets import LabelledData
from healthswarm.detect.learn.features import FeatureSpec
from healthswarm.detect.learn.flow_classifier import LAYOUT_FEATURES, FlowClassifier
from healthswarm.detect.learn.registry import register
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

if TYPE_CHECKING:
    from healthswarm.detect.learn.windows import WindowModel

METHODS = ("knn", "isolation-forest", "autoencoder")
NOVEL = "novel"
DEFAULT_BUDGET = 0.01  # share of benign flows flagged, as calibrated
CLIP = 20.0  # standardised features beyond ±20 spreads count as 20: one wild value must not be the whole score


def signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class Transform:
    """Encoded rows (FeatureSpec order) → the matrix the novelty methods see (see the module docstring)."""

    def __init__(self, spec: FeatureSpec, benign: np.ndarray) -> None:
        self.n_numeric = len(spec.numeric)
        self.sizes = [len(v) for v in spec.categorical.values()]
        z = self._raw(benign)
        self.mean = z.mean(axis=0)
        self.scale = np.maximum(z.std(axis=0), 1e-3)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        parts = [signed_log(X[:, : self.n_numeric])]
        for k, size in enumerate(self.sizes):
            codes = X[:, self.n_numeric + k].astype(np.int64)
            hot = np.zeros((len(X), size))
            known = codes >= 0
            hot[np.flatnonzero(known), codes[known]] = 1.0
            parts.append(hot)
        return np.hstack(parts)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.clip((self._raw(X) - self.mean) / self.scale, -CLIP, CLIP)


class _Knn:
    def __init__(self, seed: int) -> None:
        self.k = 5

    def fit(self, Z: np.ndarray) -> _Knn:
        self.nn = NearestNeighbors(n_neighbors=min(self.k, len(Z))).fit(Z)
        return self

    def score(self, Z: np.ndarray) -> np.ndarray:
        return self.nn.kneighbors(Z)[0].mean(axis=1)


class _Forest:
    def __init__(self, seed: int) -> None:
        self.model = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)

    def fit(self, Z: np.ndarray) -> _Forest:
        self.model.fit(Z)
        return self

    def score(self, Z: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(Z)


class _Autoencoder:
    def __init__(self, seed: int) -> None:
        self.model = MLPRegressor(hidden_layer_sizes=(32, 8, 32), max_iter=200, random_state=seed)

    def fit(self, Z: np.ndarray) -> _Autoencoder:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(Z, Z)
        return self

    def score(self, Z: np.ndarray) -> np.ndarray:
        return ((self.model.predict(Z) - Z) ** 2).mean(axis=1)


_METHODS = {"knn": _Knn, "isolation-forest": _Forest, "autoencoder": _Autoencoder}


@dataclass(slots=True)
class Calibration:
    """Scores of benign rows the scorer did not learn from, sorted."""

    scores: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> Calibration:
        s = np.sort(np.asarray(scores, dtype=np.float64))
        s = s[np.isfinite(s)]
        if len(s) == 0:
            raise InputError(Problem(Location("<training data>"), "no benign rows left to calibrate on",
                                     "more benign rows"))
        return cls(s)

    def threshold(self, share: float) -> float:
        """The score that `share` of the calibration benign rows reach or exceed (at least one row's
        worth: a share finer than 1/n is the highest calibration score)."""
        k = int(np.floor(share * len(self.scores)))
        return float(self.scores[max(len(self.scores) - max(k, 1), 0)])

    def rank(self, scores: np.ndarray) -> np.ndarray:
        """Share of calibration benign rows scoring strictly below each score."""
        return np.searchsorted(self.scores, scores, side="left") / len(self.scores)


@dataclass(slots=True)
class Profile:
    """What benign rows look like, per numeric feature, for saying which features of a flow were unusual."""

    names: list[str]
    centre: np.ndarray  # median of the transformed value
    spread: np.ndarray  # interquartile range of the transformed value (floored)
    low: np.ndarray  # 1st percentile of the raw value
    high: np.ndarray  # 99th percentile of the raw value

    @classmethod
    def learn(cls, names: list[str], raw: np.ndarray) -> Profile:
        z = signed_log(raw)
        q1, med, q3 = np.percentile(z, [25, 50, 75], axis=0)
        spread = np.maximum(q3 - q1, np.maximum(z.std(axis=0), 0.05))
        low, high = np.percentile(raw, [1, 99], axis=0)
        return cls(names, med, spread, low, high)

    def unusual(self, raw: np.ndarray, top: int = 3) -> list[dict[str, Any]]:
        """The `top` features furthest from their benign median (in spreads), with the benign range."""
        z = np.abs(signed_log(raw) - self.centre) / self.spread
        order = np.argsort(-z, kind="stable")[:top]
        return [{"feature": self.names[i], "value": float(raw[i]), "benign_p1": float(self.low[i]),
                 "benign_p99": float(self.high[i]), "spreads_from_median": round(float(z[i]), 1)}
                for i in order if z[i] > 0]


def describe_unusual(items: list[dict[str, Any]]) -> str:
    return "; ".join(f"{u['feature']}={u['value']:g} (benign 1st–99th percentile {u['benign_p1']:g}–"
                     f"{u['benign_p99']:g})" for u in items)


def _check(layout: str, method: str, budget: float) -> None:
    if layout not in LAYOUT_FEATURES:
        raise InputError(Problem(Location("<layout>"), f"novelty model cannot use {layout!r} data",
                                 " or ".join(LAYOUT_FEATURES)))
    if method not in _METHODS:
        raise InputError(Problem(Location("<method>"), f"unknown novelty method {method!r}", " or ".join(METHODS)))
    if not 0 < budget < 1:
        raise InputError(Problem(Location("<budget>"), f"{budget} is not a share", "a number between 0 and 1"))


@register
class NoveltyModel(Model):
    """Learns benign flows only; anything unlike them scores high (see the module docstring).
    It trains from labelled files (`model train novelty`) but uses only their benign rows; the labels of
    the other rows are for evaluation."""

    kind = "novelty"
    supervised = True
    layouts = tuple(LAYOUT_FEATURES)

    def __init__(self, layout: str = "cicflowmeter", method: str = "knn", budget: float = DEFAULT_BUDGET,
                 calibration: float = 0.25, seed: int = 0) -> None:
        super().__init__()
        _check(layout, method, budget)
        self.layout = layout
        self.params = {"method": method, "budget": budget, "calibration": calibration, "seed": seed}
        numeric, categorical, self.benign = LAYOUT_FEATURES[layout]
        self._numeric, self._categorical = list(numeric), list(categorical)
        self.spec: FeatureSpec | None = None
        self._benign = np.empty((0, 0))
        self._stale = False
        self.card.layout = layout
        self.card.params = dict(self.params)
        self.card.classes = [self.benign, NOVEL]

    @classmethod
    def from_data(cls, data: LabelledData, train: np.ndarray, **params: Any) -> NoveltyModel:
        model = cls(layout=data.layout, **params)
        model.learn_many(data.table.take(train), data.labels[train])
        return model

    @property
    def features(self) -> list[str]:
        return self.spec.names if self.spec else [*self._numeric, *self._categorical]

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None,
                   spec: FeatureSpec | None = None) -> None:
        """Learn the benign rows of X (every row when `y` is None); `spec` shares another model's encoding."""
        if len(X) == 0:
            raise InputError(Problem(Location("<training data>"), "no rows to learn from", "benign flows"))
        if self.spec is None:
            self.spec = spec or FeatureSpec.learn(X, self._numeric, self._categorical)
        benign = np.ones(len(X), dtype=bool) if y is None else np.asarray([str(v) == self.benign for v in y])
        if benign.sum() < 20:
            raise InputError(Problem(Location("<training data>"), f"{int(benign.sum())} benign rows",
                                     f"at least 20 rows labelled {self.benign!r} to learn normal traffic from"))
        rows = self.spec.encode(X.take(np.flatnonzero(benign)), "other")
        self._benign = rows if self._benign.size == 0 else np.vstack([self._benign, rows])
        self._fit()

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        """Add one benign flow (a labelled attack is ignored); the model refits before its next score."""
        if self.spec is None:
            raise InputError(Problem(Location("<record>"), "learn_one before any learn_many",
                                     "a first batch (learn_many) that fixes the features and categories"))
        if y is not None and str(y) != self.benign:
            return
        self._benign = np.vstack([self._benign, self.spec.encode_one(x, "other")])
        self._stale = True

    def _fit(self) -> None:
        assert self.spec is not None
        rng = np.random.default_rng(self.params["seed"])
        order = rng.permutation(len(self._benign))
        n_cal = max(round(len(order) * self.params["calibration"]), 10)
        cal, fit = self._benign[order[:n_cal]], self._benign[order[n_cal:]]
        self.transform = Transform(self.spec, fit)
        self.scorer = _METHODS[self.params["method"]](self.params["seed"]).fit(self.transform(fit))
        self.calibration = Calibration.of(self.scorer.score(self.transform(cal)))
        self.profile = Profile.learn(list(self.spec.numeric), fit[:, : len(self.spec.numeric)])
        self.card.features = self.features
        self.card.metrics.setdefault("calibration", {})
        self.card.metrics["calibration"] = {"benign_fit_rows": len(fit), "benign_calibration_rows": len(cal),
                                            "threshold_at_budget": self.threshold(self.params["budget"])}
        self._stale = False

    def _ready(self) -> FeatureSpec:
        if self.spec is None or not hasattr(self, "scorer"):
            raise InputError(Problem(Location("<model>"), "the model has not been trained", "learn_many first"))
        if self._stale:
            self._fit()
        return self.spec

    def threshold(self, share: float) -> float:
        return self.calibration.threshold(share)

    def raw_rows(self, rows: np.ndarray) -> np.ndarray:
        """Novelty scores of rows encoded as `spec` does."""
        self._ready()
        with np.errstate(over="ignore", invalid="ignore"):
            return self.scorer.score(self.transform(rows))

    def raw_many(self, X: Table, unseen: str = "error") -> np.ndarray:
        return self.raw_rows(self._ready().encode(X, unseen))

    def score_one(self, x: Mapping[str, Any]) -> float:
        return float(self.calibration.rank(self.raw_rows(self._ready().encode_one(x, "other")))[0])

    def score_many(self, X: Table) -> np.ndarray:
        return self.calibration.rank(self.raw_many(X, "other"))

    def predict_and_score(self, X: Table, unseen: str = "error") -> tuple[np.ndarray, np.ndarray]:
        """`novel` or benign at the model's budget, and the calibrated rank, of every row."""
        raw = self.raw_many(X, unseen)
        flagged = raw >= self.threshold(self.params["budget"])
        return np.where(flagged, NOVEL, self.benign).astype(object), self.calibration.rank(raw)

    def unusual(self, row: np.ndarray, top: int = 3) -> list[dict[str, Any]]:
        """Which numeric features of an encoded row lie furthest outside benign traffic."""
        return self.profile.unusual(row[: len(self._numeric)], top)


@register
class HybridModel(Classifier):
    """The flow classifier and a novelty model over the same features (see the module docstring)."""

    kind = "hybrid"
    layouts = tuple(LAYOUT_FEATURES)
    windows: WindowModel | None = None  # source windows, learned by `from_data` on flows with sources

    def __init__(self, layout: str = "cicflowmeter", method: str = "knn", budget: float = DEFAULT_BUDGET,
                 n_estimators: int = 100, seed: int = 0, windows: bool = True) -> None:
        super().__init__()
        _check(layout, method, budget)
        self.layout = layout
        self.params = {"method": method, "budget": budget, "n_estimators": n_estimators, "seed": seed,
                       "windows": windows}
        self.classifier = FlowClassifier(layout=layout, n_estimators=n_estimators, seed=seed, oob=True)
        self.novelty = NoveltyModel(layout=layout, method=method, budget=budget / 2, seed=seed)
        self.benign = self.classifier.benign
        self.card.layout = layout
        self.card.params = dict(self.params)

    @classmethod
    def from_data(cls, data: LabelledData, train: np.ndarray, **params: Any) -> HybridModel:
        model = cls(layout=data.layout, **params)
        model.learn_many(data.table.take(train), data.labels[train])
        if model.params["windows"] and len(data.peers) == len(data) and len(data.hosts) == len(data):
            model.learn_windows(data.take(train))
        return model

    def learn_windows(self, data: LabelledData) -> None:
        """Learn the windows (`windows.py`) of the benign flows among these, as a stream of their own: a
        host that is also an attack source (Infiltration on CIC-IDS2017 scans from a user's PC) would
        otherwise teach its scan as benign."""
        from healthswarm.detect.learn.windows import WindowModel

        benign = data.take(np.flatnonzero(data.labels == self.benign))
        summaries = self._summaries(benign)
        full = ~np.isnan(summaries).any(axis=1)
        self.windows = WindowModel().fit(summaries[full], benign.times[full])
        self._record_thresholds()

    def _summaries(self, data: LabelledData) -> np.ndarray:
        from healthswarm.detect.learn.windows import INPUTS, summarise

        inputs = np.column_stack([np.asarray(data.table.columns[c], dtype=np.float64) for c in INPUTS])
        return summarise(data.hosts, data.peers, data.times, inputs)

    def predict_data(self, data: LabelledData, unseen: str = "error", share: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """As `predict_and_score`, over flows with their sources and times: a flow neither model flags is
        still `novel` when its source's window is (`windows.py`, half of the share of benign windows)."""
        labels, score = self.predict_and_score(data.table, unseen, share)
        if self.windows is None or len(data.peers) != len(data):
            return labels, score
        raw = self.windows.raw(self._summaries(data))
        flagged = (labels == self.benign) & (raw >= self.window_threshold(share))
        return np.where(flagged, NOVEL, labels).astype(object), np.maximum(score, self.windows.calibration.rank(raw))

    @property
    def spec(self) -> FeatureSpec | None:
        return self.classifier.spec

    @property
    def classes(self) -> list[str]:
        return [*self.classifier.classes, NOVEL]

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None) -> None:
        self.classifier.learn_many(X, y)
        self.novelty.learn_many(X, y, spec=self.classifier.spec)
        self._calibrate(np.asarray([str(v) for v in y], dtype=object) if y is not None else None)

    def _calibrate(self, labels: np.ndarray | None) -> None:
        oob = getattr(self.classifier._estimator, "oob_decision_function_", None)
        if oob is None or labels is None:
            raise InputError(Problem(Location("<model>"), "no out-of-bag probabilities to calibrate on",
                                     "a forest trained with oob=True on labelled rows"))
        p_attack = self.classifier._attack_probability(np.nan_to_num(oob, nan=0.0))
        known = ~np.isnan(oob).any(axis=1)
        self.forest_calibration = Calibration.of(p_attack[(self.classifier._y == self.benign) & known])
        self.card.features = self.classifier.features
        self.card.classes = self.classes
        self._record_thresholds()

    def _record_thresholds(self) -> None:
        t_forest, t_novel = self.thresholds()
        self.card.metrics["calibration"] = {
            "budget_share_of_benign": self.params["budget"], "forest_threshold": round(t_forest, 6),
            "novelty_threshold": round(t_novel, 6), "benign_oob_rows": len(self.forest_calibration.scores),
            "benign_novelty_calibration_rows": len(self.novelty.calibration.scores)}
        if self.windows is not None:
            self.card.metrics["calibration"]["windows"] = {
                "benign_windows": len(self.windows.calibration.scores),
                "threshold": round(self.windows.threshold(self.params["budget"] / 2), 6)}

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        self.classifier.learn_one(x, y)
        self.novelty.learn_one(x, y)

    def thresholds(self, share: float | None = None) -> tuple[float, float]:
        """(forest, novelty) thresholds for a share of benign flows flagged (default: the budget): half
        each, or a quarter each when the source windows take the other half."""
        part = (self.params["budget"] if share is None else share) / (4 if self.windows is not None else 2)
        return self.forest_calibration.threshold(part), self.novelty.threshold(part)

    def window_threshold(self, share: float | None = None) -> float:
        """The source windows' threshold: half the share (see `thresholds`)."""
        assert self.windows is not None
        return self.windows.threshold((self.params["budget"] if share is None else share) / 2)

    def judge(self, proba: np.ndarray, raw: np.ndarray, share: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and calibrated scores from the forest's class probabilities and the novelty scores."""
        t_forest, t_novel = self.thresholds(share)
        p_attack = self.classifier._attack_probability(proba)
        classes = np.asarray(self.classifier.classes, dtype=object)
        attack = proba.copy()
        if self.benign in self.classifier.classes:
            attack[:, self.classifier.classes.index(self.benign)] = -1.0
        named = classes[attack.argmax(axis=1)]
        labels = np.where(p_attack >= t_forest, named, np.where(raw >= t_novel, NOVEL, self.benign)).astype(object)
        score = np.maximum(self.forest_calibration.rank(p_attack), self.novelty.calibration.rank(raw))
        return labels, score

    def predict_and_score(self, X: Table, unseen: str = "error", share: float | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        estimator = self.classifier._ready()
        assert self.spec is not None
        rows = self.spec.encode(X, unseen)
        return self.judge(estimator.predict_proba(rows), self.novelty.raw_rows(rows), share)

    def score_many(self, X: Table) -> np.ndarray:
        return self.predict_and_score(X, "other")[1]

    def predict_many(self, X: Table) -> np.ndarray:
        return self.predict_and_score(X, "other")[0]

    def score_one(self, x: Mapping[str, Any]) -> float:
        return float(self.score_many(Table.from_records([x], self.classifier.features))[0])

    def predict_one(self, x: Mapping[str, Any]) -> str:
        return str(self.predict_many(Table.from_records([x], self.classifier.features))[0])
