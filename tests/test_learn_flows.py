"""Flow classifier on real CIC-IDS2017 and NSL-KDD rows (small samples), identifiers, splits and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from healthswarm.detect.learn.datasets import cicflowmeter as cic
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.metrics import classification_report
from healthswarm.detect.learn.splits import by_time, stratified
from healthswarm.detect.learn.training import train
from healthswarm.errors import InputError

CLASSES = ("BENIGN_2500", "DDoS_2500", "Portscan_2500", "SSH-Patator_2500", "Botnet_736")
IDENTIFIERS = {"id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Timestamp", "Label",
               "Attempted Category"}


def cic_files() -> list[Path]:
    folder = shared("flows", "cicids2017")
    return [folder / f"{name}.csv" for name in CLASSES]


def small_cic(tmp_path: Path, edit: Callable[[list[str]], list[str]] | None = None, rows: int = 40) -> Path:
    lines = cic_files()[0].read_text().splitlines()[: rows + 1]
    if edit is not None:
        lines = edit(lines)
    out = tmp_path / "flows.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_identifiers_and_labels_are_never_features() -> None:
    assert not IDENTIFIERS & set(cic.FEATURES)
    data = read_labelled(cic_files()[:2])
    assert not IDENTIFIERS & set(data.table.names)
    model = FlowClassifier(n_estimators=5)
    model.learn_many(data.table, data.labels)
    assert not IDENTIFIERS & set(model.features) and not IDENTIFIERS & set(model.card.features)
    assert len(model.features) == len(cic.COLUMNS) - len(IDENTIFIERS)
    assert model.spec is not None and model.spec.encode(data.table).shape[1] == len(model.features)


def test_stratified_and_time_splits_meet_quality_on_a_sample() -> None:
    data = read_labelled(cic_files())
    for train_idx, test_idx in (stratified(data.labels, 0.3, 1), by_time(data.labels, data.times, 0.3)):
        assert not set(train_idx) & set(test_idx) and len(train_idx) + len(test_idx) == len(data)
        model = FlowClassifier(n_estimators=30)
        model.learn_many(data.table.take(train_idx), data.labels[train_idx])
        predicted, scores = model.predict_and_score(data.table.take(test_idx))
        report = classification_report(data.labels[test_idx], predicted, "BENIGN", scores)
        assert report["binary"]["f1"] >= 0.97, report["binary"]
        assert report["macro_f1"] >= 0.90, report["macro_f1"]
        assert report["binary"]["roc_auc"] >= 0.99


def test_time_split_keeps_each_class_time_ranges_apart() -> None:
    data = read_labelled(cic_files())
    train_idx, test_idx = by_time(data.labels, data.times, 0.3)
    for label in set(data.labels):
        tr = data.times[train_idx][data.labels[train_idx] == label]
        te = data.times[test_idx][data.labels[test_idx] == label]
        assert len(te) and tr.max() < te.min()


def test_learn_one_refits_before_the_next_score() -> None:
    data = read_labelled(cic_files()[:2])
    model = FlowClassifier(n_estimators=5)
    model.learn_many(data.table.take(np.arange(0, len(data), 2)), data.labels[::2])
    before = len(model._y)
    model.learn_one(data.table.row(1), data.labels[1])
    assert model._stale
    assert 0.0 <= model.score_one(data.table.row(3)) <= 1.0
    assert not model._stale and len(model._y) == before + 1
    assert model.predict_one(data.table.row(3)) in model.classes
    # one at a time and in batches give the same numbers
    sample = data.table.take(np.arange(0, len(data), 97))
    predicted, scores = model.predict_and_score(sample)
    assert np.allclose([model.score_one(r) for r in sample.rows()], scores)
    assert [model.predict_one(r) for r in sample.rows()] == list(predicted)


def test_learn_one_after_load_keeps_what_was_learned(tmp_path: Path) -> None:
    from healthswarm.detect.learn.workspace import load_model, save_model

    data = read_labelled(cic_files()[:3])
    train_idx, test_idx = stratified(data.labels, 0.3, 0)
    model = FlowClassifier(n_estimators=20)
    model.learn_many(data.table.take(train_idx), data.labels[train_idx])
    save_model(model, tmp_path, "m")
    loaded = load_model(tmp_path, "m")
    assert isinstance(loaded, FlowClassifier) and len(loaded._y) == len(train_idx)
    loaded.learn_one(data.table.row(int(test_idx[0])), data.labels[test_idx[0]])
    predicted, _ = loaded.predict_and_score(data.table.take(test_idx[1:]))
    assert (predicted == data.labels[test_idx[1:]]).mean() > 0.97


def test_missing_and_extra_columns_name_the_file(tmp_path: Path) -> None:
    def drop(lines: list[str]) -> list[str]:
        return [",".join(c for i, c in enumerate(line.split(",")) if i != 8) for line in lines]

    with pytest.raises(InputError) as err:
        read_labelled([small_cic(tmp_path, drop)])
    assert f"{tmp_path / 'flows.csv'}:1: 1 missing column: 'Flow Duration'" in str(err.value)
    with pytest.raises(InputError, match="1 unexpected column: 'Extra'"):
        read_labelled([small_cic(tmp_path, lambda ls: [ls[0] + ",Extra"] + [x + ",1" for x in ls[1:]])])


def test_nan_inf_handling(tmp_path: Path) -> None:
    header = cic_files()[0].read_text().splitlines()[0].split(",")
    rate, other = header.index("Flow Bytes/s"), header.index("Flow IAT Mean")

    def put(col: int, value: str) -> Callable[[list[str]], list[str]]:
        def edit(lines: list[str]) -> list[str]:
            cells = lines[3].split(",")
            cells[col] = value
            return [*lines[:3], ",".join(cells), *lines[4:]]
        return edit

    data = read_labelled([small_cic(tmp_path, put(rate, "Infinity"))])
    assert data.table.columns["Flow Bytes/s"][2] == -1.0 and data.repaired == {"Flow Bytes/s": 1}
    with pytest.raises(InputError) as err:
        read_labelled([small_cic(tmp_path, put(other, "NaN"))])
    where = f"{tmp_path / 'flows.csv'}:4: Flow IAT Mean:"
    assert str(err.value) == f"{where} 'NaN' is not finite (expected a finite number)"
    with pytest.raises(InputError, match=r"flows\.csv:4: Flow IAT Mean: 'x' is not a number"):
        read_labelled([small_cic(tmp_path, put(other, "x"))])
    with pytest.raises(InputError, match="no data rows"):
        read_labelled([small_cic(tmp_path, lambda ls: ls[:1])])


def test_unseen_category_is_an_error_or_counted_as_other() -> None:
    data = read_labelled(cic_files()[:2])
    tcp = np.flatnonzero(data.table.columns["Protocol"] == "6")
    model = FlowClassifier(n_estimators=5)
    model.learn_many(data.table.take(tcp), data.labels[tcp])
    udp = data.table.take(np.flatnonzero(data.table.columns["Protocol"] == "17")[:3])
    with pytest.raises(InputError, match="Protocol: unseen category '17' \\(expected one seen in training: 6\\)"):
        model.predict_and_score(udp)
    predicted, _ = model.predict_and_score(udp, "other")
    assert len(predicted) == 3 and model.spec is not None and model.spec.unseen_counts == {"Protocol": 3}


def test_empty_or_single_class_training_is_refused(tmp_path: Path) -> None:
    data = read_labelled(cic_files()[:1])
    with pytest.raises(InputError, match="only one class"):
        FlowClassifier().learn_many(data.table, data.labels)
    with pytest.raises(InputError, match="no labelled rows"):
        FlowClassifier().learn_many(data.table.take([]), data.labels[:0])


def test_nsl_kdd_layout_and_categories() -> None:
    trained = train("flow-classifier", [shared("flows", "nsl-kdd", "KDDTrain+_20Percent.txt")],
                    params={"n_estimators": 20})
    assert trained.model.card.layout == "nsl-kdd"
    assert set(trained.model.card.classes) == {"normal", "dos", "probe", "r2l", "u2r"}
    assert "difficulty" not in trained.model.card.features and "attack" not in trained.model.card.features
    assert trained.report["binary"]["f1"] >= 0.98


runner = CliRunner()


def test_cli_train_evaluate_list(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    files = [x for f in cic_files()[:3] for x in ("--data", str(f))]
    result = runner.invoke(app, ["-w", ws, "model", "train", "flow-classifier", *files, "--name", "cic",
                                 "--split", "time", "--format", "json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)[0]["card"]
    assert card["split"]["method"] == "time" and len(card["data"]) == 3 and card["metrics"]["held_out"]["rows"]
    result = runner.invoke(app, ["-w", ws, "model", "evaluate", "cic", *files, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)[0]
    assert report["rows"] == card["split"]["test_rows"] and report["rows_skipped_as_training_data"] > 0
    assert {"per_class", "macro_f1", "confusion", "binary"} <= set(report)
    assert report["per_class"]["DDoS"]["recall"] >= 0.9
    result = runner.invoke(app, ["-w", ws, "model", "evaluate", "cic", *files])
    assert result.exit_code == 0 and "confusion matrix" in result.output and "macro-F1" in result.output
    listed = json.loads(runner.invoke(app, ["-w", ws, "model", "list", "--format", "json"]).output)
    assert [(m["name"], m["kind"], m["status"]) for m in listed] == [("cic", "flow-classifier", "ok")]
    # the card shows the plots that training and evaluating wrote into the model folder
    shown = json.loads(runner.invoke(app, ["-w", ws, "model", "card", "cic", "--format", "json"]).output)[0]
    folder = tmp_path / "ws" / "models" / "cic"
    assert shown["plots"] == {"confusion matrix": str(folder / "confusion.svg"), "ROC curve": str(folder / "roc.svg")}
    confusion = ET.parse(folder / "confusion.svg").getroot()
    assert confusion.tag.endswith("svg") and "DDoS" in (folder / "confusion.svg").read_text()  # labels as text
    assert "AUC" in (folder / "roc.svg").read_text()
    curve = shown["metrics"]["held_out"]["binary"]["roc_curve"]
    assert curve["fpr"][0] == 0 and curve["tpr"][-1] == 1 and len(curve["fpr"]) <= 200
    text = runner.invoke(app, ["-w", ws, "model", "card", "cic"])
    assert text.exit_code == 0 and f"ROC curve: {folder / 'roc.svg'}" in text.output.replace("\n", "")


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = small_cic(tmp_path, lambda ls: [ls[0].replace(",Protocol,", ",Proto,"), *ls[1:]])
    result = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(tmp_path / "ws"), "model", "train",
                             "flow-classifier", "--data", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "1 missing column: 'Protocol'" in result.stderr and "1 unexpected column: 'Proto'" in result.stderr
    fridge = shared("iot", "ton-iot", "Train_Test_IoT_Fridge.csv")
    with pytest.raises(InputError, match=f"{fridge}:1: is ton-iot data \\(expected cicflowmeter or nsl-kdd data"):
        train("flow-classifier", [fridge])
    with pytest.raises(InputError, match="is cicflowmeter data \\(expected ton-iot data for a telemetry model"):
        train("telemetry", cic_files()[:1])
    result = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(tmp_path / "ws"), "model", "evaluate",
                             "nothing", "--data", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no model named 'nothing'" in result.stderr and "Traceback" not in result.stderr


def test_one_record_checks_match_the_batch_checks() -> None:
    data = read_labelled(cic_files()[:2])
    model = FlowClassifier(n_estimators=5)
    model.learn_many(data.table, data.labels)
    row = data.table.row(0)
    with pytest.raises(InputError, match="Flow IAT Mean: inf is not finite"):
        model.score_one({**row, "Flow IAT Mean": float("inf")})
    with pytest.raises(InputError, match="Flow IAT Mean: 'abc' is not a number"):
        model.score_one({**row, "Flow IAT Mean": "abc"})
    with pytest.raises(InputError, match="1 missing feature: Flow Duration"):
        model.score_one({k: v for k, v in row.items() if k != "Flow Duration"})
    with pytest.raises(InputError, match="Protocol: unseen category '99'"):
        model.score_one({**row, "Protocol": "99"})
