"""What an analyst reads about incidents agrees everywhere (issue 17, "Incidents and figures"): kill-chain stages
and the path through them, one alert count for the CLI, the demo and the API, HL7 traffic tied to assets,
severities in words and durations as "after 5 min", and a GDPR draft whose controller and data-subject figure
come from what the incident touched."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from healthswarm.api import create_app
from healthswarm.api.auth import create_token
from healthswarm.cli.main import app as cli
from healthswarm.config import Settings
from healthswarm.demo import RULES, STAFF
from healthswarm.demo.run import detect_and_correlate, ingest_logs, load_ecosystem, match_advisories
from healthswarm.demo.steps import DemoRun
from healthswarm.errors import InputError
from healthswarm.ingest.enrich import Enricher
from healthswarm.inventory import load_inventory
from healthswarm.model import Alert, AttackRef, Event, EventRef
from healthswarm.model.incident import Stage
from healthswarm.model.words import after, severity_word, span
from healthswarm.respond.case_store import open_from_incident
from healthswarm.respond.drafts import draft
from healthswarm.respond.service import inventory_assets
from healthswarm.store import Store
from healthswarm.store.alerts import alert_totals, load_incidents

runner = CliRunner()
PHISHING_ASSET, DICOM_ASSET, INSIDER_ASSET = "sta-ws-03", "rim-pacs-01", "sta-cws-08"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo's inventory, logs, detection and correlation, in-process (its steps 1–4)."""
    ws = tmp_path_factory.mktemp("figures")
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    run = DemoRun(store=store, workspace=ws)
    load_ecosystem(run)
    match_advisories(run)
    ingested = ingest_logs(run).summary
    detected = detect_and_correlate(run).summary
    store.close()
    return ws, {"ingested": ingested, "detected": detected}


def incidents_of(ws: Path) -> list[dict]:
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    with store.read() as conn:
        out = [i.as_dict() for i in load_incidents(conn)]
    store.close()
    return out


def with_asset(incidents: list[dict], asset: str) -> dict:
    return next(i for i in incidents if asset in i["assets"])


def api_get(ws: Path, path: str) -> dict:
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    with store.transaction() as conn:
        token = create_token(conn, "figures", "viewer")
    with TestClient(create_app(Settings(workspace=ws), engine=store.engine)) as client:
        body = client.get("/api/v1" + path, headers={"Authorization": f"Bearer {token}"}).json()
    store.close()
    return body


# --- 1. kill-chain stages and the path through them ------------------------------------------------------------

def test_each_incident_has_its_furthest_stage_and_its_path(demo: tuple[Path, dict]) -> None:
    ws, _ = demo
    incidents = incidents_of(ws)
    for incident in incidents:
        stages = [p["stage"] for p in incident["path"]]
        assert stages == sorted(stages, key=lambda s: list(map(str, Stage)).index(s)), incident["id"]
        assert incident["stage"] == stages[-1]  # the furthest stage reached is where it stands
    phishing = with_asset(incidents, PHISHING_ASSET)
    # the chain moves across the board: macro and PowerShell, SMB to the file server, the bulk export
    assert [(p["stage"], p["first_seen"][11:16]) for p in phishing["path"]] == [
        ("execution", "08:05"), ("lateral-movement", "08:31"), ("objectives", "09:40")]
    hl7 = next(i for i in incidents if "HL7" in i["title"])
    assert hl7["path"][0]["stage"] == "initial-access"  # a sender from outside the trust
    # the board reads each incident's path from the list the dashboard loads
    listed = {i["id"]: i for i in api_get(ws, "/incidents?limit=500")["items"]}
    assert listed[phishing["id"]]["path"] == phishing["path"]
    board = (Path(__file__).parents[1] / "src/healthswarm/web/static/app.js").read_text()
    assert "i.path" in board and "trail" in board


def test_an_alert_without_tactics_reaches_its_techniques_stage() -> None:
    from healthswarm.detect.correlate import Correlator, alert_stages

    # a learned detector names T1021.002 (SMB) and no tactic: lateral movement, from the ATT&CK data
    smb = Alert(detector="asset-baseline", rule_id="x", title="pump: new service", level="high",
                timestamp=datetime(2026, 11, 27, 8, 55, tzinfo=UTC), events=(EventRef("f", 1, "k1"),),
                techniques=(AttackRef("T1021.002"),), assets=("pump",))
    assert alert_stages(smb) == {Stage.LATERAL_MOVEMENT}
    ics = Alert(detector="d", rule_id="y", title="t", level="low", timestamp=smb.timestamp,
                events=(EventRef("f", 2, "k2"),), tactics=(AttackRef("TA0109"), AttackRef("TA0105")))
    assert alert_stages(ics) == {Stage.LATERAL_MOVEMENT, Stage.OBJECTIVES}  # ATT&CK for ICS ids
    incident = Correlator().add(smb)
    assert incident is not None and incident.stage is Stage.LATERAL_MOVEMENT
    assert [(str(p.stage), p.alert_id) for p in incident.path] == [("lateral-movement", smb.id)]


