"""Detectors of the unknown: leave-one-class-out evaluation, the novelty and hybrid models, thresholds from a
false-alarm budget, unusual features in alerts, NSL-KDD figures beside the recorded paper table, drift."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.drift import PageHinkley
from healthswarm.detect.learn.evaluation import TAVALLAEE_2009, leave_out, matches
from healthswarm.detect.learn.novelty import NOVEL, Calibration, HybridModel, NoveltyModel
from healthswarm.detect.learn.novelty_detector import AssetBudget
from healthswarm.detect.learn.registry import kinds, model_class
from healthswarm.detect.learn.workspace import load_model, save_model
from healthswarm.errors import InputError
from healthswarm.store import Store
from healthswarm.store.alerts import load_alerts

runner = CliRunner()
FILES = {"BENIGN_2500.csv": 900, "DDoS_2500.csv": 300, "Portscan_2500.csv": 300, "DoS_Hulk_2500.csv": 300,
         "SSH-Patator_2500.csv": 300}


def cli(ws: Path, *args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, ["-w", str(ws), *map(str, args)])
    assert result.exit_code == code, result.output
    return result.output


def label(row: str) -> str:
    return row.split(",")[-2].strip()  # CIC-IDS2017 (corrected): Label, then Attempted Category


@pytest.fixture(scope="module")
def cic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample of five CIC-IDS2017 classes in one file (benign-heavy, as traffic is)."""
    root = tmp_path_factory.mktemp("cic")
    rng = random.Random(3)
    header, rows = "", []
    for name, n in FILES.items():
        lines = shared("flows", "cicids2017", name).read_text().splitlines()
        header, body = lines[0], lines[1:]
        rng.shuffle(body)
        rows += body[:n]
    (root / "sample.csv").write_text("\n".join([header, *rows]) + "\n")
    return root / "sample.csv"


def test_kinds_register_like_the_others() -> None:
    assert {"novelty", "hybrid"} <= set(kinds())
    assert model_class("novelty") is NoveltyModel and model_class("hybrid") is HybridModel


def test_calibration_turns_a_share_of_benign_into_a_threshold() -> None:
    cal = Calibration.of(np.arange(1000, dtype=float))
    assert cal.threshold(0.01) == 990.0  # 10 of 1,000 benign scores reach it
    assert cal.threshold(1e-6) == 999.0  # finer than one row: the highest benign score
    assert list(cal.rank(np.array([-1.0, 500.0, 5000.0]))) == [0.0, 0.5, 1.0]


def test_asset_budget_gives_busy_assets_stricter_thresholds() -> None:
    budget = AssetBudget(per_day=5, ceiling=0.01)
    day1, day2 = date(2026, 3, 1), date(2026, 3, 2)
    for _ in range(9999):
        budget.share("server", day1)
    assert budget.share("server", day1) == pytest.approx(5 / 10_000)
    assert budget.share("pump", day1) == 0.01  # a quiet asset never looser than the model's own budget
    assert budget.share("server", day2) == pytest.approx(5 / 10_000)  # yesterday's volume sets today's share


def test_page_hinkley_is_quiet_on_a_stable_stream_and_sees_a_lasting_rise() -> None:
    rng = np.random.default_rng(0)
    ph = PageHinkley()
    assert not any(ph.update(float(x)) for x in rng.uniform(0, 1, 5000))
    risen = [i for i, x in enumerate(rng.uniform(0.6, 1, 2000)) if ph.update(float(x))]
    assert risen and risen[0] < 200
    assert ph.as_dict()["detections"] >= 1


def test_leave_out_matches_families_and_refuses_unknown_classes(cic: Path) -> None:
    data = read_labelled([cic])
    assert set(data.labels[matches(data, "DoS")]) == {"DoS Hulk"}
    assert set(data.labels[matches(data, "portscan")]) == {"Portscan"}
    with pytest.raises(InputError, match="no rows of class 'Heartbleed'"):
        leave_out("hybrid", [cic], "Heartbleed", {"n_estimators": 10}, data=data)


def test_hybrid_flags_a_left_out_flood_within_its_benign_budget(cic: Path) -> None:
    r = leave_out("hybrid", [cic], "DDoS", {"n_estimators": 20}, data=read_labelled([cic]))
    assert r["classes"] == ["DDoS"] and r["target_rows"] == 300
    assert r["flagged"] >= 0.8  # the forest, never shown DDoS, still calls it a DoS-like attack
    assert r["false_alarm_rate"] <= 0.03  # 270 held-out benign flows: budget 1 %, sampling noise allowed
    # the benign-only model can only say "novel", and keeps its budget on benign flows
    alone = leave_out("novelty", [cic], "PortScan", {}, data=read_labelled([cic]))
    assert set(alone["flagged_as"] or {}) <= {NOVEL} and alone["false_alarm_rate"] <= 0.03


