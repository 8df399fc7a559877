"""Per-device telemetry models: sequence features, synthetic injections, and real TON_IoT readings."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import f1_score, roc_auc_score

from conftest import shared
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.sequence import Envelope, SequenceState, features
from healthswarm.detect.learn.splits import stratified
from healthswarm.detect.learn.table import Table
from healthswarm.detect.learn.telemetry import TelemetryModel
from healthswarm.errors import InputError


def test_sequence_features_rate_replay_burst_envelope() -> None:
    env = Envelope(np.array([0.0]), np.array([10.0]))
    values = np.array([[1.0], [2.0], [2.0], [25.0], [1.0]])
    times = np.array([0.0, 5.0, 5.0, 5.0, 9.0])
    m = features(values, times, env)  # value, d_value, dt, same_second, replays, repeat_previous, outside
    assert m[:, 1].tolist() == [0.0, 1.0, 0.0, 23.0, 24.0]
    assert m[:, 2].tolist() == [0.0, 5.0, 0.0, 0.0, 4.0] and m[:, 3].tolist() == [0, 0, 1, 2, 0]
    assert m[:, 4].tolist() == [0, 0, 1, 0, 1] and m[:, 5].tolist() == [0, 0, 1, 0, 0]
    assert m[:, 6].tolist() == [0, 0, 0, 1.5, 0]
    state = SequenceState()
    assert np.array_equal(np.vstack([state.step(values[i], times[i], env) for i in range(5)]), m)


def synthetic(seed: int, n: int = 1500) -> tuple[Table, np.ndarray]:
    """A thermostat: smooth temperature every 10 s; attacks inject jumps, bursts and replays."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 10.0
    temp = 28 + 3 * np.sin(t / 3000) + rng.normal(0, 0.05, n)
    status = (temp > 28).astype(float)
    attack = np.zeros(n, dtype=bool)
    for start in rng.choice(np.arange(100, n - 20), 25, replace=False):
        kind = start % 3
        span = slice(start, start + 8)
        attack[span] = True
        if kind == 0:
            temp[span] = rng.uniform(40, 60, 8)          # implausible values
        elif kind == 1:
            temp[span] = temp[start - 8:start]           # replayed sequence
            t[span] = t[start]                           # … sent in one burst
        else:
            temp[span] += rng.choice([-4, 4], 8)         # rate-of-change violation
    order = np.argsort(t, kind="stable")
    table = Table({"device": np.full(n, "thermostat", dtype=object), "time": t[order],
                   "current_temperature": temp[order], "thermostat_status": status[order]})
    return table, np.where(attack[order], "attack", "normal").astype(object)


def test_synthetic_injections_are_caught_better_than_isolation_forest() -> None:
    table, labels = synthetic(1)
    model = TelemetryModel(max_iter=60)
    model.learn_many(table, labels)
    test, truth = synthetic(2)
    scores = model.score_many(test)
    y = truth == "attack"
    f1 = f1_score(y, scores >= 0.5)
    X = np.column_stack([table.columns["current_temperature"], table.columns["thermostat_status"]])
    iso = IsolationForest(random_state=0).fit(X)
    Xt = np.column_stack([test.columns["current_temperature"], test.columns["thermostat_status"]])
    assert f1 >= 0.8 and f1 > f1_score(y, iso.predict(Xt) == -1)
    assert roc_auc_score(y, scores) > roc_auc_score(y, -iso.score_samples(Xt))
    # streaming scoring gives the same scores as the batch path
    model.reset()
    one = [model.score_one(test.row(i)) for i in range(200)]
    assert np.allclose(one, scores[:200])


