"""Trained models in the pipeline: CSV → `healthswarm ingest` → `healthswarm detect --model NAME` → alerts.

A small flow classifier (a few thousand CIC-IDS2017 rows, 30 trees) and one TON_IoT device model are
trained and saved in a temporary workspace; held-out rows are ingested through the real CLI and the
stored alerts are joined back to the rows' labels by line number (the detectors never see a label).
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from healthswarm.demo import LOGS
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.datasets.toniot import reading
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.flow_detector import FlowDetector, techniques_of
from healthswarm.detect.learn.sequence import SequenceState
from healthswarm.detect.learn.splits import by_time
from healthswarm.detect.learn.table import Table
from healthswarm.detect.learn.telemetry import TelemetryModel
from healthswarm.detect.learn.telemetry_detector import TelemetryDetector
from healthswarm.detect.learn.workspace import save_model
from healthswarm.ingest.formats import get_format
from healthswarm.model import Event
from healthswarm.store import Store
from healthswarm.store.alerts import load_alerts

runner = CliRunner()
CIC = {"BENIGN_2500.csv": 300, "DDoS_2500.csv": 80, "Portscan_2500.csv": 80, "SSH-Patator_2500.csv": 80,
       "DoS_Hulk_2500.csv": 80, "FTP-Patator_2500.csv": 80, "Botnet_736.csv": 80}  # file -> held-out rows
TRAIN_ROWS = 450  # per class
SURICATA = LOGS / "suricata-eve.json"


def cli(ws: Path, *args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, ["-w", str(ws), *map(str, args)])
    assert result.exit_code == code, result.output
    return result.output


def detect(ws: Path, *args: str) -> dict:
    out = cli(ws, "detect", "--no-baseline", "--no-clinical", "--format", "json", *args)
    return json.loads(out[out.index("["):])[0]


def model_alerts(ws: Path, model: str) -> list[dict]:
    store = Store.open(f"sqlite:///{(ws / 'healthswarm.db').resolve()}")
    with store.read() as conn:
        return [a.as_dict() for a in load_alerts(conn) if a.alert.detector == model]


def label_of(line: str, header: list[str], column: str) -> str:
    return line.split(",")[header.index(column)].strip()


# --- flows ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace with a flow classifier `cic` and the held-out flows (plus a Suricata log) ingested."""
    root = tmp_path_factory.mktemp("flows")
    rng = random.Random(5)
    header, train, held = "", [], []
    for name, n_held in CIC.items():
        lines = shared("flows", "cicids2017", name).read_text().splitlines()
        header, rows = lines[0], lines[1:]
        rng.shuffle(rows)
        held += rows[:n_held]
        train += rows[n_held:n_held + TRAIN_ROWS]
    (root / "train.csv").write_text("\n".join([header, *train]) + "\n")
    (root / "held.csv").write_text("\n".join([header, *held]) + "\n")
    data = read_labelled([root / "train.csv"])
    model = FlowClassifier(n_estimators=30)
    model.learn_many(data.table, data.labels)
    ws = root / "ws"
    save_model(model, ws, "cic")
    cli(ws, "ingest", "--format", "cicflowmeter", root / "held.csv")
    cli(ws, "ingest", SURICATA)
    report = detect(ws, "--model", "cic", "--model-budget", "100000")
    truth = {i + 2: label_of(line, header.split(","), "Label") for i, line in enumerate(held)}
    return {"ws": ws, "root": root, "header": header, "held": held, "truth": truth, "report": report,
            "model": model}


def test_flow_alerts_name_the_right_class_with_measured_precision_and_recall(flows: dict) -> None:
    truth: dict[int, str] = flows["truth"]
    alerts = model_alerts(flows["ws"], "cic")
    alerted = {a["events"][0]["record"]: a for a in alerts}
    assert len(alerted) == len(alerts)  # one alert per flow at most
    attacks = {line for line, label in truth.items() if label != "BENIGN"}
    benign = set(truth) - attacks
    hits = attacks & set(alerted)
    recall, precision = len(hits) / len(attacks), len(hits) / len(alerted)
    right_class = sum(alerted[line]["rule_id"] == f"flow-classifier/{truth[line]}" for line in hits) / len(hits)
    false_alarms = len(benign & set(alerted)) / len(benign)
    # measured (seed 5, 30 trees): recall 1.0, precision 0.998, right class 1.0, 1 of 300 benign flows alerted
    assert recall >= 0.97 and precision >= 0.97 and right_class >= 0.97 and false_alarms <= 0.02, (
        recall, precision, right_class, false_alarms)
    ddos = next(a for a in alerts if a["rule_id"] == "flow-classifier/DDoS")
    assert [t["id"] for t in ddos["techniques"]] == ["T1498"] and ddos["level"] in ("high", "medium")
    assert ddos["title"].startswith("DDoS flow from ") and " to " in ddos["title"]
    assert "attack probability" in ddos["description"] and ddos["details"]["class"] == "DDoS"
    assert ddos["events"][0]["source"].endswith("held.csv")


