"""Medical-IoT telemetry: per-device models of injected, spoofed or replayed readings.

One gradient-boosted classifier per device kind, over the reading values and their sequence features
(`sequence.py`: rate of change, bursts, replays, distance outside the normal envelope). Records carry
`device`, `time` (epoch seconds; ordering only, never a feature) and the device's readings.
`score_one` advances the device's stream state: call it in time order. `learn_one` adds a labelled
reading to the device's training rows (kept with the model) and the device refits before its next
score. `learn_many(X, y, learn=mask)`
computes sequence features over all of X but learns only from the masked rows, so a held-out row's
predecessor is the true previous reading rather than a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from healthswarm.detect.learn.base import Classifier
from healthswarm.detect.learn.boosting import positive_probability
from healthswarm.detect.learn.datasets import LabelledData
from healthswarm.detect.learn.datasets.toniot import DEVICES
from healthswarm.detect.learn.registry import register
from healthswarm.detect.learn.sequence import Envelope, SequenceState, features, names
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted

BENIGN = "normal"


@register
class TelemetryModel(Classifier):
    kind = "telemetry"
    layouts = ("ton-iot",)
    sequential = True

    def __init__(self, seed: int = 0, max_iter: int = 200) -> None:
        super().__init__()
        self.params = {"seed": seed, "max_iter": max_iter}
        self.devices: dict[str, tuple[list[str], Envelope, Any]] = {}
        self._state: dict[str, SequenceState] = {}
        # per device: the feature rows and labels learned from (kept for refits after learn_one), the
        # stream state of the learning sequence, and whether a refit is due
        self._train: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._learn_state: dict[str, SequenceState] = {}
        self._stale: set[str] = set()
        self.card.layout = "ton-iot"
        self.card.params = dict(self.params)
        self.card.classes = [BENIGN, "attack"]

    def _device_rows(self, X: Table) -> dict[str, np.ndarray]:
        for column in ("device", "time"):
            if column not in X.columns:
                raise InputError(Problem(Location("<telemetry>"), f"no {column!r} column", "device, time, readings"))
        devices = X.columns["device"]
        return {str(d): np.flatnonzero(devices == d) for d in dict.fromkeys(devices)}

    def _matrix(self, X: Table, idx: np.ndarray, readings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A device's readings and times in time order, and the row indices in that order."""
        values = np.column_stack([np.asarray(X.columns[r][idx], dtype=np.float64) for r in readings])
        times = np.asarray(X.columns["time"][idx], dtype=np.float64)
        order = np.argsort(times, kind="stable")
        return values[order], times[order], idx[order]

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None, learn: np.ndarray | None = None
                   ) -> None:
        if y is None or len(X) == 0:
            raise InputError(Problem(Location("<training data>"), "no labelled readings", "labelled telemetry"))
        labels = np.asarray([str(v) for v in y], dtype=object)
        mask = np.ones(len(X), dtype=bool) if learn is None else np.asarray(learn, dtype=bool)
        for device, idx in self._device_rows(X).items():
            readings = list(DEVICES.get(device, ()))
            if not readings:
                raise InputError(Problem(Location("<telemetry>", field="device"), f"unknown device {device!r}",
                                         "one of " + ", ".join(DEVICES)))
            values, times, order = self._matrix(X, idx, readings)
            train = mask[order]
            normal = train & (labels[order] == BENIGN)
            if not normal.any() or normal.all():
                raise InputError(Problem(Location("<training data>", field=device),
                                         "needs both normal and attack readings", "labelled normal and attack rows"))
            envelope = Envelope.learn(values[normal])
            state = SequenceState()
            matrix = np.vstack([state.step(values[i], float(times[i]), envelope) for i in range(len(values))])
            self._train[device] = (matrix[train], labels[order][train] != BENIGN)
            self._learn_state[device] = state
            self.devices[device] = (readings, envelope, self._fit(device))
        self.card.features = sorted({n for r, _, _ in self.devices.values() for n in names(r)})

    @classmethod
    def from_data(cls, data: LabelledData, train: np.ndarray, **params: Any) -> TelemetryModel:
        model = cls(**params)
        mask = np.zeros(len(data), dtype=bool)
        mask[train] = True
        model.learn_many(data.table, data.labels, learn=mask)
        return model

    def _fit(self, device: str) -> Any:
        matrix, attack = self._train[device]
        clf = HistGradientBoostingClassifier(max_iter=self.params["max_iter"], random_state=self.params["seed"],
                                             class_weight="balanced")
        self._stale.discard(device)
        return clf.fit(matrix, attack)

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        """Add one labelled reading, following the device's learning sequence; the device's classifier
        refits before its next score (the normal envelope stays as the first batch learned it)."""
        if y is None:
            raise InputError(Problem(Location("<record>"), "no label", "normal or attack"))
        device = str(x.get("device"))
        if device not in self.devices:
            self._model(device)  # raises: no model for this device
        readings, envelope, _ = self.devices[device]
        values = self._values(x, device, readings)
        row = self._learn_state[device].step(values, float(x["time"]), envelope)
        matrix, attack = self._train[device]
        self._train[device] = (np.vstack([matrix, row]), np.append(attack, str(y) != BENIGN))
        self._stale.add(device)

    def _values(self, x: Mapping[str, Any], device: str, readings: list[str]) -> np.ndarray:
        missing = [r for r in readings if r not in x]
        if missing:
            raise InputError(Problem(Location("<record>"),
                                     f"{counted(len(missing), 'missing reading')}: " + ", ".join(missing),
                                     f"the readings of a {device}: " + ", ".join(readings)))
        values = np.asarray([float(x[r]) for r in readings])
        if not np.isfinite(values).all():
            raise InputError(Problem(Location("<record>"), "reading is NaN or infinite", "a finite number"))
        return values

    def _model(self, device: str, where: str = "<record>") -> tuple[list[str], Envelope, Any]:
        if device in self._stale:
            readings, envelope, _ = self.devices[device]
            self.devices[device] = (readings, envelope, self._fit(device))
        if device not in self.devices:
            raise InputError(Problem(Location(where, field="device"), f"no model for device {device!r}",
                                     "one of " + ", ".join(self.devices) if self.devices else "a trained model"))
        readings, _, clf = self.devices[device]
        if getattr(clf, "n_features_in_", len(names(readings))) != len(names(readings)):
            raise InputError(Problem(Location(where, field="device"),
                                     f"the {device} model was trained on older sequence features",
                                     "a telemetry model trained with this healthswarm; retrain it"))
        return self.devices[device]

    def score_one(self, x: Mapping[str, Any]) -> float:
        device = str(x.get("device"))
        readings, _, _ = self._model(device)
        values = self._values(x, device, readings)
        return self.score_stream(device, values, float(x["time"]), self._state.setdefault(device, SequenceState()))[0]

    def readings(self, device: str) -> list[str]:
        """The reading columns the model of `device` expects, in order."""
        return self._model(device)[0]

    def score_stream(self, device: str, values: np.ndarray, time: float, state: SequenceState
                     ) -> tuple[float, np.ndarray]:
        """Attack probability and sequence-feature row of one reading of a stream whose state the caller
        keeps: the pipeline keeps one per physical device, since two fridges must not share a sequence."""
        _, envelope, clf = self._model(device)
        row = state.step(values, time, envelope)
        return positive_probability(clf, row), row

    def predict_one(self, x: Mapping[str, Any]) -> str:
        return "attack" if self.score_one(x) >= 0.5 else BENIGN

    def reset(self) -> None:
        """Forget the stream state (start of a new, unrelated sequence)."""
        self._state.clear()

    def feature_rows(self, X: Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per device: the row indices of X in time order and their feature rows (readings and sequence
        features), as the classifier sees them."""
        out = {}
        for device, idx in self._device_rows(X).items():
            readings, envelope, _ = self._model(device, X.where(int(idx[0])).rpartition(":")[0] or "<table>")
            values, times, order = self._matrix(X, idx, readings)
            if not np.isfinite(values).all():
                bad = int(order[np.flatnonzero(~np.isfinite(values).all(axis=1))[0]])
                raise InputError(Problem(Location(X.where(bad)), "reading is NaN or infinite", "a finite number"))
            out[device] = (order, features(values, times, envelope))
        return out

    def score_many(self, X: Table) -> np.ndarray:
        out = np.zeros(len(X))
        for device, (order, rows) in self.feature_rows(X).items():
            out[order] = self.devices[device][2].predict_proba(rows)[:, 1]
        return out

    def predict_many(self, X: Table) -> np.ndarray:
        return np.where(self.score_many(X) >= 0.5, "attack", BENIGN).astype(object)
