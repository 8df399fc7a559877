"""Attack-graph semantics and path search on small hand-made ecosystems with known answers."""

from __future__ import annotations

import math

import pytest

from healthswarm.errors import InputError
from healthswarm.model import (
    Asset,
    Criticality,
    Dependency,
    Finding,
    FindingStatus,
    Flow,
    Inventory,
    Level,
    Organisation,
    Zone,
)
from healthswarm.risk.aco import AcoParams, aco_campaign, aco_paths
from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph, target_states
from healthswarm.risk.campaign import exact_campaign
from healthswarm.risk.engine import EXACT_MAX_WORK, find_paths
from healthswarm.risk.impact import impact
from healthswarm.risk.likelihood import Likelihood
from healthswarm.risk.paths import k_best_paths
from healthswarm.risk.profiles import PROFILES
from healthswarm.risk.reach import ZonePolicy
from healthswarm.risk.states import Privilege, asset_node
from healthswarm.risk.vector import parse_vector

# real vectors from ICSMA advisories
RCE = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # e.g. CVE-2018-11218, p = 0.9
RCE_HARD = "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"  # AC:H, p = 0.9 * 0.44 / 0.77
RCE_HARD_UI = "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H"  # difficulty 3
PUMP_ADJACENT = "CVSS:3.0/AV:A/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H"  # adjacent network, integrity + availability
PHYSICAL = "CVSS:3.0/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # CVE-2023-30560 (BD Alaris), physical access
P_HARD = 0.9 * 0.44 / 0.77


def finding(asset: str, cve: str, vector: str, status: FindingStatus = FindingStatus.AFFECTED) -> Finding:
    return Finding(asset, "ICSMA-TEST", cve, status, cvss_vector=vector, cvss_version="3.0")


def asset(id_: str, zone: str, kind: str, org: str = "h", safety: Level = Level.NONE) -> Asset:
    return Asset(id_, org, zone, kind, id_, criticality=Criticality(safety, Level.MEDIUM, Level.MEDIUM))


def hospital(extra_assets: tuple[Asset, ...] = (), flows: tuple[Flow, ...] = (),
             deps: tuple[Dependency, ...] = ()) -> Inventory:
    """One hospital: a DMZ with two web servers, a corporate zone with a server, an IoMT zone with a pump;
    a vendor with a support machine on the Internet."""
    return Inventory(
        organisations=(Organisation("h", "H", "hospital"), Organisation("v", "V", "vendor")),
        zones=(Zone("dmz", "h", "DMZ", "internet"), Zone("corp", "h", "Corporate", "internal"),
               Zone("iomt", "h", "IoMT", "iomt"), Zone("vnet", "v", "Vendor", "internet")),
        assets=(asset("web", "dmz", "portal"), asset("web2", "dmz", "web-server"), asset("srv", "corp", "server"),
                asset("pump", "iomt", "infusion-pump", safety=Level.CRITICAL),
                asset("vws", "vnet", "workstation", org="v"), *extra_assets),
        flows=(Flow("web", "srv", "https", 443), Flow("web2", "srv", "https", 443), *flows),
        dependencies=deps,
    )


def test_vector_probabilities_and_versions() -> None:
    assert parse_vector(RCE).probability == pytest.approx(0.9)
    assert parse_vector(RCE_HARD).probability == pytest.approx(P_HARD, abs=1e-4)
    assert parse_vector(RCE_HARD_UI).difficulty == 3
    v2 = parse_vector("AV:N/AC:M/Au:S/C:P/I:P/A:C")
    assert (v2.ac, v2.pr, v2.c, v2.a) == ("H", "L", "L", "H")
    v4 = parse_vector("CVSS:4.0/AV:A/AC:L/AT:P/PR:N/UI:A/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N")
    assert (v4.av, v4.ac, v4.ui, v4.c) == ("A", "H", "R", "H")


