"""Network flow classifier: which attack class (or benign) a flow is, from its statistics only.

Batch model (scikit-learn random forest): `learn_many` fits; `learn_one` adds a labelled record to the
kept training matrix (saved with the model, float32) and the model refits before the next score.
Features come from the data layout (CICFlowMeter or NSL-KDD) and never include identifiers or labels
(see the layout modules).
`score_one` is the probability that the flow is not benign (the sum of the attack classes'
probabilities). The class decision follows it: benign when that sum is below 0.5, else the most likely
attack class. Taking the arg-max over all classes instead calls a flow benign when the attack
probability is split between similar attacks (slow DoS variants), which cost recall on CIC-IDS2017.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from healthswarm.detect.learn.base import Classifier
from healthswarm.detect.learn.datasets import LabelledData, cicflowmeter, nslkdd
from healthswarm.detect.learn.features import FeatureSpec
from healthswarm.detect.learn.registry import register
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

#: Per layout: (numeric features, categorical features, benign label).
LAYOUT_FEATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "cicflowmeter": (cicflowmeter.NUMERIC, cicflowmeter.CATEGORICAL, cicflowmeter.BENIGN),
    "nsl-kdd": (nslkdd.NUMERIC, nslkdd.CATEGORICAL, nslkdd.BENIGN),
}
ESTIMATORS = {"random-forest": RandomForestClassifier, "extra-trees": ExtraTreesClassifier}


@register
class FlowClassifier(Classifier):
    kind = "flow-classifier"
    layouts = tuple(LAYOUT_FEATURES)

    def __init__(self, layout: str = "cicflowmeter", estimator: str = "random-forest", n_estimators: int = 100,
                 seed: int = 0, oob: bool = False) -> None:
        super().__init__()
        if layout not in LAYOUT_FEATURES:
            raise InputError(Problem(Location("<layout>"), f"flow classifier cannot use {layout!r} data",
                                     " or ".join(LAYOUT_FEATURES)))
        self.layout = layout
        self.params = {"estimator": estimator, "n_estimators": n_estimators, "seed": seed}
        if oob:  # out-of-bag probabilities of the training rows: what the hybrid calibrates its threshold on
            self.params["oob"] = True
        numeric, categorical, self.benign = LAYOUT_FEATURES[layout]
        self._numeric, self._categorical = list(numeric), list(categorical)
        self.spec: FeatureSpec | None = None
        self.classes: list[str] = []
        self._X = np.empty((0, 0), dtype=np.float32)
        self._y = np.empty(0, dtype=object)
        self._stale = False
        self._estimator: Any = None
        self.card.layout = layout
        self.card.params = dict(self.params)

    @classmethod
    def from_data(cls, data: LabelledData, train: np.ndarray, **params: Any) -> FlowClassifier:
        model = cls(layout=data.layout, **params)
        model.learn_many(data.table.take(train), data.labels[train])
        return model

    @property
    def features(self) -> list[str]:
        return self.spec.names if self.spec else [*self._numeric, *self._categorical]

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None) -> None:
        if y is None or len(X) == 0:
            raise InputError(Problem(Location("<training data>"), "no labelled rows to learn from",
                                     "at least one labelled row of each class to detect"))
        if self.spec is None:
            self.spec = FeatureSpec.learn(X, self._numeric, self._categorical)
        encoded = self.spec.encode(X).astype(np.float32)  # what the trees split on anyway
        self._X = encoded if self._X.size == 0 else np.vstack([self._X, encoded])
        self._y = np.concatenate([self._y, np.asarray([str(v) for v in y], dtype=object)])
        self._fit()

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        if self.spec is None:
            raise InputError(Problem(Location("<record>"), "learn_one before any learn_many",
                                     "a first batch (learn_many) that fixes the features and categories"))
        if y is None:
            raise InputError(Problem(Location("<record>"), "no label", "a class label for a classifier"))
        self._X = np.vstack([self._X, self.spec.encode_one(x).astype(np.float32)])
        self._y = np.append(self._y, str(y))
        self._stale = True

    def _fit(self) -> None:
        if len(set(self._y)) < 2:
            raise InputError(Problem(Location("<training data>"), f"only one class ({self._y[0]!r}) in the data",
                                     "benign and attack rows"))
        cls = ESTIMATORS[self.params["estimator"]]
        extra = {"oob_score": True} if self.params.get("oob") else {}
        self._estimator = cls(n_estimators=self.params["n_estimators"], random_state=self.params["seed"], n_jobs=1,
                              class_weight="balanced_subsample", min_samples_leaf=1, **extra)
        self._estimator.fit(self._X, self._y)
        self.classes = [str(c) for c in self._estimator.classes_]
        self.card.features = self.features
        self.card.classes = self.classes
        self._stale = False

    def _ready(self) -> Any:
        if self._estimator is None or self.spec is None:
            raise InputError(Problem(Location("<model>"), "the model has not been trained", "learn_many first"))
        if self._stale:
            self._fit()
        return self._estimator

    def _attack_probability(self, proba: np.ndarray) -> np.ndarray:
        if self.benign in self.classes:
            return 1.0 - proba[:, self.classes.index(self.benign)]
        return np.ones(len(proba))

    def _proba_one(self, row: np.ndarray) -> np.ndarray:
        """predict_proba of one row without scikit-learn's per-call checks (about 20× faster for one
        event; the same numbers: the forest's probability is the mean of its trees' leaf fractions)."""
        estimator = self._ready()
        with np.errstate(over="ignore"):  # beyond float32 is ±inf, as it was when training cast its rows
            one = row.astype(np.float32).reshape(1, -1)
        total = sum(tree.tree_.predict(one) for tree in estimator.estimators_)
        proba = np.asarray(total, dtype=np.float64).reshape(1, -1) / len(estimator.estimators_)
        if proba.shape[1] != len(self.classes):
            return estimator.predict_proba(row.reshape(1, -1))
        return proba

    def classify_row(self, row: np.ndarray) -> tuple[str, float, np.ndarray]:
        """Class, attack probability and per-class probabilities of one row already encoded as `spec` does
        (the pipeline detector builds rows straight from events, without a dict per flow)."""
        proba = self._proba_one(row)
        return str(self._decide(proba)[0]), float(self._attack_probability(proba)[0]), proba[0]

    def importances(self) -> np.ndarray:
        """The forest's impurity-based importance of each feature (in `features` order)."""
        return np.asarray(self._ready().feature_importances_, dtype=np.float64)

    def score_one(self, x: Mapping[str, Any]) -> float:
        self._ready()
        assert self.spec is not None
        return float(self._attack_probability(self._proba_one(self.spec.encode_one(x)))[0])

    def _decide(self, proba: np.ndarray) -> np.ndarray:
        classes = np.asarray(self.classes, dtype=object)
        if self.benign not in self.classes:
            return classes[proba.argmax(axis=1)]
        b = self.classes.index(self.benign)
        attack = proba.copy()
        attack[:, b] = -1.0
        return np.where(1.0 - proba[:, b] >= 0.5, classes[attack.argmax(axis=1)], self.benign)

    def predict_one(self, x: Mapping[str, Any]) -> str:
        self._ready()
        assert self.spec is not None
        return str(self._decide(self._proba_one(self.spec.encode_one(x)))[0])

    def score_many(self, X: Table) -> np.ndarray:
        estimator = self._ready()
        assert self.spec is not None
        return self._attack_probability(estimator.predict_proba(self.spec.encode(X)))

    def predict_many(self, X: Table) -> np.ndarray:
        estimator = self._ready()
        assert self.spec is not None
        return self._decide(estimator.predict_proba(self.spec.encode(X)))

    def predict_and_score(self, X: Table, unseen: str = "error") -> tuple[np.ndarray, np.ndarray]:
        """Class and attack probability in one pass (evaluation uses both); `unseen` as in FeatureSpec."""
        estimator = self._ready()
        assert self.spec is not None
        proba = estimator.predict_proba(self.spec.encode(X, unseen))
        return self._decide(proba), self._attack_probability(proba)