def test_events_without_the_models_features_are_counted_not_scored(flows: dict) -> None:
    stats = flows["report"]["models"]["cic"]
    assert stats["scored"] == len(flows["held"])
    suricata = {why: n for why, n in stats["skipped"].items() if why.startswith("suricata: ")}
    assert list(suricata) == ["suricata: not a cicflowmeter flow (none of the model's 82 features)"]
    assert sum(stats["skipped"].values()) == flows["report"]["events"] - len(flows["held"])
    assert flows["report"]["by_detector"]["cic"] == stats["alerts"]


def test_the_alert_budget_caps_alerts_per_source_and_class(flows: dict) -> None:
    unlimited = flows["report"]["models"]["cic"]["alerts"]
    stats = detect(flows["ws"], "--model", "cic", "--model-budget", "3")["models"]["cic"]
    # the unlimited run's alerts (stored) say how many each source, class and UTC day would get
    groups = Counter((a["details"]["source"], a["details"]["class"], a["timestamp"][:10])
                     for a in model_alerts(flows["ws"], "cic"))
    assert stats["alerts"] == sum(min(3, n) for n in groups.values()) < unlimited
    assert stats["alerts"] + stats["suppressed"] == unlimited


def test_leading_space_headers_nan_rates_and_other_releases(flows: dict) -> None:
    header: str = flows["header"]
    rows = flows["held"][:50]
    detector = FlowDetector(flows["model"])

    def classes(text: str) -> list[str | None]:
        out = []
        for item in get_format("cicflowmeter").parse(io.BytesIO(text.encode()), "x.csv"):
            assert isinstance(item, Event), item
            alert = detector.observe(item)
            out.append(alert.details["class"] if alert else None)
        return out

    plain = classes("\n".join([header, *rows]) + "\n")
    spaced = classes("\n".join([", ".join(header.split(",")), *rows]) + "\n")
    assert plain == spaced and detector.stats.scored == 100
    names = header.split(",")
    cells = rows[0].split(",")
    rate, other = names.index("Flow Bytes/s"), names.index("Flow IAT Mean")
    nan_rate = [*cells[:rate], "Infinity", *cells[rate + 1:]]
    nan_other = [*cells[:other], "NaN", *cells[other + 1:]]
    classes("\n".join([header, ",".join(nan_rate), ",".join(nan_other)]) + "\n")
    assert detector.stats.scored == 101  # the undefined rate is -1, as in training; NaN elsewhere is not guessed
    assert detector.stats.skipped["cicflowmeter: Flow IAT Mean is NaN or infinite"] == 1
    old = [n for n in names if n not in ("ICMP Code", "ICMP Type", "Total TCP Flow Time", "Fwd RST Flags")]
    keep = [names.index(n) for n in old]
    classes("\n".join([",".join(old), ",".join(cells[i] for i in keep)]) + "\n")
    assert detector.stats.skipped["cicflowmeter: 4 of the model's 82 features missing (Fwd RST Flags, ICMP Code, "
                                  "ICMP Type, …)"] == 1


def test_bad_rows_are_rejected_with_line_and_column(flows: dict, tmp_path: Path) -> None:
    header: str = flows["header"]
    names = header.split(",")
    good = flows["held"][0].split(",")
    iat = names.index("Flow IAT Mean")
    bad_number = [*good[:iat], "fast", *good[iat + 1:]]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([header, ",".join(good), ",".join(bad_number), ",".join(good[:10]),
                              ",".join(good)]) + "\n")
    ws = tmp_path / "ws"
    cli(ws, "ingest", "--format", "cicflowmeter", bad)
    out = json.loads(cli(ws, "quarantine", "list", "--format", "json"))
    assert sorted(r["reason"] for r in out) == ["line 3: column 'Flow IAT Mean': 'fast' is not a number",
                                                "line 4: 10 columns, expected 91"]


def test_techniques_per_cic_class() -> None:
    assert techniques_of("DDoS") == ("T1498",) and techniques_of("DoS Slowloris") == ("T1499",)
    assert techniques_of("Portscan") == ("T1046",) and techniques_of("Infiltration - Portscan") == ("T1046",)
    assert techniques_of("FTP-Patator") == techniques_of("SSH-Patator") == ("T1110",)
    assert techniques_of("Web Attack - SQL Injection") == ("T1190",) and techniques_of("Heartbleed") == ("T1190",)
    assert techniques_of("Web Attack - Brute Force") == ("T1110", "T1190")
    assert techniques_of("Botnet") == techniques_of("Infiltration") == ("T1071",)
    assert techniques_of("BENIGN") == ()


