"""Per-asset behaviour baselines on hand-built network event streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthswarm.detect.learn.asset_baseline import AssetBaseline, BaselineConfig
from healthswarm.detect.learn.workspace import load_model, save_model
from healthswarm.model import Asset, Event

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
ASSETS = [
    Asset("pump-icu-07", "h1", "iomt", "infusion-pump", "pump-icu-07", addresses=("10.1.0.7",)),
    Asset("iomt-gw", "h1", "iomt", "iomt-gateway", "the gateway", addresses=("10.1.0.1",)),
    Asset("ws-ward-3", "h1", "clinical", "clinical-workstation", "ws-ward-3", addresses=("10.3.0.3",)),
    Asset("ehr", "h1", "dc", "ehr", "ehr", addresses=("10.4.0.1",)),
]


def flow(n: int, src: str, dst: str, port: int, proto: str = "", size: float = 900.0, hour: int | None = None,
         src_ip: str = "", dst_ip: str = "") -> Event:
    when = T0 + timedelta(minutes=30 * n)
    if hour is not None:
        when = when.replace(hour=hour)
    fields = {"source.ip": src_ip or "10.0.0.9", "destination.ip": dst_ip or "10.0.0.8", "destination.port": port,
              "network.transport": "tcp", "source.bytes": size}
    if src:
        fields["source.asset.id"] = src
    if dst:
        fields["destination.asset.id"] = dst
    if proto:
        fields["network.protocol"] = proto
    return Event(when, fields, None, source="hand-built", record=n, key=f"k{n}")


def warmed(config: BaselineConfig | None = None) -> AssetBaseline:
    model = AssetBaseline(config or BaselineConfig(warmup_events=20, warmup_hours=6), ASSETS)
    for n in range(60):
        assert model.observe(flow(n, "pump-icu-07", "iomt-gw", 2575, "hl7", size=900 + n % 7)) is None
        assert model.observe(flow(n, "ws-ward-3", "ehr", 443, size=5000 + n % 11)) is None
    return model


def test_pump_opening_smb_to_a_new_address_is_explained() -> None:
    model = warmed()
    alert = model.observe(flow(61, "pump-icu-07", "", 445, dst_ip="10.2.0.5"))
    assert alert is not None and alert.level == "high" and alert.rule_id == "asset-baseline/new-service-and-destination"
    assert alert.description == "first time pump-icu-07 opened SMB to 10.2.0.5; its baseline: HL7 to the gateway only"
    assert [t.id for t in alert.techniques] == ["T1021.002"] and alert.assets == ("pump-icu-07",)
    assert alert.events[0].record == 61 and alert.details["service"] == "smb"
    # learned: the second time is no longer new
    assert model.observe(flow(62, "pump-icu-07", "", 445, dst_ip="10.2.0.5")) is None


def test_workstation_starting_dicom_is_high() -> None:
    model = warmed()
    alert = model.observe(flow(61, "ws-ward-3", "", 104, dst_ip="10.9.9.9"))
    assert alert is not None and alert.level == "high"
    assert alert.description.startswith("workstation ws-ward-3 started speaking DICOM (to 10.9.9.9); its baseline: "
                                        "HTTPS to ehr only")


def test_known_behaviour_is_quiet_and_scores_low() -> None:
    model = warmed()
    assert model.score_one({**flow(70, "pump-icu-07", "iomt-gw", 2575, "hl7").fields,
                            "@timestamp": T0 + timedelta(hours=35)}) == 0.0
    assert model.observe(flow(70, "pump-icu-07", "iomt-gw", 2575, "hl7", size=905)) is None


def test_no_alert_during_warm_up() -> None:
    model = AssetBaseline(BaselineConfig(warmup_events=20, warmup_hours=6), ASSETS)
    for n in range(10):
        model.observe(flow(n, "pump-icu-07", "iomt-gw", 2575, "hl7"))
    assert not model.warm("pump-icu-07")
    assert model.observe(flow(11, "pump-icu-07", "", 445, dst_ip="10.2.0.5")) is None
    assert model.alerts_raised == 0


def test_alert_budget_per_asset_and_day() -> None:
    model = warmed(BaselineConfig(warmup_events=20, warmup_hours=6, budget_per_day=2))
    alerts = [model.observe(flow(61, "pump-icu-07", "", 3000 + i, dst_ip=f"10.2.0.{i}")) for i in range(5)]
    assert sum(a is not None for a in alerts) == 2 and model.suppressed["pump-icu-07"] == 3
    nextday = flow(61, "pump-icu-07", "", 4000, dst_ip="10.2.1.1")
    nextday.timestamp += timedelta(days=1)
    assert model.observe(nextday) is not None


def test_volume_and_unseen_hour() -> None:
    model = warmed(BaselineConfig(warmup_events=20, warmup_hours=6, hour_min_events=50))
    alert = model.observe(flow(61, "pump-icu-07", "iomt-gw", 2575, "hl7", size=5_000_000))
    assert alert is not None and alert.rule_id == "asset-baseline/volume"
    assert "standard deviations above its usual" in alert.description
    # an hour the pump never was active in: scored but below the default alert threshold
    model2 = AssetBaseline(BaselineConfig(warmup_events=20, warmup_hours=6, hour_min_events=20), ASSETS)
    for n in range(40):
        model2.observe(flow(n, "pump-icu-07", "iomt-gw", 2575, "hl7", hour=9 + n % 8))
    odd = flow(41, "pump-icu-07", "iomt-gw", 2575, "hl7", hour=3)
    x = {**odd.fields, "@timestamp": odd.timestamp}
    assert [d.reason for d in model2.deviations(x)] == ["hour"] and model2.score_one(x) == 0.3
    assert model2.observe(odd) is None


def test_unresolved_addresses_and_non_network_events() -> None:
    model = AssetBaseline(BaselineConfig(warmup_events=5, warmup_hours=0))
    for n in range(6):
        model.observe(flow(n, "", "", 2575, src_ip="10.7.0.1", dst_ip="10.7.0.2"))
    alert = model.observe(flow(7, "", "", 22, src_ip="10.7.0.1", dst_ip="10.7.0.3"))
    assert alert is not None and alert.level == "medium" and "first time 10.7.0.1 opened SSH to 10.7.0.3" in (
        alert.description)
    assert model.observe(Event(T0, {"event.category": "process"}, None)) is None


def test_save_and_load_keep_the_baselines(tmp_path: Path) -> None:
    save_model(warmed(), tmp_path, "baseline")
    loaded = load_model(tmp_path, "baseline")
    assert isinstance(loaded, AssetBaseline) and loaded.profiles["pump-icu-07"].events == 60
    alert = loaded.observe(flow(61, "pump-icu-07", "", 445, dst_ip="10.2.0.5"))
    assert alert is not None and alert.level == "high"


def test_cli_trains_a_baseline_from_a_real_zeek_log(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from conftest import shared
    from healthswarm.cli.main import app

    runner = CliRunner()
    ws = str(tmp_path / "ws")
    result = runner.invoke(app, ["-w", ws, "model", "train", "asset-baseline", "--data",
                                 str(shared("zeek", "conn.log")), "--name", "net", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)[0]
    assert out["card"]["kind"] == "asset-baseline" and out["card"]["data"][0]["layout"] == "zeek"
    assert out["card"]["metrics"]["events"] == out["card"]["data"][0]["rows"] > 0
    top = out["assets"][0]
    assert top["asset"] == "192.168.33.10" and top["events"] > 100 and "HTTP to" in top["baseline"]
    model = load_model(tmp_path / "ws", "net")
    assert isinstance(model, AssetBaseline) and model.profiles["192.168.33.10"].events == top["events"]
    result = runner.invoke(app, ["-w", ws, "model", "evaluate", "net", "--data", str(shared("zeek", "conn.log"))])
    assert result.exit_code != 0 and "unsupervised" in str(result.exception)


def test_baseline_as_a_pipeline_detector() -> None:
    from healthswarm.detect.base import Detector
    from healthswarm.detect.learn.detector import ModelDetector
    from healthswarm.detect.stage import run_detectors

    detector = ModelDetector(warmed())
    assert isinstance(detector, Detector) and detector.name == "asset-baseline"
    events = [flow(61, "pump-icu-07", "iomt-gw", 2575, "hl7"), flow(62, "pump-icu-07", "", 445, dst_ip="10.2.0.5")]
    seen, alerts = run_detectors(events, [detector])
    assert seen == 2 and [a.rule_id for a in alerts] == ["asset-baseline/new-service-and-destination"]


def test_a_long_run_keeps_the_baseline_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources outside the inventory, peers of one asset and daily budgets do not grow without end."""
    from healthswarm.detect.learn import asset_baseline, profile

    monkeypatch.setattr(asset_baseline, "MAX_UNKNOWN_SOURCES", 50)
    monkeypatch.setattr(profile, "MAX_PEERS", 40)
    server_asset = Asset(id="srv", name="server", kind="server", organisation="org", zone="dc")
    model = asset_baseline.AssetBaseline(assets=[server_asset])
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(500):  # 500 scanners, each once, and the server answering 500 peers
        when = start + timedelta(minutes=i)
        model.learn_one({"source.ip": f"203.0.113.{i % 250}-{i}", "destination.asset.id": "srv",
                         "destination.port": 443, "@timestamp": when})
        model.learn_one({"source.asset.id": "srv", "destination.ip": f"198.51.100.{i}", "destination.port": 443,
                         "@timestamp": when})
    assert "srv" in model.profiles  # an inventory asset is never forgotten
    assert len(model.profiles) - 1 <= 50
    assert f"203.0.113.{499 % 250}-499" in model.profiles  # the latest scanner stays, the first went
    assert "203.0.113.0-0" not in model.profiles
    server = model.profiles["srv"]
    assert len(server.peers) <= 40 and len(server.pairs) <= 40 and server.events == 500
    for day in range(10):  # budgets of days gone are dropped
        model._alert(Event(timestamp=start + timedelta(days=day), fields={}, original={}, source="s", record=day),
                     {"source.asset.id": "srv", "destination.ip": "x", "@timestamp": start + timedelta(days=day)},
                     [asset_baseline.Deviation("new-destination", 0.6, "medium", "t")])
    assert {day for _, day in model._spent} == {"2026-11-09", "2026-11-10"}
