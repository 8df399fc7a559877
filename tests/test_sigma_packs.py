"""The rule packs loaded by default: the pinned SigmaHQ snapshot (zip in package data, licence kept), the
healthswarm pack (valid Sigma, fires on what it was written for), `rules list|update`, `hunt --coverage`,
and default `detect` finding what `hunt` with the SigmaHQ rules finds on the EVTX attack samples."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.context import AppContext
from healthswarm.cli.main import app
from healthswarm.config import Settings
from healthswarm.detect.coverage import coverage_layer, v18_id
from healthswarm.detect.sigma import SigmaDetector, load_rules
from healthswarm.detect.sigma.loader import read_files
from healthswarm.detect.sigma.packs import (
    DEFAULT_PACKS,
    HEALTHSWARM_PACK,
    PACKAGED_SNAPSHOT,
    build_snapshot,
    list_packs,
    load_default_rules,
    read_manifest,
    validate_pack,
)
from healthswarm.model import Alert, AttackRef, Event
from healthswarm.store.alerts import load_alerts

runner = CliRunner()


def test_packaged_snapshot_is_pinned_licensed_and_read_without_extraction() -> None:
    manifest = read_manifest(PACKAGED_SNAPSHOT)
    assert manifest["commit"] and manifest["date"] and manifest["license"].startswith("Detection Rule License")
    assert "SigmaHQ" in manifest["attribution"]
    with zipfile.ZipFile(PACKAGED_SNAPSHOT) as zf:
        names = set(zf.namelist())
        assert {"LICENSE", "MANIFEST.json"} <= names
        assert "Detection Rule License" in zf.read("LICENSE").decode()
    files, problems = read_files([PACKAGED_SNAPSHOT])
    assert not problems and len(files) == manifest["rules"] == sum(manifest["rules_per_folder"].values())
    assert all(str(path).startswith(str(PACKAGED_SNAPSHOT) + "/") for path, _ in files[:10])
    assert PACKAGED_SNAPSHOT.stat().st_size < 5_000_000
    assert (PACKAGED_SNAPSHOT.parent / "LICENSE").is_file()


def test_pack_passes_pysigma_validators() -> None:
    attack = shared("attack", "enterprise-attack.json")
    assert validate_pack(HEALTHSWARM_PACK, attack) == []


def test_pack_compiles_and_its_correlation_hides_its_inputs() -> None:
    ruleset = load_rules([HEALTHSWARM_PACK])
    assert not ruleset.problems and len(ruleset.rules) >= 40 and ruleset.correlations
    detector = SigmaDetector(ruleset)
    assert detector._silenced  # the correlation inputs (network logon, DCOM activation) raise no alert alone


def _win(channel: str, eid: int, **fields: object) -> Event:
    from datetime import UTC, datetime

    original = {"Channel": channel, "EventID": eid, "Computer": "ws1.example", **fields}
    return Event(timestamp=datetime(2026, 1, 1, tzinfo=UTC), source="t", record=1, original=original,
                 fields={"observer.type": "evtx", "event.code": str(eid)})


@pytest.mark.parametrize(("event", "technique"), [
    (_win("System", 7040, Provider_Name="Service Control Manager", param1="Windows Event Log", param2="auto start",
          param3="disabled", param4="EventLog"), "T1562.002"),
    (_win("Microsoft-Windows-Sysmon/Operational", 12, EventType="CreateKey",
          TargetObject="HKLM\\System\\ControlSet001\\Control\\MiniNt"), "T1562.002"),
    (_win("Microsoft-Windows-Sysmon/Operational", 1, Image="C:\\Windows\\System32\\wevtutil.exe",
          CommandLine="wevtutil sl Security /lfn:C:\\x\\sec.evtx"), "T1562.002"),
    (_win("Microsoft-Windows-Sysmon/Operational", 1, Image="C:\\Windows\\System32\\netsh.exe",
          CommandLine="netsh firewall add portopening TCP 4444 x"), "T1562.004"),
    (_win("Security", 5145, ShareName="\\\\*\\IPC$", RelativeTargetName="svcctl", AccessList="%%1538 %%4417",
          IpAddress="10.0.0.5"), "T1021.002"),
    (_win("Security", 4661, ObjectType="SAM_GROUP", ObjectName="S-1-5-21-1-2-3-512", SubjectUserName="pgustavo"),
     "T1069.002"),
    (_win("Microsoft-Windows-Sysmon/Operational", 1, Image="C:\\Tools\\Seatbelt.exe",
          CommandLine="Seatbelt.exe -group=user"), "T1012"),
    (_win("Microsoft-Windows-Sysmon/Operational", 25, Type="Image is locked for access", Image="C:\\x\\a.exe"),
     "T1055"),
    (_win("Microsoft-Windows-Sysmon/Operational", 1, Image="C:\\Program Files\\Microsoft Office\\EXCEL.EXE",
          CommandLine="EXCEL.EXE /automation -Embedding", ParentImage="C:\\Windows\\System32\\svchost.exe",
          ParentCommandLine="C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p"), "T1021.003"),
])
def test_pack_rule_fires_on_the_windows_record_it_describes(event: Event, technique: str) -> None:
    detector = SigmaDetector(load_rules([HEALTHSWARM_PACK]))
    fired = {v18_id(t.id) for alert in detector.detect(event) for t in alert.techniques}
    assert technique in fired


def test_build_and_install_a_snapshot_from_a_folder(tmp_path: Path) -> None:
    source = tmp_path / "sigma"
    rule = source / "rules" / "windows" / "process_creation" / "r.yml"
    rule.parent.mkdir(parents=True)
    rule.write_text("title: t\nid: 0a7ec8f3-5e63-4f1e-9f4f-3a7d1c2b0e11\nstatus: test\ndate: 2031-02-03\n"
                    "logsource: {product: windows, category: process_creation}\n"
                    "detection: {sel: {Image|endswith: '\\\\x.exe'}, condition: sel}\nlevel: low\n")
    (source / "rules" / "cloud").mkdir(parents=True)
    (source / "rules" / "cloud" / "c.yml").write_text(rule.read_text())
    (source / "LICENSE").write_text("Detection Rule License (DRL) 1.1")
    ws = tmp_path / "ws"
    out = runner.invoke(app, ["-w", str(ws), "rules", "update", "--from", str(source), "--commit", "abc123",
                              "--format", "json"])
    assert out.exit_code == 0, out.output
    manifest = json.loads(out.stdout)[0]
    assert manifest["rules"] == 1 and manifest["date"] == "2031-02-03" and manifest["compiled"] == 1
    listed = json.loads(runner.invoke(app, ["-w", str(ws), "rules", "list", "--format", "json"]).stdout)
    sigma = next(p for p in listed if p["name"] == "sigmahq")
    assert sigma["origin"] == "workspace" and sigma["rules"] == 1 and "2031-02-03 abc123" in sigma["version"]
    assert {p["name"] for p in listed} == set(DEFAULT_PACKS)
    # the installed zip is itself a valid source (a snapshot zip re-installs with its manifest)
    again = build_snapshot(ws / "rules" / "sigmahq.zip", tmp_path / "copy.zip")
    assert again["commit"] == "abc123" and again["rules"] == 1
    assert runner.invoke(app, ["-w", str(ws), "rules", "reset"]).exit_code == 0
    assert list_packs(ws)[0].origin == "packaged"
    bad = runner.invoke(app, ["-w", str(ws), "rules", "update", "--from", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "not a folder or a zip file" in bad.output


def test_rules_list_table_shows_version_and_counts(tmp_path: Path) -> None:
    out = runner.invoke(app, ["-w", str(tmp_path), "rules", "list"])
    manifest = read_manifest(PACKAGED_SNAPSHOT)
    assert out.exit_code == 0 and manifest["date"] in out.stdout and "rules/windows" in out.stdout
    assert "Detection Rule License" in out.stdout


def test_hunt_writes_a_navigator_layer_and_heat_map(tmp_path: Path) -> None:
    sample = shared("windows", "evtx-attack-samples", "Defense Evasion", "DE_UAC_Disabled_Sysmon_12_13.evtx")
    layer = tmp_path / "cov.json"
    out = runner.invoke(app, ["-w", str(tmp_path / "ws"), "hunt", "--pack", "sigmahq", "--pack", "healthswarm",
                              "--coverage", str(layer), str(sample)])
    assert out.exit_code == 0, out.output
    doc = json.loads(layer.read_text())
    assert doc["versions"]["layer"].startswith("4.") and doc["domain"] == "enterprise-attack"
    techniques = {t["techniqueID"]: t for t in doc["techniques"]}
    assert "T1562.002" in techniques and "T1685.001" not in techniques  # renumbered ids shown as v18
    assert any("fired" in t.get("comment", "") for t in techniques.values())
    assert layer.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_coverage_layer_without_alerts_lists_covered_techniques() -> None:
    doc = coverage_layer(load_rules([HEALTHSWARM_PACK]))
    ids = {t["techniqueID"] for t in doc["techniques"]}
    assert {"T1562.002", "T1021.003", "T1021.002", "T1069.002", "T1012", "T1055"} <= ids
    assert not any("color" in t for t in doc["techniques"])


def test_coverage_layer_counts_detections_in_its_comment() -> None:
    def alert(rule: str) -> Alert:
        return Alert("sigma", rule, "Registry query", "high", datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
                     techniques=(AttackRef("T1012"),))

    def comment(alerts: list[Alert]) -> str:
        doc = coverage_layer(load_rules([HEALTHSWARM_PACK]), alerts)
        return next(t["comment"] for t in doc["techniques"] if t["techniqueID"] == "T1012")

    assert comment([alert("r1")]) == "fired: 1 detection — Registry query (1)"
    assert comment([alert("r1"), alert("r2")]) == "fired: 2 detections — Registry query (2)"


@pytest.mark.slow
def test_default_detect_finds_what_hunt_with_sigmahq_finds_on_evtx_attack_samples(tmp_path: Path) -> None:
    samples = shared("windows", "evtx-attack-samples")
    rules = shared("sigma", "rules", "windows")
    ws = tmp_path / "ws"
    hunted = runner.invoke(app, ["-w", str(ws), "hunt", "-r", str(rules), "--format", "ndjson",
                                 str(samples / "**" / "*.evtx")])
    assert hunted.exit_code == 0, hunted.output
    expected = [json.loads(line) for line in hunted.stdout.splitlines() if line.strip()]
    assert len(expected) == 689
    ingested = runner.invoke(app, ["-w", str(ws), "ingest", str(samples)])
    assert ingested.exit_code == 0, ingested.output
    detected = runner.invoke(app, ["-w", str(ws), "detect", "--no-baseline", "--no-clinical", "--format", "json"])
    assert detected.exit_code == 0, detected.output
    summary = json.loads(detected.stdout)[0]
    assert summary["events"] == 3662
    store = AppContext(Settings.load(ws)).store
    with store.read() as conn:
        alerts = [s.alert for s in load_alerts(conn) if s.alert.detector == "sigma"]
    found = {(a.rule_id, Path(e.source).name, e.record) for a in alerts for e in a.events}
    wanted = {(d["rule_id"], Path(e["source"]).name, e["record"]) for d in expected for e in d["events"]}
    assert len(wanted) == 689
    assert wanted <= found, sorted(wanted - found)[:5]
    assert len(alerts) >= 689


def test_default_rules_load_from_the_cache_quickly(tmp_path: Path) -> None:
    first = load_default_rules(tmp_path)
    assert not first.cached and len(first.rules) > 3000
    assert not [p for p in first.problems if str(HEALTHSWARM_PACK) in str(p)]
    again = load_default_rules(tmp_path)
    assert again.cached and again.key == first.key