def test_novelty_model_learns_benign_only_and_round_trips(cic: Path, tmp_path: Path) -> None:
    data = read_labelled([cic])
    model = NoveltyModel(method="isolation-forest")
    model.learn_many(data.table, data.labels)
    assert model.card.metrics["calibration"]["benign_fit_rows"] + \
        model.card.metrics["calibration"]["benign_calibration_rows"] == 900
    labels, scores = model.predict_and_score(data.table)
    benign = data.labels == "BENIGN"
    assert (labels[benign] == NOVEL).mean() < 0.05 and scores.min() >= 0 and scores.max() <= 1
    save_model(model, tmp_path, "nov")
    again = load_model(tmp_path, "nov")
    assert np.allclose(again.score_many(data.table.take(np.arange(50))), scores[:50])
    with pytest.raises(InputError, match="benign rows"):
        NoveltyModel().learn_many(data.table.take(np.flatnonzero(~benign)), data.labels[~benign])


def test_cli_leave_out_is_recorded_in_the_card(cic: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli(ws, "model", "train", "hybrid", "--name", "hyb", "--data", cic, "--param", "n_estimators=25",
        "--format", "json")
    out = cli(ws, "model", "evaluate", "hyb", "--data", cic, "--leave-out", "DoS", "--format", "json")
    result = json.loads(out[out.index("["):])[0]
    assert result["left_out"] == "DoS" and result["classes"] == ["DoS Hulk"]
    card = json.loads((ws / "models" / "hyb" / "card.json").read_text())
    assert card["metrics"]["leave_out"]["DoS"]["flagged"] == result["flagged"]
    assert card["params"]["n_estimators"] == 25 and "calibration" in card["metrics"]
    bad = runner.invoke(app, ["-w", str(ws), "model", "evaluate", "hyb", "--data", str(cic), "--leave-out", "Nope"])
    assert isinstance(bad.exception, InputError) and "no rows of class 'Nope'" in str(bad.exception)


def test_hybrid_runs_in_detect_with_unusual_features_and_attack_ids(cic: Path, tmp_path: Path) -> None:
    lines = cic.read_text().splitlines()
    header, body = lines[0], lines[1:]
    train = [r for r in body if label(r) != "DDoS"]  # DDoS is never learned
    rng = random.Random(1)
    rng.shuffle(train)
    held = train[:150] + [r for r in body if label(r) == "DDoS"][:60]
    (tmp_path / "train.csv").write_text("\n".join([header, *train[150:]]) + "\n")
    (tmp_path / "held.csv").write_text("\n".join([header, *held]) + "\n")
    data = read_labelled([tmp_path / "train.csv"])
    model = HybridModel(n_estimators=20)
    model.learn_many(data.table, data.labels)
    ws = tmp_path / "ws"
    save_model(model, ws, "hyb")
    cli(ws, "ingest", "--format", "cicflowmeter", tmp_path / "held.csv")
    out = cli(ws, "detect", "--no-baseline", "--no-clinical", "--format", "json", "--model", "hyb",
              "--model-budget", "100000")
    report = json.loads(out[out.index("["):])[0]
    assert report["models"]["hyb"]["scored"] == len(held)
    store = Store.open(f"sqlite:///{(ws / 'healthswarm.db').resolve()}")
    with store.read() as conn:
        alerts = [a.as_dict() for a in load_alerts(conn) if a.alert.detector == "hyb"]
    ddos_lines = {i + 2 for i, r in enumerate(held) if label(r) == "DDoS"}
    assert len(ddos_lines) == 60
    hits = [a for a in alerts if a["events"][0]["record"] in ddos_lines]
    assert len(hits) >= 0.8 * len(ddos_lines)
    named = [a for a in hits if a["rule_id"] != f"hybrid/{NOVEL}"]
    assert all(a["techniques"] for a in named)  # a known class carries its ATT&CK ids
    novel = [a for a in alerts if a["rule_id"] == f"hybrid/{NOVEL}"]
    for a in novel:
        assert a["details"]["unusual"] and "benign 1st–99th percentile" in a["description"]


def test_recorded_anchors_are_labelled_and_kddtest21_is_a_subset_of_kddtest_plus(tmp_path: Path) -> None:
    assert "recorded" in TAVALLAEE_2009["source"]
    assert TAVALLAEE_2009["NBTree"] == {"KDDTest+": 0.820, "KDDTest-21": 0.662}
    test_file = shared("flows", "nsl-kdd", "KDDTest+.txt")
    lines = test_file.read_text().splitlines()
    sample = tmp_path / "KDDTest+.txt"  # same name: the figures call the subset KDDTest-21
    sample.write_text("\n".join(lines[:3000]) + "\n")
    from healthswarm.detect.learn.evaluation import nsl_kdd_figures

    data = read_labelled([sample])
    figures = nsl_kdd_figures(data, data.labels)  # a perfect prediction
    hard = sum(1 for line in lines[:3000] if int(line.rsplit(",", 1)[1]) < 21)
    assert figures["KDDTest+"]["accuracy"] == 1.0 and figures["KDDTest-21"]["rows"] == hard


def test_drift_alert_when_benign_traffic_changes(cic: Path) -> None:
    from healthswarm.detect.learn.novelty_detector import NoveltyDetector
    from healthswarm.model import Event

    data = read_labelled([cic])
    model = NoveltyModel()
    model.learn_many(data.table, data.labels)
    detector = NoveltyDetector(model, budget_per_day=10**6)
    header = cic.read_text().splitlines()[0].split(",")
    rows = [line.split(",") for line in cic.read_text().splitlines()[1:]]
    benign = [r for r in rows if r[-2].strip() == "BENIGN"]
    # the same benign flows, but a thousand times longer and bigger: the traffic the model knew has changed
    grown = {"Flow Duration", "Total Length of Fwd Packet", "Fwd Packet Length Max", "Fwd Packet Length Mean"}
    changed = [[str(float(v) * 1000) if h in grown else v for h, v in zip(header, r, strict=True)]
               for r in benign[300:700]]
    when = datetime(2026, 3, 1, tzinfo=UTC)
    drift = []
    for i, r in enumerate(benign[:300] + changed):
        event = Event(when, {"destination.ip": "10.0.0.1"}, dict(zip(header, r, strict=True)), source="t", record=i,
                      key=str(i))
        detector.observe(event)
        drift += [(i, a) for a in detector.drain() if a.detector == "drift"]
    assert detector.stats.scored == 700
    assert drift and drift[0][0] >= 300  # quiet on benign flows, fires once the traffic is unlike them
    moved = {f["feature"] for f in drift[0][1].details["features"]}
    assert moved & grown and drift[0][1].rule_id == "novelty/drift"  # it names what moved


def test_source_windows_catch_a_scan_the_hybrid_never_learned(cic: Path) -> None:
    from healthswarm.detect.learn.novelty_detector import NoveltyDetector
    from healthswarm.model import Event

    data = read_labelled([cic])
    result = leave_out("hybrid", [], "PortScan", {"n_estimators": 20}, data=data)
    assert result["flagged"] >= 0.8 and result["flagged_as"]["novel"] >= 0.8 * result["target_rows"]
    assert result["false_alarm_rate"] <= 0.05  # 270 held-out benign flows: a handful at most
    profile = result["score_profile"]  # why a class is (or is not) flagged: its scores among the benign ones'
    assert profile["target"]["p10"] >= profile["benign"]["p90"]
    no_scan = np.flatnonzero(~matches(data, "PortScan"))
    model = HybridModel.from_data(data, no_scan, n_estimators=20)
    assert model.windows is not None and "windows" in model.card.metrics["calibration"]
    detector = NoveltyDetector(model, budget_per_day=10**6)
    header = cic.read_text().splitlines()[0].split(",")
    scans = [dict(zip(header, line.split(","), strict=True)) for line in cic.read_text().splitlines()[1:]
             if label(line) == "Portscan"]
    alerts = []
    for i, row in enumerate(scans):
        fields = {"source.ip": row["Src IP"], "destination.ip": row["Dst IP"], "destination.port": int(row["Dst Port"])}
        alert = detector.observe(Event(datetime(2026, 3, 1, tzinfo=UTC), fields, row, source="t", record=i, key=str(i)))
        alerts += [alert] if alert is not None else []
    windowed = [a for a in alerts if a.rule_id == "hybrid/novel-source"]
    assert len(windowed) >= 0.8 * len(scans)
    assert all([t.id for t in a.techniques] == ["T1046"] for a in windowed)  # a scan: Network Service Discovery
    assert all("port_fanout" in a.description and a.details["window"] for a in windowed)
