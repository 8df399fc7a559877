"""Healthcare impact, cascades along dependencies across organisations, and `what_if`."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthswarm.errors import InputError
from healthswarm.inventory import load_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Asset, Criticality, Dependency, Inventory, Level, Organisation, Zone
from healthswarm.risk.attack_graph import build_attack_graph
from healthswarm.risk.cascade import cascade
from healthswarm.risk.impact import impact, worst_harm
from healthswarm.risk.states import Privilege
from healthswarm.risk.whatif import what_if

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo"


@pytest.fixture(scope="module")
def demo() -> Inventory:
    return load_inventory([DEMO / "ecosystem.yaml"])


def test_shared_pacs_falling_hits_every_hospital_that_depends_on_it(demo: Inventory) -> None:
    result = cascade(demo, {"rim-pacs-01": 1.0})
    per_org = result.by_organisation(demo)
    assert {"st-aurelia", "northfield", "regio-imaging"} <= set(per_org)
    assert dict(per_org["st-aurelia"])["sta-ris-01"] == pytest.approx(0.9)
    assert dict(per_org["northfield"])["nfh-ris-01"] == pytest.approx(0.9)
    assert result.via["sta-ris-01"] == "service dependency on rim-pacs-01"


def test_cascade_chains_combine_and_cycles_converge() -> None:
    org = Organisation("o", "O", "hospital")
    zone = Zone("z", "o", "Z", "clinical")
    assets = tuple(Asset(x, "o", "z", "server", x) for x in "abcd")
    deps = (Dependency("a", "b", "service"), Dependency("b", "c", "data"), Dependency("c", "b", "data"),
            Dependency("d", "b", "service"), Dependency("d", "c", "identity"))
    inv = Inventory((org,), (zone,), assets, (), deps)
    result = cascade(inv, {"c": 1.0})
    assert result.converged
    assert result.failed["b"] == pytest.approx(0.7)  # c -> b by data (the b -> c edge does not loop back)
    assert result.failed["a"] == pytest.approx(0.9 * 0.7)
    # d depends on b (service) and c (identity): independent causes
    assert result.failed["d"] == pytest.approx(1 - (1 - 0.9 * 0.7) * (1 - 0.8))


def test_impact_counts_patients_records_and_device_safety() -> None:
    pump = Asset("p", "o", "z", "infusion-pump", "p", criticality=Criticality(Level.CRITICAL, Level.LOW, Level.HIGH))
    ehr = Asset("e", "o", "z", "ehr", "e", criticality=Criticality(Level.LOW, Level.LOW, Level.LOW), records=1_000_000)
    assert impact(pump, Privilege.DISRUPT).safety == 1.0  # stopping a pump hurts the patient
    assert impact(ehr, Privilege.USER).confidentiality == pytest.approx(1.0)  # a million records
    assert impact(ehr, Privilege.DISRUPT).confidentiality == 0.0
    assert worst_harm(pump) > worst_harm(Asset("w", "o", "z", "workstation", "w"))


def test_whatif_pacs_compromise_reports_per_organisation(demo: Inventory) -> None:
    advisories, _ = load_advisories([DEMO / "advisories"])
    graph = build_attack_graph(demo, match_findings(advisories, demo.assets))
    result = what_if(graph, ["rim-pacs-01"])
    org_of = {a.id: a.organisation for a in demo.assets}
    doc = result.as_dict(org_of)
    assert {"st-aurelia", "northfield"} <= set(doc["organisations"])
    assert any(r["asset"] == "sta-ris-01" for r in doc["organisations"]["st-aurelia"]["service"])
    assert all(0 < r.p <= 1 for r in result.reach)
    # the attacker on the PACS reaches the other imaging systems of the provider
    assert any(r.asset == "rim-pet-01" and r.privilege == "admin" for r in result.reach)
    with pytest.raises(InputError, match="1 unknown asset: no-such-asset"):
        what_if(graph, ["no-such-asset"])
    with pytest.raises(InputError, match="2 unknown assets: no-such-asset, ghost"):
        what_if(graph, ["no-such-asset", "rim-pacs-01", "ghost"])


def test_live_risk_is_incremental_and_monotone(demo: Inventory) -> None:
    from healthswarm.risk.whatif import LiveRisk

    advisories, _ = load_advisories([DEMO / "advisories"])
    graph = build_attack_graph(demo, match_findings(advisories, demo.assets))
    live = LiveRisk(graph)
    first = live.add_foothold("sta-dicom-router-01")
    assert any(r.asset == "rim-pacs-01" for r in first)  # DICOM relayed by the provider's gateway
    again = live.add_foothold("sta-dicom-router-01")
    assert again == []  # nothing new from the same foothold
    full = {r.asset: r.p for r in what_if(graph, ["sta-dicom-router-01"]).reach}
    assert {r.asset: round(r.p, 9) for r in first if r.asset in full} == \
        {a: round(p, 9) for a, p in full.items() if a in {r.asset for r in first}}