def test_k_best_paths_known_probabilities_and_capability() -> None:
    inv = hospital()
    findings = [finding("web", "CVE-A", RCE), finding("web2", "CVE-B", RCE_HARD_UI), finding("srv", "CVE-C", RCE_HARD)]
    graph = build_attack_graph(inv, findings)
    # skill 2 (external default): the UI:R + AC:H flaw on web2 is beyond it, one path only
    result = k_best_paths(graph.view(PROFILES["external"]), ["srv"], k=3)
    assert [round(p.p, 5) for p in result.paths] == [round(0.9 * P_HARD, 5)]
    assert result.reason == "only 1 simple path within the limits"
    first = result.paths[0]
    assert first.nodes[-1] == asset_node("srv", Privilege.ADMIN)
    cves = [m["evidence"].get("cve") for m in first.moves if m["kind"] == "exploit"]
    assert cves == ["CVE-A", "CVE-C"]
    assert any(m["kind"] == "flow" and m["evidence"]["flow"] == "web>srv" for m in first.moves)
    # skill 3: the second path through web2 appears, in order of probability
    result = k_best_paths(graph.view(PROFILES["external"].with_skill(3)), ["srv"], k=3)
    p_web2 = parse_vector(RCE_HARD_UI).probability
    assert [round(p.p, 5) for p in result.paths] == [round(0.9 * P_HARD, 5), round(p_web2 * P_HARD, 5)]
    assert asset_node("web2", Privilege.ADMIN) in result.paths[1].nodes


def test_unreachable_target_is_explained_not_raised() -> None:
    inv = hospital()
    graph = build_attack_graph(inv, [finding("web", "CVE-A", RCE)])
    result = k_best_paths(graph.view(PROFILES["external"]), ["pump"], k=3)
    assert result.paths == [] and result.unreachable == ["pump"]
    assert "no target is reachable" in result.reason
    aco = aco_paths(graph.view(PROFILES["external"]), ["pump"], k=3, params=AcoParams(iterations=5))
    assert aco.paths == [] and aco.unreachable == ["pump"]


def test_physical_flaw_needs_physical_access() -> None:
    inv = hospital()
    graph = build_attack_graph(inv, [finding("web", "CVE-A", RCE), finding("pump", "CVE-2023-30560", PHYSICAL)])
    # an advanced external attacker still cannot use an AV:P flaw
    assert k_best_paths(graph.view(PROFILES["external"].with_skill(3)), ["pump"]).paths == []
    result = k_best_paths(graph.view(PROFILES["physical"]), ["pump"], k=2)
    assert result.paths[0].p == pytest.approx(0.6 * 0.9)
    assert result.paths[0].nodes[0] == asset_node("pump", Privilege.PHYSICAL)
    assert result.paths[0].moves[-1]["evidence"]["cve"] == "CVE-2023-30560"


def test_adjacent_flaw_needs_a_foothold_inside_the_zone() -> None:
    # the pump's AV:A flaw: routing into the IoMT zone is not enough, standing in it is
    inv = hospital(extra_assets=(asset("gw", "iomt", "iomt-gateway"),), flows=(Flow("srv", "gw", "https", 443),))
    findings = [finding("web", "CVE-A", RCE), finding("srv", "CVE-C", RCE), finding("pump", "CVE-P", PUMP_ADJACENT)]
    graph = build_attack_graph(inv, findings)
    assert k_best_paths(graph.view(PROFILES["external"]), ["pump"]).paths == []
    graph = build_attack_graph(inv, [*findings, finding("gw", "CVE-G", RCE)])
    paths = k_best_paths(graph.view(PROFILES["external"]), ["pump"], k=1).paths
    assert paths[0].p == pytest.approx(0.9 ** 4)
    assert [str(n) for n in paths[0].nodes][-3:] == ["gw[user]", "inside zone iomt", "pump[admin]"]


def test_vendor_access_dependency_and_control() -> None:
    inv = hospital(deps=(Dependency("srv", "vws", "vendor-access"),))
    graph = build_attack_graph(inv, [])
    result = k_best_paths(graph.view(PROFILES["vendor"]), ["srv"], k=2)
    assert [p.p for p in result.paths] == [pytest.approx(0.8)]
    assert result.paths[0].moves[-1]["kind"] == "vendor-access"
    assert result.paths[0].moves[-1]["evidence"]["dependency"] == "srv>vws"
    blocked = graph.view(PROFILES["vendor"], removed=frozenset({"vendor:v"}))
    assert k_best_paths(blocked, ["srv"]).paths == []


