"""Live risk: predicted next targets of an incident, incremental as incidents arrive, on a hand-made
ecosystem with a known answer and on the demo workspace."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api_support import demo_workspace  # noqa: F401
from healthswarm.demo import ADVISORIES, ECOSYSTEM
from healthswarm.inventory import load_inventory as read_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Alert, Asset, AttackRef, Criticality, Inventory, Level, Organisation, Zone
from healthswarm.model.incident import IncidentState
from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph
from healthswarm.risk.impact import impact
from healthswarm.risk.live import LiveTracker, annotate_incidents, full_recompute, predict_next, tracker_for
from healthswarm.risk.states import Privilege
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents, set_incident_state, update_incident_document
from test_risk_paths import P_HARD, PUMP_ADJACENT, RCE, RCE_HARD, asset, finding

EHR = Asset("ehr", "h", "clin", "ehr", "ehr", criticality=Criticality(Level.LOW, Level.CRITICAL, Level.HIGH),
            records=500_000)


def small_graph() -> AttackGraph:
    """A corporate zone (workstation ws, server srv with an RCE, file server fs with a hard RCE), a
    clinical zone (the EHR, RCE), an IoMT zone (a nurse station nws and a pump whose flaw is AV:A:
    only someone standing on the IoMT network can use it)."""
    inv = Inventory(
        organisations=(Organisation("h", "H", "hospital"),),
        zones=(Zone("corp", "h", "Corporate", "internal"), Zone("clin", "h", "Clinical", "clinical"),
               Zone("iomt", "h", "IoMT", "iomt")),
        assets=(asset("ws", "corp", "workstation"), asset("srv", "corp", "server"), asset("fs", "corp", "file-server"),
                EHR, asset("nws", "iomt", "workstation"),
                asset("pump", "iomt", "infusion-pump", safety=Level.CRITICAL)),
    )
    return build_attack_graph(inv, [finding("srv", "CVE-S", RCE), finding("fs", "CVE-F", RCE_HARD),
                                    finding("ehr", "CVE-E", RCE), finding("pump", "CVE-P", PUMP_ADJACENT)])


def harm(graph: AttackGraph, asset_id: str) -> float:
    return impact(graph.facts.assets[asset_id], Privilege.ADMIN).harm


def test_known_answer_from_a_workstation() -> None:
    graph = small_graph()
    got = LiveTracker(graph).predict(["ws"], k=10)
    # internal → clinical and its own zone are reachable; the pump's adjacent-network flaw is not
    expected = {"ehr": 0.9, "srv": 0.9, "fs": P_HARD}
    assert {p.asset: p.probability for p in got} == pytest.approx(expected, abs=1e-6)
    assert all(p.privilege == "admin" and p.via == "ws" for p in got)
    assert [p.asset for p in got] == sorted(expected, key=lambda a: (-expected[a] * harm(graph, a), a))
    assert got[0].asset == "ehr"  # 500,000 patient records weigh more than a server
    assert got[0].harm == pytest.approx(harm(graph, "ehr"))
    assert "CVE-E" in got[0].how and "CVE-F" in next(p.how for p in got if p.asset == "fs")
    assert [p.asset for p in LiveTracker(graph).predict(["ws"], k=1)] == ["ehr"]
    assert got[0].as_dict()["risk"] == pytest.approx(round(0.9 * harm(graph, "ehr"), 4))


def test_second_incident_is_incremental_and_equals_a_full_recompute() -> None:
    graph = small_graph()
    tracker = LiveTracker(graph)
    tracker.predict(["ws"])
    before = (tracker.work.moves_scanned, tracker.work.searches, tracker.work.states_settled)
    assert before[:2] == (graph.edge_count, 1)  # the one view, one search

    got = tracker.predict(["ws", "nws", "unknown-asset"], k=10)  # the attacker now also stands on the IoMT
    searched = tracker.work.states_settled - before[2]
    assert tracker.work.moves_scanned == before[0]  # no new view
    assert tracker.work.searches == 2  # only the new foothold was searched
    full, work = full_recompute(graph, ["ws", "nws"], k=10)
    assert [(p.asset, p.privilege, round(p.probability, 9)) for p in got] == \
        [(p.asset, p.privilege, round(p.probability, 9)) for p in full]
    assert next(p for p in got if p.asset == "pump").via == "nws"
    assert {"pump", "ehr", "srv", "fs"} == {p.asset for p in got}  # the holder's own assets are left out
    assert 0 < searched < work.total and work.moves_scanned == graph.edge_count

    tracker.predict(["nws", "ws"])  # an update on known footholds searches nothing
    assert tracker.work.searches == 2
    assert tracker.at_risk["pump"].p == pytest.approx(0.9)  # the ecosystem-wide picture


def test_tracker_is_kept_per_graph_and_unknown_assets_predict_nothing() -> None:
    graph = small_graph()
    assert predict_next(graph, ["nope"]) == []
    first = predict_next(graph, ["ws"], k=3)
    assert tracker_for(graph) is tracker_for(graph) and tracker_for(graph).work.searches == 1
    assert predict_next(graph, ["ws"], k=3) == first
    assert tracker_for(graph).work.searches == 1
    assert tracker_for(small_graph()) is not tracker_for(graph)


@pytest.fixture(scope="module")
def demo_graph() -> AttackGraph:
    inv = read_inventory([ECOSYSTEM])
    advisories, _ = load_advisories([ADVISORIES])
    return build_attack_graph(inv, match_findings(advisories, inv.assets))


def test_demo_phishing_foothold_predicts_the_clinical_zone(demo_graph: AttackGraph) -> None:
    got = predict_next(demo_graph, ["sta-ws-03"], k=5)
    assert len(got) == 5
    zones = {demo_graph.facts.assets[p.asset].zone for p in got}
    assert "st-aurelia-clinical" in zones
    assert got[0].asset == "sta-mri-01" and got[0].privilege == "admin"
    assert got[0].probability == pytest.approx(0.9) and "CVE-" in got[0].how
    assert all(p.organisation == "st-aurelia" and p.asset != "sta-ws-03" for p in got)


def test_demo_incremental_work_is_smaller_than_a_full_rebuild(demo_graph: AttackGraph) -> None:
    tracker = LiveTracker(demo_graph)
    tracker.predict(["sta-ws-03"])
    settled = tracker.work.states_settled
    got = tracker.predict(["sta-ws-03", "sta-fs-01"], k=10)
    incremental = tracker.work.states_settled - settled
    full, work = full_recompute(demo_graph, ["sta-ws-03", "sta-fs-01"], k=10)
    assert [(p.asset, round(p.probability, 9)) for p in got] == [(p.asset, round(p.probability, 9)) for p in full]
    assert tracker.work.searches == 2 and incremental * 5 < work.total  # ≥ 5x less work, counted


def test_annotate_incidents_stores_predictions_on_open_incidents(demo_workspace: Path, tmp_path: Path) -> None:
    shutil.copy(demo_workspace / "healthswarm.db", tmp_path / "healthswarm.db")
    store = Store.open(f"sqlite:///{tmp_path / 'healthswarm.db'}")
    try:
        with store.transaction() as conn:
            stored = load_incidents(conn)
            closed = stored[-1].id  # closed, and without the predictions the demo stored
            assert set_incident_state(conn, closed, IncidentState.CLOSED) == "new"
            assert update_incident_document(conn, closed, {"predicted_next": None})
            assert not update_incident_document(conn, "no-such-incident", {"x": 1})
        assert annotate_incidents(store) == len(stored) - 1
        with store.read() as conn:
            after = {i.id: i.as_dict() for i in load_incidents(conn)}
        assert after[closed]["predicted_next"] is None
        phishing = next(d for d in after.values() if "sta-ws-03" in d["assets"])
        assert phishing["predicted_next"][0]["asset"] == "sta-mri-01"
        assert {"asset", "privilege", "probability", "harm", "how"} <= set(phishing["predicted_next"][0])
        assert "sta-ws-03" in phishing["predicted_from"]
        assert phishing["title"] and phishing["timeline"]  # the rest of the document is kept
    finally:
        store.close()


# --- predictions follow from the incident: its footholds, privileges, techniques and actor ---

def incident(assets: list[str], techniques: list[str], alerts: list[Alert], entities: tuple[str, ...] = ()) -> dict:
    return {"id": "INC-x", "assets": assets, "techniques": techniques, "entities": list(entities),
            "alert_ids": [a.id for a in alerts]}


def alert(rule: str, assets: list[str], techniques: list[str], title: str = "t") -> Alert:
    return Alert("sigma", rule, title, "high", datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
                 techniques=tuple(AttackRef(t) for t in techniques), assets=tuple(assets))


def test_reading_an_intrusion_gives_privileges_per_asset() -> None:
    from healthswarm.risk.actor import read_incident

    alerts = [alert("a1", ["ws"], ["T1059.001"]), alert("a2", ["ws"], ["T1003.001"], "LSASS access"),
              alert("a3", ["ws", "srv"], ["T1021.002"])]
    reading = read_incident(incident(["ws", "srv"], [], alerts), alerts, {"ws", "srv"})
    assert reading.actor.name == "intruder" and reading.actor.skill == 2
    held = {f.asset: f.privilege for f in reading.footholds}
    assert held == {"ws": Privilege.ADMIN, "srv": Privilege.USER}
    assert "LSASS" in next(f.evidence for f in reading.footholds if f.asset == "ws")
    exploit = [alert("b1", ["ws"], ["T1068"])]
    assert read_incident(incident(["ws"], [], exploit), exploit, {"ws"}).actor.skill == 3


def test_an_insider_reads_records_and_does_not_exploit() -> None:
    from healthswarm.model import Flow
    from healthswarm.risk.actor import read_incident
    from healthswarm.risk.live import predict_incident

    graph = small_graph()
    # the workstation's account reads the EHR over HTTPS: the same graph, plus the declared flow
    inv = graph.facts.inventory
    graph = build_attack_graph(Inventory(inv.organisations, inv.zones, inv.assets, (Flow("ws", "ehr", "https"),)),
                               graph.facts.findings)
    alerts = [alert("p1", ["ws"], ["T1213"], "records read without care relationship"),
              alert("p2", ["ws"], ["T1078"], "break-the-glass")]
    reading = read_incident(incident(["ws"], ["T1078", "T1213"], alerts, ("user:clerk",)), alerts,
                            graph.facts.assets)
    assert reading.actor.name == "insider" and [(f.asset, f.privilege) for f in reading.footholds] == [
        ("ws", Privilege.USER)]
    assert "1 account: clerk" in reading.reasons
    got = predict_incident(graph, reading, k=10)
    assert [p.asset for p in got] == ["ehr"] and got[0].privilege == "user"
    assert "own access" in got[0].how and "exploit" not in got[0].how
    # the same workstation held by an intruder: the CVEs are the way on
    intruder = predict_next(graph, ["ws"], k=10)
    assert any("exploit" in p.how for p in intruder) and {"srv", "fs"} <= {p.asset for p in intruder}


def test_an_incident_without_a_foothold_predicts_nothing() -> None:
    from healthswarm.risk.actor import read_incident
    from healthswarm.risk.live import predict_incident

    graph = small_graph()
    flood = [alert("h1", [], ["T1499.002", "T1565.002"])]
    reading = read_incident(incident([], ["T1499", "T1199"], flood), flood, graph.facts.assets)
    assert reading.actor.name == "none" and reading.footholds == []
    assert predict_incident(graph, reading) == []


def test_demo_incidents_predictions_follow_from_each_incident(demo_workspace: Path, tmp_path: Path) -> None:
    shutil.copy(demo_workspace / "healthswarm.db", tmp_path / "healthswarm.db")
    store = Store.open(f"sqlite:///{tmp_path / 'healthswarm.db'}")
    try:
        assert annotate_incidents(store) == 4
        with store.read() as conn:
            docs = [i.as_dict() for i in load_incidents(conn)]
    finally:
        store.close()
    by = {}
    for d in docs:
        kind = ("insider-fhir" if "sta-cws-08" in d["assets"] else "phishing" if "sta-ws-03" in d["assets"]
                else "dicom" if "rim-pacs-01" in d["assets"] else "hl7")
        by[kind] = d
    assert set(by) == {"insider-fhir", "phishing", "dicom", "hl7"}

    # the ward clerk browsing records: an insider on her own workstation, reading more records
    clerk = by["insider-fhir"]
    assert clerk["predicted_basis"]["actor"] == "insider"
    assert [(f["asset"], f["privilege"]) for f in clerk["predicted_basis"]["footholds"]] == [("sta-cws-08", "user")]
    assert clerk["predicted_next"] and clerk["predicted_next"][0]["asset"] == "sta-ehr-01"
    assert all("exploit" not in p["how"] and "CVE-" not in p["how"] for p in clerk["predicted_next"])
    assert "sta-cardiac-prog-01" not in {p["asset"] for p in clerk["predicted_next"]}

    # the phishing chain: a network attacker with the privileges its alerts show
    chain = by["phishing"]
    assert chain["predicted_basis"]["actor"] == "intruder"
    held = {f["asset"]: f["privilege"] for f in chain["predicted_basis"]["footholds"]}
    assert held["sta-ws-03"] == "admin" and held["sta-fs-01"] == "user"
    assert chain["predicted_next"][0]["asset"] == "sta-mri-01" and "CVE-" in chain["predicted_next"][0]["how"]

    # DICOM exfiltration through the viewer: access misuse, the PACS it reads is not "held"
    dicom = by["dicom"]
    assert dicom["predicted_basis"]["actor"] == "insider"
    assert [f["asset"] for f in dicom["predicted_basis"]["footholds"]] == ["sta-dicom-viewer-01"]
    assert all("exploit" not in p["how"] for p in dicom["predicted_next"])
    assert not {"rim-pacs-01", "sta-dicom-viewer-01"} & {p["asset"] for p in dicom["predicted_next"]}

    # the HL7 flood shows no foothold: no prediction rather than a guess
    assert by["hl7"]["predicted_basis"]["actor"] == "none" and by["hl7"]["predicted_next"] == []

    # no longer "nearly the same for every incident"
    tops = {kind: tuple(p["asset"] for p in d["predicted_next"][:3]) for kind, d in by.items()}
    assert len({tops["insider-fhir"], tops["phishing"], tops["dicom"]}) == 3