# --- 2. one alert count ------------------------------------------------------------------------------------------

def test_alert_counts_agree_in_the_cli_the_demo_and_the_api_across_reruns(demo: tuple[Path, dict],
                                                                          tmp_path: Path) -> None:
    ws, figures = demo
    copy = tmp_path / "ws"
    copy.mkdir()
    (copy / "healthswarm.db").write_bytes((ws / "healthswarm.db").read_bytes())
    detected = figures["detected"]
    assert detected["stored"]["alerts"] == detected["alerts"] == sum(i["alerts"] for i in detected["incidents"])
    # the docs' command, with other options than the demo: some alerts are new, the rest were stored before
    args = ["-w", str(copy), "detect", "-r", str(RULES), "--staff", str(STAFF), "--warmup-events", "8",
            "--warmup-hours", "0.75"]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)[0]
    incidents = incidents_of(copy)
    stored = run["stored"]
    # every stored alert is in exactly one incident, and the incidents' counts add up to the stored total
    assert sum(i["alerts"] for i in incidents) == stored["in_incidents"] == stored["alerts"]
    assert stored["alerts"] == detected["alerts"] + run["new_alerts"] and stored["incidents"] == len(incidents)
    before = {i["id"]: i["alerts"] for i in detected["incidents"]}
    assert all(i["alerts"] >= before.get(i["id"], 0) for i in incidents)  # a rerun never shrinks an incident
    summary = api_get(copy, "/summary")
    assert (summary["alerts"], summary["alerts_in_incidents"], summary["incidents"]) == (
        stored["alerts"], stored["in_incidents"], stored["incidents"])
    listed = api_get(copy, "/incidents?limit=500")["items"]
    assert sum(i["alerts"] for i in listed) == summary["alerts_in_incidents"]
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    text = " ".join(table.output.split())
    assert f"Stored: {stored['alerts']:,} alerts, {stored['in_incidents']:,} of them in {stored['incidents']} " \
           f"incidents" in text
    assert re.search(r"This run: \d+ alerts over \d+ events \(0 new, \d+ stored before\)", text)
    docs = (Path(__file__).parents[1] / "docs/detection.md").read_text()
    assert "This run:" in docs and "Stored:" in docs  # the docs show what the command prints


# --- 3. HL7 traffic tied to assets ------------------------------------------------------------------------------

def test_hl7_messages_are_tied_to_assets_by_msh_and_the_flood_names_its_target(demo: tuple[Path, dict]) -> None:
    ws, figures = demo
    hl7_file = figures["ingested"]["files"]["hl7-adt.hl7"]
    assert hl7_file["format"] == "hl7" and hl7_file["events"] == 140
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    with store.read() as conn:
        from sqlalchemy import func, select

        from healthswarm.store.tables import events
        total, tied = conn.execute(select(func.count(), func.count(events.c.asset_id))
                                   .where(events.c.observer_type == "hl7")).one()
    store.close()
    assert total == tied == 140
    flood = next(i for i in incidents_of(ws) if "HL7" in i["title"])
    assert flood["assets"] == ["sta-ehr-01"] and flood["organisations"] == ["st-aurelia"]


def test_enricher_resolves_msh_names_and_prefers_the_mllp_peer_address() -> None:
    inventory = load_inventory([Path(__file__).parents[1] / "src/healthswarm/demo/ecosystem.yaml"])
    enricher = Enricher(inventory.assets)

    def hl7(**fields: str) -> dict:
        event = Event(datetime(2026, 11, 27, tzinfo=UTC), {"observer.type": "hl7", **fields}, "")
        enricher.enrich(event)
        return event.fields

    legit = hl7(**{"hl7.sending_application": "ORBIS", "hl7.sending_facility": "sta",
                   "hl7.receiving_application": "EPIC", "hl7.receiving_facility": "STA"})
    assert (legit["source.asset.id"], legit["destination.asset.id"], legit["asset.id"]) == (
        "sta-his-01", "sta-ehr-01", "sta-his-01")
    assert legit["organization.id"] == "st-aurelia"
    northfield = hl7(**{"hl7.sending_application": "ORBIS", "hl7.sending_facility": "NFH"})
    assert northfield["source.asset.id"] == "nfh-his-01"  # the same product at the other hospital
    stranger = hl7(**{"hl7.sending_application": "ADT_GATEWAY", "hl7.sending_facility": "UNKNOWN_CLINIC",
                      "hl7.receiving_application": "EPIC", "hl7.receiving_facility": "STA"})
    assert "source.asset.id" not in stranger and stranger["asset.id"] == "sta-ehr-01"
    relayed = hl7(**{"source.ip": "10.10.2.13", "hl7.sending_application": "ORBIS", "hl7.sending_facility": "STA"})
    assert relayed["source.asset.id"] == "sta-hl7-01"  # the MLLP peer (the interface engine) is who sent it