def test_cycles_terminate_and_paths_are_simple() -> None:
    inv = hospital(extra_assets=(asset("a", "corp", "server"), asset("b", "corp", "server")),
                   flows=(Flow("a", "b", "ssh", 22), Flow("b", "a", "ssh", 22), Flow("srv", "a", "ssh", 22)))
    findings = [finding(x, f"CVE-{x}", RCE) for x in ("web", "srv", "a", "b")]
    graph = build_attack_graph(inv, findings)
    view = graph.view(PROFILES["external"])
    result = k_best_paths(view, ["b"], k=50, time_limit=5)
    assert result.paths and all(len(set(p.nodes)) == len(p.nodes) for p in result.paths)
    probs = [p.p for p in result.paths]
    assert probs == sorted(probs, reverse=True)
    aco = aco_paths(view, ["b"], k=5, params=AcoParams(iterations=10, seed=1))
    assert aco.paths and all(len(set(p.nodes)) == len(p.nodes) for p in aco.paths)


def test_possibly_affected_and_kev_change_probabilities() -> None:
    inv = hospital()
    base = [finding("web", "CVE-A", RCE_HARD)]
    p0 = k_best_paths(build_attack_graph(inv, base).view(PROFILES["external"]), ["web"]).paths[0].p
    maybe = [finding("web", "CVE-A", RCE_HARD, FindingStatus.POSSIBLY_AFFECTED)]
    assert k_best_paths(build_attack_graph(inv, maybe).view(PROFILES["external"]), ["web"]).paths[0].p == \
        pytest.approx(p0 / 2)
    kev = build_attack_graph(inv, base, likelihood=Likelihood(kev=frozenset({"CVE-A"})))
    assert k_best_paths(kev.view(PROFILES["external"]), ["web"]).paths[0].p == pytest.approx(0.95)
    epss = build_attack_graph(inv, base, likelihood=Likelihood(epss={"CVE-A": 0.5}))
    assert k_best_paths(epss.view(PROFILES["external"]), ["web"]).paths[0].p == pytest.approx(1 - (1 - p0) * 0.5)


def test_swarm_raised_risk_multiplies_the_exploit_probability() -> None:
    base = [finding("web", "CVE-A", RCE_HARD)]
    p0 = k_best_paths(build_attack_graph(hospital(), base).view(PROFILES["external"]), ["web"]).paths[0]
    raised = hospital()
    web = next(a for a in raised.assets if a.id == "web")
    web.attributes["swarm.risk"] = "1.5"  # what swarm/exposure_store writes when peers report its model
    path = k_best_paths(build_attack_graph(raised, base).view(PROFILES["external"]), ["web"]).paths[0]
    assert path.p == pytest.approx(min(0.99, p0.p * 1.5))
    assert "raised ×1.5 by the swarm" in " ".join(m["description"] for m in path.moves)


def test_unscored_and_unknown_assets_are_handled() -> None:
    inv = hospital()
    graph = build_attack_graph(inv, [Finding("web", "ICSMA-X", "", FindingStatus.AFFECTED),
                                     finding("ghost", "CVE-Z", RCE), finding("srv", "CVE-Q", "CVSS:3.0/AV:N/AC:L")])
    paths = k_best_paths(graph.view(PROFILES["external"]), ["web"]).paths
    assert paths[0].p == pytest.approx(0.3) and "no CVSS vector" in paths[0].moves[-1]["description"]
    assert "1 finding on assets not in the inventory; ignored" in graph.notes
    # an information leak gains nothing: said in the singular, and in the plural for two
    leak = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"
    one = build_attack_graph(inv, [finding("web", "CVE-L1", leak)])
    assert any(n.startswith("1 finding without a privilege") for n in one.notes)
    two = build_attack_graph(inv, [finding("web", "CVE-L1", leak), finding("srv", "CVE-L2", leak)])
    assert any(n.startswith("2 findings without a privilege") for n in two.notes)