def test_learn_one_extends_a_device_and_refits() -> None:
    table, labels = synthetic(1, 600)
    model = TelemetryModel(max_iter=30)
    model.learn_many(table.take(range(400)), labels[:400])
    rows = len(model._train["thermostat"][1])
    for i in range(400, 600):
        model.learn_one(table.row(i), labels[i])
    assert len(model._train["thermostat"][1]) == rows + 200 and "thermostat" in model._stale
    test, truth = synthetic(2, 600)
    scores = model.score_many(test)
    assert not model._stale and f1_score(truth == "attack", scores >= 0.5) > 0.7
    with pytest.raises(InputError, match="no label"):
        model.learn_one(table.row(0))


def test_bad_telemetry_input() -> None:
    table, labels = synthetic(1, 300)
    model = TelemetryModel(max_iter=10)
    with pytest.raises(InputError, match="needs both normal and attack"):
        model.learn_many(table, np.full(len(labels), "normal", dtype=object))
    model.learn_many(table, labels)
    with pytest.raises(InputError, match="no model for device 'fridge'"):
        model.score_one({"device": "fridge", "time": 0.0, "fridge_temperature": 3.0, "temp_condition": 1.0})
    with pytest.raises(InputError, match="1 missing reading: thermostat_status"):
        model.score_one({"device": "thermostat", "time": 0.0, "current_temperature": 3.0})
    with pytest.raises(InputError, match="NaN or infinite"):
        model.score_one({"device": "thermostat", "time": 0.0, "current_temperature": float("nan"),
                         "thermostat_status": 1.0})


def test_real_ton_iot_fridge_beats_baselines() -> None:
    data = read_labelled([shared("iot", "ton-iot", "Train_Test_IoT_Fridge.csv")])
    assert not {"date", "time", "label", "type"} & (set(data.table.names) - {"time"})
    train, test = stratified(data.labels, 0.3, 0)
    model = TelemetryModel.from_data(data, train, max_iter=60)
    assert "time" not in model.card.features and "fridge_temperature" in model.card.features
    y = data.labels[test] == "attack"
    scores = model.score_many(data.table)[test]
    majority = f1_score(y, np.full(len(y), (data.labels[train] == "attack").mean() > 0.5))
    X = np.column_stack([data.table.columns[c] for c in ("fridge_temperature", "temp_condition")])
    iso = IsolationForest(random_state=0).fit(X[train])
    assert f1_score(y, scores >= 0.5) > max(majority, f1_score(y, iso.predict(X[test]) == -1))
    assert roc_auc_score(y, scores) > 0.85


def test_splits_keep_each_device_apart() -> None:
    from healthswarm.detect.learn.training import split

    folder = shared("iot", "ton-iot")
    data = read_labelled([folder / "Train_Test_IoT_Fridge.csv", folder / "Train_Test_IoT_Thermostat.csv"])
    devices = data.table.columns["device"]
    for method in ("stratified", "time"):
        train, test = split(data, method, 0.3, 0)
        for device in ("fridge", "thermostat"):
            for label in ("normal", "attack"):
                tr = train[(devices[train] == device) & (data.labels[train] == label)]
                te = test[(devices[test] == device) & (data.labels[test] == label)]
                assert abs(len(te) / (len(tr) + len(te)) - 0.3) < 0.02
                if method == "time":
                    assert data.times[tr].max() < data.times[te].min()


def test_bayes_limit_counts_identical_readings_with_both_labels() -> None:
    from healthswarm.detect.learn.evaluation import bayes_limit

    rows = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 1.0], [2.0, 1.0], [3.0, 0.0]])
    attack = np.array([True, True, False, False, False, True])
    limit = bayes_limit(rows, attack)
    # (1, 0) is seen twice as attack and once as normal: whatever a model says, one of those three is wrong
    assert limit["ambiguous_share"] == 0.5 and limit["error_floor"] == round(1 / 6, 4)
    assert limit["best_worse_recall"] == round(2 / 3, 4) and limit["distinct_vectors"] == 3
    assert bayes_limit(rows[3:], attack[3:])["best_worse_recall"] == 1.0  # nothing ambiguous
