"""`healthswarm share …` end to end: export from one hospital's workspace, import in another's, leak-check exits."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthswarm.cli.main import app
from healthswarm.model import Alert, AttackRef, Event, EventRef
from healthswarm.model.incident import Incident, IncidentState, Stage
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents
from healthswarm.store.events import insert_events

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "healthswarm" / "demo" / "ecosystem.yaml"
ADVISORIES = ROOT / "src" / "healthswarm" / "demo" / "advisories"
NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
runner = CliRunner()
ENV = {"HEALTHSWARM_ORGANISATION": "st-aurelia"}


def run(*args: str) -> object:
    return runner.invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("share-cli")
    ws = base / "st-aurelia"
    assert run("-w", str(ws), "inventory", "load", str(DEMO)).exit_code == 0
    assert run("-w", str(ws), "vulns", "import", str(ADVISORIES)).exit_code == 0
    run("-w", str(ws), "vulns", "match")
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    with store.transaction() as conn:
        insert_events(conn, [Event(NOW, {"user.name": "nurse.canary", "host.name": "ws-canary-07",
                                         "patient.id": "PAT-CANARY-123", "source.ip": "10.99.1.2"},
                                   None, source="t", record=1, key="canary-1")])
    alerts = base / "alerts.ndjson"
    alert = Alert("sigma", "r1", "Lateral movement from ws-canary-07", "high", NOW,
                  events=(EventRef("t", 1, "canary-1"),), techniques=(AttackRef("T1021.002"),),
                  description="nurse.canary opened PAT-CANARY-123 from 10.99.1.2",
                  details={"destination.ip": "198.51.100.23", "source.ip": "10.99.1.2"})
    alerts.write_text(json.dumps(alert.as_dict()) + "\n")
    stored = Alert("sigma", "r2", "Ransomware on ws-canary-07", "critical", NOW, techniques=(AttackRef("T1486"),),
                   description="user nurse.canary", details={"destination.domain": "c2-canary-free.example"})
    incident = Incident("inc-1", "Ransomware at ws-canary-07 (nurse.canary)", NOW, NOW, state=IncidentState.TRIAGED,
                        stage=Stage.OBJECTIVES, severity=4, alert_ids=[stored.id], techniques={"T1486"})
    with store.transaction() as conn:
        save_alerts(conn, [stored])
        save_incidents(conn, [incident])
    store.close()
    return {"base": base, "ws": ws, "alerts": alerts}


def test_export_leak_check_import(hospital: dict[str, Path]) -> None:
    ws, base = hospital["ws"], hospital["base"]
    out = base / "bundle.json"
    feed = base / "misp-feed"
    result = run("-w", str(ws), "share", "export", "-o", str(out), "--alerts", str(hospital["alerts"]),
                 "--tlp", "green", "--pap", "green", "--misp-feed", str(feed))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for canary in ("nurse.canary", "ws-canary-07", "PAT-CANARY-123", "10.99.1.2"):
        assert canary not in text
    bundle = json.loads(text)
    assert "198.51.100.23" in text and any(o["type"] == "vulnerability" for o in bundle["objects"])
    incident = next(o for o in bundle["objects"] if o["type"] == "incident")
    assert incident["name"].startswith("Ransomware at host-") and "c2-canary-free.example" in text
    assert run("-w", str(ws), "share", "leak-check", str(out)).exit_code == 0
    # the receiving hospital trusts the sender's key, then imports (once: a replay is refused)
    shown = run("-w", str(ws), "share", "keys", "show").stdout
    public = next(line.split(":", 1)[1].strip() for line in shown.splitlines() if line.startswith("public key"))
    other = base / "northfield"
    assert run("-w", str(other), "share", "keys", "trust", "St Aurelia", public).exit_code == 0
    imported = run("-w", str(other), "share", "import", str(out), "--format", "json")
    assert imported.exit_code == 0, imported.output
    assert any(row["type"] == "indicator" or row["type"] == "vulnerability" for row in json.loads(imported.stdout))
    misp = run("-w", str(other), "share", "import-misp", str(feed))
    assert misp.exit_code == 0 and "indicators" in misp.output
    for canary in ("nurse.canary", "ws-canary-07", "PAT-CANARY-123", "10.99.1.2"):
        assert all(canary not in p.read_text() for p in feed.iterdir())
    listed = json.loads(run("-w", str(other), "share", "indicators", "--format", "json").stdout)
    assert any(i["type"] == "cve" for i in listed)
    again = run("-w", str(other), "share", "import", str(out))
    assert again.exit_code == 2 and "replayed" in again.output
    tampered = base / "tampered.json"
    bundle["objects"][-1]["name"] = "changed"
    tampered.write_text(json.dumps(bundle))
    refused = run("-w", str(other), "share", "import", str(tampered))
    assert refused.exit_code == 2 and "tampered" in refused.output


def test_leak_check_exit_codes(hospital: dict[str, Path]) -> None:
    ws, base = hospital["ws"], hospital["base"]
    leaky = base / "leaky.json"
    hidden = base64.b64encode(b"user=nurse.canary").decode()
    leaky.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "note", "id": "note--1", "content": f"blob {hidden}"},
        {"type": "note", "id": "note--2", "abstract": "host WS-CANARY-07"}]}))
    result = run("-w", str(ws), "share", "leak-check", str(leaky), "--format", "json")
    assert result.exit_code == 1
    hits = json.loads(result.stdout)
    assert {(h["object_id"], h["path"]) for h in hits} == {("note--1", "$.objects[0].content"),
                                                           ("note--2", "$.objects[1].abstract")}
    assert "nurse.canary" not in result.stdout
    binary = base / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert run("-w", str(ws), "share", "leak-check", str(binary)).exit_code == 2
    assert run("-w", str(ws), "share", "leak-check", str(base / "missing.json")).exit_code == 2


def test_validate_and_bad_options(hospital: dict[str, Path]) -> None:
    ws, base = hospital["ws"], hospital["base"]
    bad = base / "bad.json"
    bad.write_text(json.dumps({"type": "bundle", "id": "bundle--5d5e1b4a-2d6c-4c1e-9a43-5c8b7e4c6d11", "objects": [
        {"type": "identity", "spec_version": "2.1", "id": "identity--8c6af861-7b20-41ef-9b59-6344fd872a8f",
         "created": "2016-08-08T15:50:10.983Z", "name": "x"}]}))
    result = runner.invoke(app, ["share", "validate", str(bad)])
    assert result.exit_code == 1 and "modified" in result.output
    refused = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(ws), "share", "export", "-o",
                              str(base / "x.json"), "--tlp", "red", "--group", "sector"],
                             capture_output=True, text=True, timeout=120, env={**os.environ, **ENV})
    assert refused.returncode == 2 and "TLP:RED may not go to the sector group" in refused.stderr
    assert "Traceback" not in refused.stderr and not (base / "x.json").exists()


def test_trust_accepts_a_key_that_starts_with_a_dash(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from healthswarm.share.signing import b64u

    # one key in 64 starts with "-" in base64url; as a bare argument it would be read as an option
    while not (text := b64u(Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
               ).startswith("-"):
        pass
    result = run("-w", str(tmp_path), "share", "keys", "trust", "Dash Hospital", f"ed25519:{text}")
    assert result.exit_code == 0, result.output
    assert "trusted Dash Hospital" in result.output