def test_inventory_hl7_declarations_are_validated(tmp_path: Path) -> None:
    base = ("organisations:\n- {id: h, name: H, kind: hospital}\nzones:\n- {id: z, organisation: h, name: Z, "
            "exposure: clinical}\nassets:\n")
    good = base + ("- {id: a, organisation: h, zone: z, kind: his, name: A, hl7: {applications: [ORBIS], "
                   "facility: H}}\n")
    path = tmp_path / "inv.yaml"
    path.write_text(good)
    asset = load_inventory([path]).assets[0]
    assert asset.hl7 is not None and asset.hl7.applications == ("ORBIS",) and asset.hl7.facility == "H"
    bad = base + ("- {id: a, organisation: h, zone: z, kind: his, name: A, hl7: {applications: ['OR|BIS'], "
                  "site: H}}\n- {id: b, organisation: h, zone: z, kind: ehr, name: B, hl7: {facility: H}}\n"
                  "- {id: c, organisation: h, zone: z, kind: ehr, name: C, hl7: {applications: [EPIC]}}\n"
                  "- {id: d, organisation: h, zone: z, kind: ehr, name: D, hl7: {applications: [epic]}}\n")
    path.write_text(bad)
    with pytest.raises(InputError) as caught:
        load_inventory([path])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "bad HL7 application name 'OR|BIS'" in text and "unknown field 'site'" in text
    assert "no HL7 application names" in text and "declared by asset 'c' too" in text


# --- 4. severities in words, durations as a person says them ------------------------------------------------------

def test_words_for_severities_and_durations() -> None:
    assert [severity_word(n) for n in (0, 2, 4, 9)] == ["informational", "medium", "critical", "critical"]
    assert severity_word("High") == "high" and severity_word("3") == "high"
    assert [span(timedelta(seconds=s)) for s in (40, 300, 7800, 86_400, 97_200)] == [
        "40 s", "5 min", "2 h 10 min", "1 d", "1 d 3 h"]
    assert after(timedelta(minutes=5)) == "after 5 min" and after(timedelta(minutes=-5)) == "5 min before"


def test_timelines_and_tables_use_words(demo: tuple[Path, dict]) -> None:
    ws, _ = demo
    for incident in incidents_of(ws):
        for entry in incident["timeline"]:
            assert "day," not in entry["note"] and ":00:00" not in entry["note"], entry["note"]
    phishing = with_asset(incidents_of(ws), PHISHING_ASSET)
    assert any(re.match(r"joined after \d+ min: shares ", e["note"]) for e in phishing["timeline"])
    listed = runner.invoke(cli, ["-w", str(ws), "incidents", "list"])
    assert listed.exit_code == 0 and "critical" in listed.output
    shown = runner.invoke(cli, ["-w", str(ws), "incidents", "show", phishing["id"]])
    assert "severity critical" in shown.output and "kill chain: execution 08:05 → lateral-movement 08:31" in \
        " ".join(shown.output.split())


# --- 5. the GDPR draft: the controller and the data subjects the incident touched -------------------------------

@pytest.mark.parametrize("asset", [DICOM_ASSET, INSIDER_ASSET])
def test_gdpr_draft_names_the_controller_and_estimates_subjects_from_what_was_touched(
        demo: tuple[Path, dict], tmp_path: Path, asset: str) -> None:
    ws, _ = demo
    copy = tmp_path / "ws"
    copy.mkdir()
    (copy / "healthswarm.db").write_bytes((ws / "healthswarm.db").read_bytes())
    store = Store.open(f"sqlite:///{copy / 'healthswarm.db'}")
    incident = with_asset(incidents_of(copy), asset)
    now = datetime(2026, 11, 28, 8, tzinfo=UTC)
    with store.transaction() as conn:
        case = open_from_incident(conn, incident["id"], "test", now=now)
        assets = inventory_assets(conn)
        totals = alert_totals(conn)
    store.close()
    assert totals["alerts"] > 0
    md = draft(case, assets, "gdpr", now)["markdown"]
    controller = md.split("## Notifying organisation (controller)\n\n- ", 1)[1].split("\n", 1)[0]
    assert controller == "st-aurelia"  # the hospital whose patients they are, not the PACS provider
    estimate = int(re.search(r"Estimated number of data subjects: ([\d,]+) \(an estimate; basis: distinct "
                             r"patient ids in the [\d,]+ stored events", md).group(1).replace(",", ""))
    assert 0 < estimate == case.patients <= 100  # a sweep of studies or a night of reads, not a whole archive
    assert "900,000" not in md.split("Estimated number of data subjects:")[1].split("\n")[0]
    if asset == DICOM_ASSET:
        assert "not notifying): regio-imaging" in md  # the PACS provider is involved, as a processor
