"""Train a model kind on labelled files with a held-out split, and evaluate a saved model on files.

This is what `healthswarm model train|evaluate` and the bench call. A model is always measured on rows
it did not learn from: training holds out a share (stratified, or the latest time range per class),
and evaluating on a file the model was trained on scores only that file's held-out rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from healthswarm.detect.learn import splits
from healthswarm.detect.learn.base import Classifier, Model
from healthswarm.detect.learn.card import DataFile
from healthswarm.detect.learn.datasets import LabelledData, read_labelled
from healthswarm.detect.learn.metrics import classification_report
from healthswarm.detect.learn.registry import model_class
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Event

SPLITS = ("stratified", "time")


@dataclass(slots=True)
class Trained:
    model: Model
    data: LabelledData
    train: np.ndarray
    test: np.ndarray
    report: dict[str, Any]
    holdout: dict[str, list[int]]


def split(data: LabelledData, method: str, test: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if method == "stratified":
        return splits.stratified(data.strata, test, seed)
    if method == "time":
        if len(data.times) != len(data) or not np.isfinite(data.times).all():
            raise InputError(Problem(Location("--split"), f"{data.layout} data has no time for every row",
                                     "--split stratified"))
        return splits.by_time(data.strata, data.times, test)
    raise InputError(Problem(Location("--split"), f"unknown split {method!r}", " or ".join(SPLITS)))


def assess(model: Model, data: LabelledData, unseen: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """Predicted label and attack score of every row (`unseen` categories: "error" or "other")."""
    predict_data = getattr(model, "predict_data", None)
    if predict_data is not None:  # scores rows with their sources and times (the hybrid's source windows)
        return predict_data(data, unseen)
    predict_and_score = getattr(model, "predict_and_score", None)
    if predict_and_score is not None:
        return predict_and_score(data.table, unseen)
    scores = model.score_many(data.table)
    if isinstance(model, Classifier):
        return model.predict_many(data.table), scores
    return np.where(scores >= 0.5, "attack", data.benign).astype(object), scores


def train(kind: str, paths: Sequence[Path], method: str = "stratified", test: float = 0.3, seed: int = 0,
          params: dict[str, Any] | None = None) -> Trained:
    cls = model_class(kind, Location("KIND"))
    if not cls.supervised:
        raise InputError(Problem(Location("KIND"), f"{kind} learns from the event stream, not labelled files",
                                 "a supervised kind: flow-classifier, hybrid, novelty or telemetry"))
    if not 0 < test < 1:
        raise InputError(Problem(Location("--test"), f"{test} is not a share", "a number between 0 and 1"))
    data = read_labelled(list(paths))
    if cls.layouts and data.layout not in cls.layouts:
        raise InputError(Problem(Location(str(paths[0]), 1), f"is {data.layout} data",
                                 f"{' or '.join(cls.layouts)} data for a {kind} model"))
    train_idx, test_idx = split(data, method, test, seed)
    if len(train_idx) == 0:
        raise InputError(Problem(Location("--data"), "no rows left to train on", "more labelled rows"))
    model = cls.from_data(data, train_idx, **(params or {}))
    predicted, scores = assess(model, data.take(test_idx) if model.supervised and not _sequential(model) else data,
                               "other")
    if len(predicted) != len(data):
        predicted, scores = _spread(predicted, test_idx, len(data)), _spread(scores, test_idx, len(data))
    report = classification_report(data.labels[test_idx], predicted[test_idx], data.benign, scores[test_idx],
                                   classes=sorted(set(data.labels)))
    report["unseen_categories"] = _unseen(model)
    model.card.data = data.files
    model.card.layout = data.layout
    model.card.split = {"method": method, "test_share": test, "seed": seed, "train_rows": len(train_idx),
                        "test_rows": len(test_idx)}
    model.card.metrics = {**model.card.metrics, "held_out": report}
    if data.repaired:
        model.card.notes.append("non-finite rate values set to -1: "
                                + ", ".join(f"{k} ×{v}" for k, v in data.repaired.items()))
    return Trained(model, data, train_idx, test_idx, report, _holdout(data, test_idx))


def _sequential(model: Model) -> bool:
    """Models whose features depend on neighbouring rows score the whole sequence (see telemetry)."""
    return bool(getattr(model, "sequential", False))


def _spread(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(n, dtype=values.dtype)
    out[index] = values
    return out


def _unseen(model: Model) -> dict[str, int]:
    spec = getattr(model, "spec", None)
    return dict(spec.unseen_counts) if spec is not None else {}


def _holdout(data: LabelledData, test_idx: np.ndarray) -> dict[str, list[int]]:
    by_path = {f.path: f.sha256 for f in data.files}
    out: dict[str, list[int]] = {}
    for i in test_idx:
        path, _, line = data.table.where(int(i)).rpartition(":")
        out.setdefault(by_path[path], []).append(int(line))
    return out


def evaluate(model: Model, paths: Sequence[Path], holdout: dict[str, set[int]], unseen: str = "error"
             ) -> dict[str, Any]:
    """Score labelled files; rows of a training file count only if they were held out of training.
    Unseen categories are an error, or (`unseen="other"`) scored as "other" and counted in the report."""
    data = read_labelled(list(paths))
    if model.card.layout and data.layout != model.card.layout:
        raise InputError(Problem(Location(str(paths[0]), 1), f"is {data.layout} data",
                                 f"{model.card.layout} data like the model was trained on"))
    trained = {f.sha256 for f in model.card.data}
    by_path = {f.path: f.sha256 for f in data.files}
    keep = np.ones(len(data), dtype=bool)
    for i in range(len(data)):
        path, _, line = data.table.where(i).rpartition(":")
        sha = by_path[path]
        if sha in trained:
            keep[i] = int(line) in holdout.get(sha, set())
    if not keep.any():
        raise InputError(Problem(Location(str(paths[0])), "every row was used to train this model",
                                 "files (or held-out rows) the model did not learn from"))
    if _sequential(model):
        predicted, scores = assess(model, data, unseen)
    else:
        index = np.flatnonzero(keep)
        predicted, scores = assess(model, data.take(index), unseen)
        predicted, scores = _spread(predicted, index, len(data)), _spread(scores, index, len(data))
    report = classification_report(data.labels[keep], predicted[keep], data.benign, scores[keep],
                                   classes=model.card.classes or None)
    report["unseen_categories"] = _unseen(model)
    if data.layout == "nsl-kdd":
        from healthswarm.detect.learn.evaluation import nsl_kdd_figures

        report["nsl_kdd"] = nsl_kdd_figures(data, predicted, keep)
    report["files"] = [f.path for f in data.files]
    report["rows_skipped_as_training_data"] = int((~keep).sum())
    return report


def learn_stream(kind: str, events: Iterable[tuple[Path, str, Event]], params: dict[str, Any] | None = None
                 ) -> Model:
    """Train an unsupervised stream model (asset-baseline) on (file, format, event) triples, in order.
    The caller reads the files (the CLI uses the ingest formats and the stored inventory)."""
    cls = model_class(kind, Location("KIND"))
    if cls.supervised:
        raise InputError(Problem(Location("KIND"), f"{kind} learns from labelled files",
                                 "an event-stream kind: asset-baseline"))
    model = cls(**(params or {}))
    learned: dict[tuple[Path, str], int] = {}
    for path, fmt, event in events:
        model.learn_one({**event.fields, "@timestamp": event.timestamp})
        learned[(path, fmt)] = learned.get((path, fmt), 0) + 1
    if not learned:
        raise InputError(Problem(Location("--data"), "no events in the files", "network events to learn from"))
    model.card.data = [DataFile.of(path, fmt, n) for (path, fmt), n in learned.items()]
    model.card.layout = "events"
    model.card.split = {"method": "none"}
    model.card.notes.append("unsupervised: learns every event it is given; it is judged by its alerts")
    profiles = getattr(model, "profiles", {})
    model.card.metrics = {"events": sum(learned.values()), "assets_profiled": len(profiles)}
    return model