def test_unknown_rules_are_counted_in_the_error() -> None:
    with pytest.raises(InputError) as one:
        build_attack_graph(hospital(), [], rules=["nope"])
    assert "1 unknown rule: nope" in str(one.value)
    with pytest.raises(InputError) as two:
        build_attack_graph(hospital(), [], rules=["nope", "nada"])
    assert "2 unknown rules: nope, nada" in str(two.value)


def test_zone_policy_deny_cuts_default_reach() -> None:
    inv = hospital(extra_assets=(asset("ws", "corp", "workstation"),))
    findings = [finding("web", "CVE-A", RCE)]
    open_ = k_best_paths(build_attack_graph(inv, findings).view(PROFILES["phishing"]), ["web"]).paths
    assert open_ and open_[0].p == pytest.approx(0.3 * 0.9)
    closed = build_attack_graph(inv, findings, policy=ZonePolicy(deny=frozenset({("internal", "internet")})))
    assert k_best_paths(closed.view(PROFILES["phishing"]), ["web"]).paths == []


def test_domain_credentials_lead_to_members() -> None:
    inv = hospital(extra_assets=(asset("ws", "corp", "workstation"), asset("dc", "corp", "domain-controller"),
                                 asset("ehr", "corp", "ehr")),
                   flows=(Flow("ws", "dc", "kerberos", 88),), deps=(Dependency("ehr", "dc", "identity"),))
    local_privesc = "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
    graph = build_attack_graph(inv, [finding("ws", "CVE-L", local_privesc)])
    paths = k_best_paths(graph.view(PROFILES["phishing"]), ["ehr"], k=1).paths
    assert paths[0].p == pytest.approx(0.3 * 0.9 * 0.35 * 0.95)
    assert [m["kind"] for m in paths[0].moves if m["kind"] in ("exploit", "domain")] == ["exploit", "domain", "domain"]


def ehr_behind_servers() -> AttackGraph:
    """The hospital with an EHR (c) two exploits behind srv, through server a or b."""
    inv = hospital(extra_assets=(asset("a", "corp", "server"), asset("b", "corp", "server"),
                                 asset("c", "corp", "ehr")),
                   flows=(Flow("srv", "a", "ssh", 22), Flow("srv", "b", "rdp", 3389), Flow("a", "c", "https", 443),
                          Flow("b", "c", "https", 443)))
    findings = [finding("web", "CVE-A", RCE), finding("web2", "CVE-B", RCE_HARD), finding("srv", "CVE-C", RCE_HARD),
                finding("a", "CVE-D", RCE_HARD), finding("b", "CVE-E", RCE), finding("c", "CVE-F", RCE_HARD)]
    return build_attack_graph(inv, findings)


def test_aco_matches_exact_on_small_instances() -> None:
    graph = ehr_behind_servers()
    view = graph.view(PROFILES["external"])
    exact = k_best_paths(view, ["c"], k=1).paths[0].p
    for seed in (1, 2, 3):
        aco = aco_paths(view, ["c"], k=3, params=AcoParams(seed=seed, iterations=40))
        assert aco.paths[0].p >= 0.95 * exact
    prizes = {"c": 1.0, "a": 0.5, "b": 0.3, "pump": 1.0}
    for budget in (2, 4, 6):
        best = exact_campaign(view, prizes, budget, max_steps=6, max_edges=20)
        assert best is not None and best.cost <= budget
        ants = aco_campaign(view, prizes, AcoParams(seed=3, budget=budget, max_steps=6, max_edges=20))
        assert ants.cost <= budget
        assert ants.value >= 0.95 * best.value - 1e-12
        assert ants.value <= best.value + 1e-9  # the exact one is an upper bound
    # valued by the state reached (admin worth more than disrupt), still within 5 %
    states = {s: impact(graph.facts.assets[t], Privilege(s.privilege)).harm for t in prizes for s in target_states(t)}
    best = exact_campaign(view, prizes, 4, max_steps=6, max_edges=20, state_prizes=states)
    ants = aco_campaign(view, prizes, AcoParams(seed=5, budget=4, max_steps=6, max_edges=20), state_prizes=states)
    assert best is not None and best.value * 0.95 - 1e-12 <= ants.value <= best.value + 1e-9


