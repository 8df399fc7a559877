"""Live risk: predicted next targets of an incident, incremental as incidents arrive, on a hand-made
ecosystem with a known answer and on the demo workspace."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from api_support import demo_workspace  # noqa: F401
from healthswarm.demo import ADVISORIES, ECOSYSTEM
from healthswarm.inventory import load_inventory as read_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Asset, Criticality, Inventory, Level, Organisation, Zone
from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph
from healthswarm.risk.impact import impact
from healthswarm.risk.live import LiveTracker, annotate_incidents, full_recompute, predict_next, tracker_for
from healthswarm.risk.states import Privilege
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents, update_incident_document
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
            docs = load_incidents(conn)
            closed = docs[-1]["id"]  # closed, and without the predictions the demo stored
            assert update_incident_document(conn, closed, {"state": "closed", "predicted_next": None})
            assert not update_incident_document(conn, "no-such-incident", {"x": 1})
        assert annotate_incidents(store) == len(docs) - 1
        with store.read() as conn:
            after = {d["id"]: d for d in load_incidents(conn)}
        assert after[closed]["predicted_next"] is None
        phishing = next(d for d in after.values() if "sta-ws-03" in d["assets"])
        assert phishing["predicted_next"][0]["asset"] == "sta-mri-01"
        assert {"asset", "privilege", "probability", "harm", "how"} <= set(phishing["predicted_next"][0])
        assert "sta-ws-03" in phishing["predicted_from"]
        assert phishing["title"] and phishing["timeline"]  # the rest of the document is kept
    finally:
        store.close()
