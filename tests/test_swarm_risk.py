"""Risk raised by the swarm: same vendor/model raised, other vendors not, dependencies on a reporting
organisation raised, the analyst told why, nothing below the threshold, lifted when the field evaporates,
kept with the asset in the store, and device models published from incidents that involve devices."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthswarm.model import Asset, Dependency, Inventory, Organisation, Zone
from healthswarm.model.incident import Incident
from healthswarm.store import Store
from healthswarm.store.alerts import save_incidents
from healthswarm.store.inventory import load_inventory, replace_inventory
from healthswarm.swarm.act import Actor
from healthswarm.swarm.derive import device_items
from healthswarm.swarm.exposure import RiskRaiser, per_asset, span
from healthswarm.swarm.exposure_store import store_raises, stored_raises
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.sim import SimNetwork

BD, ALARIS = "Becton, Dickinson and Company (BD)", "Alaris PC Unit Model 8015"
ORGS = ("st-aurelia", "northfield", "citylab", "rim")


def _asset(ident: str, org: str, kind: str, vendor: str, product: str, **attrs: str) -> Asset:
    return Asset(ident, org, f"{org}-z", kind, ident, vendor=vendor, product=product, attributes=attrs)


def _inventory() -> Inventory:
    pumps = [_asset(f"sta-pump-icu-{n:02d}", "st-aurelia", "infusion-pump", BD, ALARIS, location=f"ICU bed {n}")
             for n in range(1, 8)]
    others = [
        _asset("sta-pump-ward-01", "st-aurelia", "infusion-pump", "B. Braun Medical", "SpaceStation"),
        _asset("sta-mon-01", "st-aurelia", "patient-monitor", "Philips", "IntelliVue MX40"),
        _asset("sta-ris-01", "st-aurelia", "ris", "Sectra", "RIS"),
        _asset("nfh-pump-01", "northfield", "infusion-pump", BD, ALARIS),
        _asset("rim-pacs-01", "rim", "pacs", "Philips", "Vue PACS"),
        _asset("cl-lis-01", "citylab", "lis", "Roche", "LIS"),
    ]
    names = {"st-aurelia": "St Aurelia", "northfield": "Northfield", "citylab": "CityLab", "rim": "RIM imaging"}
    return Inventory(
        organisations=tuple(Organisation(o, names[o], "hospital") for o in ORGS),
        zones=tuple(Zone(f"{o}-z", o, "zone", "clinical") for o in ORGS),
        assets=tuple(pumps + others),
        dependencies=(Dependency("sta-ris-01", "rim-pacs-01", "service"),
                      Dependency("nfh-pump-01", "cl-lis-01", "data")),
    )


@pytest.fixture
def swarm() -> tuple[SimNetwork, dict[str, SwarmNode], Actor]:
    net = SimNetwork(seed=5)
    params = Params(period=0.2, probe_timeout=0.08, half_life=3600.0)
    nodes = {org: net.add(org, params) for org in ORGS}
    for org, node in nodes.items():
        net.send(node.join(["st-aurelia"], net.now), org)
    net.run(5, until=lambda: all(len(n.members.live()) == len(ORGS) - 1 for n in nodes.values()))
    sunk: list[dict[str, tuple[float, str]]] = []
    actor = Actor(nodes["st-aurelia"], raiser=RiskRaiser(_inventory(), "st-aurelia"), sink=sunk.append)
    actor.sunk = sunk  # type: ignore[attr-defined]
    return net, nodes, actor


def _publish(net: SimNetwork, node: SwarmNode, kind: str, data: dict[str, object]) -> None:
    net.publish(node.name, kind, data)
    net.run(2)


def test_same_model_raised_other_vendors_not(swarm: tuple[SimNetwork, dict[str, SwarmNode], Actor]) -> None:
    net, nodes, actor = swarm
    # two trusted peers (weight 0.5 each) at confidence 70: level 0.70 ≥ 0.50; spelled differently by one
    _publish(net, nodes["northfield"], "risk", {"vendor": BD, "model": ALARIS, "confidence": 70})
    _publish(net, nodes["citylab"], "risk", {"vendor": "Becton Dickinson and Company BD",
                                             "model": "ALARIS PC unit model 8015", "confidence": 70})
    actor.review(net.now)
    [raised] = actor.raised
    assert raised.reason == "model" and raised.factor == 1.7
    assert raised.assets == tuple(f"sta-pump-icu-{n:02d}" for n in range(1, 8))
    assert raised.explanation == (
        "swarm level 0.70 ≥ 0.50 for vendor:becton dickinson and company bd model:alaris pc unit model 8015 "
        "(reported by 2 organisations: citylab, northfield) → risk of sta-pump-icu-01..07 raised ×1.7")
    wanted = actor.sunk[-1]  # type: ignore[attr-defined]
    assert set(wanted) == set(raised.assets), "B. Braun pumps, the Philips monitor, Northfield's pump: not raised"


def test_vendor_alone_raises_by_half(swarm: tuple[SimNetwork, dict[str, SwarmNode], Actor]) -> None:
    net, nodes, actor = swarm
    for org in ("northfield", "citylab"):
        _publish(net, nodes[org], "risk", {"vendor": "philips", "confidence": 70})
    actor.review(net.now)
    [raised] = actor.raised
    assert (raised.reason, raised.assets, raised.factor) == ("vendor", ("sta-mon-01",), 1.35)


def test_dependency_on_the_reporting_organisation_raised(
        swarm: tuple[SimNetwork, dict[str, SwarmNode], Actor]) -> None:
    net, nodes, actor = swarm
    ioc = {"type": "ipv4", "value": "198.51.100.77", "confidence": 80}
    _publish(net, nodes["rim"], "indicator", ioc)
    _publish(net, nodes["northfield"], "sighting", ioc)
    actor.review(net.now)
    [raised] = actor.raised
    assert raised.reason == "dependency" and raised.assets == ("sta-ris-01",) and raised.reporters == ("rim",)
    assert raised.explanation == (
        "swarm level 0.80 ≥ 0.50 for indicator:ipv4:198.51.100.77 (reported by 2 organisations: northfield, rim); "
        "'St Aurelia depends on RIM imaging (rim-pacs-01 rim-pacs-01, service)' → dependency risk of sta-ris-01 "
        "raised ×1.8")


def test_below_threshold_no_action_and_evaporation_lifts(
        swarm: tuple[SimNetwork, dict[str, SwarmNode], Actor], tmp_path: Path) -> None:
    net, nodes, actor = swarm
    actor.folder = tmp_path
    _publish(net, nodes["northfield"], "risk", {"vendor": BD, "model": ALARIS, "confidence": 70})
    actions = actor.review(net.now)
    assert {a.priority for a in actions} == {"elevated"}, "one peer: the watchlist notes it ..."
    assert actor.raised == [] and actor.sunk == []  # type: ignore[attr-defined]
    _publish(net, nodes["citylab"], "risk", {"vendor": BD, "model": ALARIS, "confidence": 70})
    actor.review(net.now)
    assert len(actor.raised) == 1
    actor.review(net.now + 3600)   # one half-life later the level is 0.35: below the threshold again
    assert actor.raised == [] and actor.sunk[-1] == {}  # type: ignore[attr-defined]
    kinds = [line.split('"kind": ')[1].split(",")[0] for line in (tmp_path / "actions.jsonl").read_text().splitlines()
             if '"kind": "risk-' in line]
    assert kinds == ['"risk-raised"', '"risk-lifted"']


def test_raised_risk_kept_with_the_asset(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, _inventory())
    net = SimNetwork(seed=2)
    here, a, b = (net.add(n) for n in ("st-aurelia", "northfield", "citylab"))
    for n in (a, b):
        here.field.add(net.publish(n.name, "risk", {"vendor": BD, "model": ALARIS, "confidence": 70}))
    raises = RiskRaiser(_inventory(), "st-aurelia").raises(here, net.now)
    assert store_raises(store, "st-aurelia", per_asset(raises)) == 7
    assert store_raises(store, "st-aurelia", per_asset(raises)) == 0, "idempotent"
    kept = stored_raises(store)
    assert set(kept) == {f"sta-pump-icu-{n:02d}" for n in range(1, 8)} and kept["sta-pump-icu-01"][0] == 1.7
    with store.read() as conn:
        pump = next(x for x in load_inventory(conn).assets if x.id == "sta-pump-icu-03")
    assert pump.attributes["location"] == "ICU bed 3", "the description's own attributes are left alone"
    assert store_raises(store, "st-aurelia", {}) == 7 and stored_raises(store) == {}


def test_incident_on_a_device_publishes_its_vendor_and_model(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    moment = datetime(2026, 11, 27, 8, 55, tzinfo=UTC)
    with store.transaction() as conn:
        replace_inventory(conn, _inventory())
        save_incidents(conn, [Incident("INC-1", "pump SMB", moment, moment,
                                       assets={"sta-pump-icu-02", "sta-pump-icu-05", "sta-ris-01", "nfh-pump-01"})])
    with store.read() as conn:
        assert device_items(conn, "st-aurelia") == [("risk", {"vendor": BD, "model": ALARIS, "confidence": 70})]
        assert device_items(conn, "citylab") == []


def test_span() -> None:
    assert span(["p-03", "p-01", "p-02"]) == "p-01..03"
    assert span(["a", "b"]) == "a, b"
    assert span([f"x{n}" for n in (1, 3, 5, 7, 9, 11)]) == "x1, x11, x3, x5, x7 and 1 more"


def test_demo_hospital_b_and_pacs_provider_find_traces_and_raise_risk(tmp_path: Path) -> None:
    from healthswarm.demo.run import STEPS, DemoRun
    from healthswarm.swarm.demo import demo_step

    run = DemoRun(store=Store.open(f"sqlite:///{tmp_path / 'healthswarm.db'}"), workspace=tmp_path)
    for step in STEPS:
        if step.run.__name__ in ("load_ecosystem", "ingest_logs", "detect_and_correlate"):
            step.run(run)
    summary, _ = demo_step(run.store, run.workspace, run.inventory, sockets=False, corroborate=True)
    orgs = summary["organisations"]
    assert orgs["northfield"]["first_traces"][0].startswith(
        "indicator:ipv4:198.51.100.77 first seen here 2026-11-26 14:02 in northfield-eve.json")
    pacs = orgs["regio-imaging"]["first_traces"]   # the C-FIND sweep on its PACS, whichever detector saw it first
    assert any(t.startswith("technique:T1083 first seen here 2026-11-27 09:0") and t.endswith("on rim-pacs-01")
               for t in pacs)
    assert summary["corroborated"] >= 3   # at least Northfield's sighting and the PACS provider's two techniques
    [why] = [r for r in orgs["northfield"]["risk_raised"] if "depends on RegioImaging PACS Services" in r]
    assert "'Northfield General Hospital depends on RegioImaging PACS Services (rim-pacs-01" in why
    assert "dependency risk of nfh-ris-01 raised" in why and stored_raises(run.store, "northfield")["nfh-ris-01"][0] > 1