def test_missing_or_foreign_model_is_one_line_and_exit_2(flows: dict, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli(ws, "ingest", SURICATA)
    missing = runner.invoke(app, ["-w", str(ws), "detect", "--model", "nope"])
    assert missing.exit_code == 2 and "no model named 'nope'" in missing.output
    assert len(missing.output.strip().splitlines()) == 1 and "Traceback" not in missing.output
    save_model(flows["model"], ws, "old")
    card = ws / "models" / "old" / "card.json"
    card.write_text(card.read_text().replace('"format": 1', '"format": 99'))
    old = runner.invoke(app, ["-w", str(ws), "detect", "--model", "old"])
    assert old.exit_code == 2 and str(card) in old.output and "model card format 99" in old.output
    assert len(old.output.strip().splitlines()) == 1


# --- telemetry --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fridge(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fridge model trained on the earlier part of each class's time range; the latest 30 % ingested,
    with a Suricata log and a few weather-station readings the model has no model for."""
    root = tmp_path_factory.mktemp("fridge")
    path = shared("iot", "ton-iot", "Train_Test_IoT_Fridge.csv")
    data = read_labelled([path])
    train, held = by_time(data.labels, data.times)
    model = TelemetryModel.from_data(data, train, max_iter=60)
    ws = root / "ws"
    save_model(model, ws, "fridge")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    held_lines = sorted(int(data.table.origin[i].rpartition(":")[2]) for i in held)
    held_csv = root / "Train_Test_IoT_Fridge_heldout.csv"
    held_csv.write_text("\n".join([lines[0], *(lines[n - 1] for n in held_lines)]) + "\n")
    weather = root / "Train_Test_IoT_Weather.csv"
    weather.write_text("\n".join(shared("iot", "ton-iot", weather.name).read_text().splitlines()[:21]) + "\n")
    cli(ws, "ingest", "--format", "ton-iot", held_csv)
    cli(ws, "ingest", weather, SURICATA)
    report = detect(ws, "--model", "fridge", "--model-budget", "100000")
    header = lines[0].split(",")
    truth = {i + 2: label_of(lines[n - 1], header, "label") for i, n in enumerate(held_lines)}
    batch = model.predict_many(data.table.take(held)) == "attack"
    return {"ws": ws, "truth": truth, "report": report, "batch": batch, "labels": data.labels[held], "model": model,
            "held_csv": held_csv}


@pytest.mark.slow
def test_telemetry_alerts_on_attack_readings_with_measured_precision_and_recall(fridge: dict) -> None:
    truth: dict[int, str] = fridge["truth"]
    alerted = {a["events"][0]["record"] for a in model_alerts(fridge["ws"], "fridge")}
    attacks = {line for line, label in truth.items() if label == "1"}
    recall, precision = len(attacks & alerted) / len(attacks), len(attacks & alerted) / len(alerted)
    # the same held-out rows scored in a batch, in file order within each second
    batch = fridge["batch"]
    truly = fridge["labels"] == "attack"
    batch_recall = (batch & truly).sum() / truly.sum()
    batch_precision = (batch & truly).sum() / batch.sum()
    # measured: pipeline recall 0.999 / precision 0.936; batch 0.999 / 0.934 (readings within a second
    # reach the detector ordered by event key, not by file line, so rate-of-change features differ a little)
    assert recall >= 0.95 and precision >= 0.9, (recall, precision, batch_recall, batch_precision)
    assert abs(recall - batch_recall) <= 0.02 and abs(precision - batch_precision) <= 0.02
    stats = fridge["report"]["models"]["fridge"]
    assert stats["scored"] == len(truth)
    assert stats["skipped"]["ton-iot: no model for device type 'weather'"] == 20
    suricata = fridge["report"]["events"] - len(truth) - 20
    assert stats["skipped"] == {"ton-iot: no model for device type 'weather'": 20,
                                "suricata: not a device reading (no device.type)": suricata}


@pytest.mark.slow
def test_streamed_scores_equal_batch_scores(fridge: dict) -> None:
    # in file order (no store in between), one reading at a time through the detector = the batch scores
    model: TelemetryModel = fridge["model"]
    events = [e for e in get_format("ton-iot").parse(fridge["held_csv"].open("rb"), "x.csv") if isinstance(e, Event)]
    events = events[:400]
    detector, state = TelemetryDetector(model), SequenceState()
    streamed = []
    for event in events:
        found = detector.values_of(event)
        assert not isinstance(found, str), found
        streamed.append(model.score_stream("fridge", found[1], event.timestamp.timestamp(), state)[0])
    rows = [{"device": "fridge", "time": e.timestamp.timestamp(), "fridge_temperature": float(e.original[
        "fridge_temperature"]), "temp_condition": reading(e.original["temp_condition"])} for e in events]
    batch = model.score_many(Table.from_records(rows))
    assert np.allclose(streamed, batch, atol=1e-12)


@pytest.mark.slow
def test_telemetry_alert_contract(fridge: dict) -> None:
    alert = model_alerts(fridge["ws"], "fridge")[0]
    assert alert["rule_id"] == "telemetry/attack" and alert["level"] in ("medium", "high")
    assert alert["title"] == "fridge Train_Test_IoT_Fridge_heldout: readings look like an attack"
    assert "fridge_temperature=" in alert["description"] and alert["details"]["score"] >= 0.5