def test_paths_that_differ_only_in_bookkeeping_are_one_distinct_attack() -> None:
    # two phished workstations, one server to exploit: two paths, one attack
    inv = hospital(extra_assets=(asset("ws1", "corp", "workstation"), asset("ws2", "corp", "workstation")))
    view = build_attack_graph(inv, [finding("srv", "CVE-C", RCE)]).view(PROFILES["phishing"])
    every = k_best_paths(view, ["srv"], k=5)
    assert len(every.paths) == 2 and {p.nodes[0].ref for p in every.paths} == {"ws1", "ws2"}
    distinct = k_best_paths(view, ["srv"], k=5, distinct=True)
    assert [p.p for p in distinct.paths] == [every.paths[0].p] and "distinct attacks" in distinct.method
    aco = aco_paths(view, ["srv"], k=5, params=AcoParams(seed=1, iterations=20))
    assert [p.p for p in aco.paths] == [every.paths[0].p]


def test_auto_asks_yen_for_distinct_attacks_while_moves_times_k_is_small_and_the_ants_beyond() -> None:
    inv = hospital(extra_assets=(asset("ws1", "corp", "workstation"), asset("ws2", "corp", "workstation")))
    view = build_attack_graph(inv, [finding("srv", "CVE-C", RCE)]).view(PROFILES["phishing"])
    moves = view.number_of_edges()
    small = find_paths(view, ["srv"], k=5, max_steps=None, time_limit=10)
    # the two phished workstations are bookkeeping: one attack, as the ants would count it
    assert small.method.startswith("exact") and "distinct attacks" in small.method and len(small.paths) == 1
    assert (f"{moves} moves in the attacker's view (3 entry moves included) × k = 5 is {moves * 5} "
            f"(<= {EXACT_MAX_WORK})") in small.reason
    k = EXACT_MAX_WORK // moves + 1  # the smallest k past the threshold on this view
    large = find_paths(view, ["srv"], k=k, max_steps=None, time_limit=10, params=AcoParams(seed=1, iterations=20))
    assert large.method.startswith("ACO") and f"(> {EXACT_MAX_WORK})" in large.reason
    assert [p.p for p in large.paths] == [p.p for p in small.paths]
    edge = find_paths(view, ["srv"], k=k - 1, max_steps=None, time_limit=10)
    assert edge.method.startswith("exact")


def test_aco_finds_the_k_best_attacks_on_a_target_behind_another() -> None:
    # c lies behind srv: an ant that stopped at the first target it met never reached c
    view = ehr_behind_servers().view(PROFILES["external"])
    exact = k_best_paths(view, ["srv", "c"], k=6, distinct=True)
    assert len(exact.paths) == 6 and {p.target for p in exact.paths} == {"srv", "c"}
    for seed in (1, 2, 3):
        aco = aco_paths(view, ["srv", "c"], k=6, params=AcoParams(seed=seed))
        assert [round(p.p, 9) for p in aco.paths] == [round(p.p, 9) for p in exact.paths]


def test_aco_is_deterministic_for_a_seed() -> None:
    inv = hospital()
    graph = build_attack_graph(inv, [finding("web", "CVE-A", RCE), finding("web2", "CVE-B", RCE_HARD),
                                     finding("srv", "CVE-C", RCE_HARD)])
    view = graph.view(PROFILES["external"])
    runs = [aco_paths(view, ["srv"], params=AcoParams(seed=11, iterations=10)) for _ in range(2)]
    assert [p.nodes for p in runs[0].paths] == [p.nodes for p in runs[1].paths]
    assert math.isclose(runs[0].paths[0].p, 0.9 * P_HARD)
