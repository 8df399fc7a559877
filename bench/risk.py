"""Benchmark of the risk engine on generated healthcare ecosystems with real ICSMA findings.

    python bench/risk.py [--quick]

Ecosystems of 500 to 50,000 assets (--quick: up to 5,000): hospitals of about 1,000 assets (zones:
DMZ, corporate, clinical and IoMT wards, management), an imaging (PACS) provider and a laboratory per
five hospitals, one device vendor with remote access. Device models are drawn from the demo
ecosystem, so the real ICSMA advisories in ../shared/data/csaf-icsma match them (10 % have an
unknown version: possibly affected). Measured per size: findings matched and the generation (set-up,
reported apart), attack-graph build time (median of 5; target: 10,000 assets in <= 10 s), exact
(Yen, networkx shortest_simple_paths) vs ACO: the k = 10 most likely distinct attacks (both count paths
that differ only in bookkeeping moves once) on 5 random instances per size (seeded: a profile, an
origin hospital, one target there and one anywhere among the most harmful assets): CPU seconds and the
ACO/exact ratios of the best path, of the sum of the 10 and of the 10th, p50/p99 over the instances,
and how many instances have 10 distinct attacks at all; incremental foothold updates sampled over 60
random footholds, p50/p99 and the assets each changed, against a full recompute for the same footholds
(target p99 <= 1 s);
mitigation MILP vs greedy and ACO (optimality gap and time); every per-size time is CPU seconds of this
process (the machine is shared), the 1-minute load average is recorded at start and end;
then the exact campaign (enumeration + MILP) vs the ACO campaign on the demo ecosystem
and a generated 500-asset one (--quick leaves out the instance where the exact MILP runs 120 s).

The crossover (`--only crossover` runs it alone and keeps the other sections of the JSON, labelled
recorded): on 250 to 2,000 assets and k = 3, 5, 10, the same seeded instances, Yen on distinct attacks
(what `risk.engine.find_paths` runs; each instance the median of 5 runs, CPU seconds) p50/p99 over the
instances against the budget of an interactive question (p99 <= 1 s), plain Yen beside it, and the
ants (seeds 1-5) against Yen's optimum; it reports the largest moves × k within the budget, the
smallest over it, whether that criterion (and moves alone) separates the two, and whether the
engine's EXACT_MAX_WORK lies between them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx

from common import cpu_timed, peak_rss_mib, report, timed
from healthswarm.inventory import load_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Asset, Criticality, Dependency, Flow, Inventory, Level, Organisation, Zone
from healthswarm.risk.aco import AcoParams, aco_campaign, aco_paths
from healthswarm.risk.attack_graph import SOURCE, AttackGraph, build_attack_graph, target_states
from healthswarm.risk.campaign import exact_campaign
from healthswarm.risk.engine import EXACT_MAX_WORK
from healthswarm.risk.impact import impact, worst_harm
from healthswarm.risk.mitigate import build_model, solve, solve_aco, solve_greedy
from healthswarm.risk.paths import k_best_paths
from healthswarm.risk.profiles import PROFILES
from healthswarm.risk.states import COMPROMISE, Privilege
from healthswarm.risk.whatif import LiveRisk

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "healthswarm" / "demo"
SHARED_ADVISORIES = ROOT.parent / "shared" / "data" / "csaf-icsma"
HOSPITAL_SIZE = 1000
COMPROMISED = {p.value for p in COMPROMISE}
WARD = 250  # devices or clinical systems per ward zone
INSTANCES = 5  # random path-search instances per size
FOOTHOLDS = 60  # sampled footholds per size for the incremental update
CROSSOVER_SIZES = (250, 500, 750, 1000, 2000)  # where Yen (distinct attacks) stops fitting BUDGET_S
CROSSOVER_KS = (3, 5, 10)  # the API's default k, the CLI's, the bench's
RUNS = 5  # runs of each search per instance in the crossover (Yen: median; ACO: one seed each)
BUDGET_S = 1.0  # CPU seconds at p99 an interactive path question may take (docs/risk.md, "Which method")

# share of a hospital's assets by kind (the rest are single systems)
MIX = {"workstation": 0.2, "clinical-workstation": 0.22, "infusion-pump": 0.18, "patient-monitor": 0.12,
       "ventilator": 0.03, "modality": 0.03, "server": 0.12, "medical-device": 0.02, "implant-programmer": 0.01,
       "anaesthesia-machine": 0.01, "lab-analyser": 0.01}
ZONE_OF = {"workstation": "corp", "server": "corp", "clinical-workstation": "clin", "modality": "clin",
           "medical-device": "clin", "implant-programmer": "clin", "lab-analyser": "clin", "infusion-pump": "iomt",
           "patient-monitor": "iomt", "ventilator": "iomt", "anaesthesia-machine": "iomt"}
SINGLE = [("dc1", "domain-controller", "corp"), ("dc2", "domain-controller", "corp"), ("fs", "file-server", "corp"),
          ("mail", "mail-server", "dmz"), ("vpn", "vpn", "dmz"), ("fw", "firewall", "dmz"), ("portal", "portal", "dmz"),
          ("jump", "jump-host", "mgmt"), ("backup", "backup-server", "mgmt"), ("ehr", "ehr", "clin0"),
          ("his", "his", "clin0"), ("ris", "ris", "clin0"), ("hl7", "interface-engine", "clin0"),
          ("fhir", "fhir-server", "clin0"), ("dicom", "dicom-router", "clin0"),
          ("pumpsrv", "medical-device-server", "clin0"), ("pharmacy", "pharmacy-system", "clin0"),
          ("iomtgw", "iomt-gateway", "iomt0")]
CRIT = {"domain-controller": (0, 4, 4), "ehr": (3, 4, 4), "his": (2, 4, 4), "pacs": (2, 3, 4), "ris": (2, 3, 3),
        "infusion-pump": (4, 1, 3), "ventilator": (4, 1, 4), "patient-monitor": (3, 1, 3), "modality": (2, 2, 3),
        "medical-device-server": (3, 2, 3), "pharmacy-system": (3, 3, 3), "implant-programmer": (4, 2, 2),
        "anaesthesia-machine": (4, 1, 4), "lis": (2, 3, 3), "iomt-gateway": (3, 2, 3)}
RECORDS = {"ehr": 400_000, "his": 450_000, "pacs": 900_000, "ris": 150_000, "lis": 300_000, "portal": 100_000}


class Builder:
    def __init__(self, rng: random.Random, models: dict[str, list[tuple[str, str, str]]]) -> None:
        self.rng, self.models = rng, models
        self.orgs: list[Organisation] = []
        self.zones: list[Zone] = []
        self.assets: list[Asset] = []
        self.flows: list[Flow] = []
        self.deps: list[Dependency] = []

    def zone(self, zid: str, org: str, exposure: str) -> str:
        self.zones.append(Zone(zid, org, zid, exposure))
        return zid

    def asset(self, aid: str, org: str, zone: str, kind: str) -> str:
        vendor, product, version = self.rng.choice(self.models.get(kind) or [("", "", "")])
        if version and self.rng.random() < 0.1:
            version = ""  # unknown version: possibly affected
        s, c, a = CRIT.get(kind, (0, 2, 2))
        self.assets.append(Asset(aid, org, zone, kind, aid, vendor, product, version,
                                 criticality=Criticality(Level(s), Level(c), Level(a)), records=RECORDS.get(kind)))
        return aid

    def hospital(self, h: int, size: int, provider: str, lab: str, vendor_ws: str) -> None:
        org, rng = f"h{h}", self.rng
        self.orgs.append(Organisation(org, f"Hospital {h}", "hospital"))
        z = {e: self.zone(f"{org}-{e}", org, x) for e, x in
             (("dmz", "internet"), ("corp", "internal"), ("mgmt", "management"))}
        total = sum(MIX.values())
        n_kind = {k: max(1, round(size * share / total)) for k, share in MIX.items()}
        n_clin = sum(n for k, n in n_kind.items() if ZONE_OF[k] == "clin")
        n_iomt = sum(n for k, n in n_kind.items() if ZONE_OF[k] == "iomt")
        for w in range(max(1, -(-n_clin // WARD))):
            z[f"clin{w}"] = self.zone(f"{org}-clin{w}", org, "clinical")
        for w in range(max(1, -(-n_iomt // WARD))):
            z[f"iomt{w}"] = self.zone(f"{org}-iomt{w}", org, "iomt")
        one = {key: self.asset(f"{org}-{key}", org, z[zone], kind) for key, kind, zone in SINGLE}
        counters: dict[str, int] = defaultdict(int)
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, n in n_kind.items():
            for i in range(n):
                base = ZONE_OF[kind]
                zone = z[base] if base == "corp" else z[f"{base}{counters[base] // WARD}"]
                counters[base] += 1
                by_kind[kind].append(self.asset(f"{org}-{kind}-{i}", org, zone, kind))
        F, D = self.flows.append, self.deps.append
        for ws in by_kind["workstation"] + by_kind["clinical-workstation"]:
            F(Flow(ws, one["dc1"], "kerberos", 88))
            F(Flow(ws, one["fs"], "smb", 445))
            if rng.random() < 0.02:
                F(Flow(ws, rng.choice(by_kind["server"]), "rdp", 3389))
        for ws in rng.sample(by_kind["workstation"], max(1, len(by_kind["workstation"]) // 20)):
            F(Flow(one["mail"], ws, "smtp", 25))
        for cws in by_kind["clinical-workstation"]:
            F(Flow(cws, one["ehr"], "https", 443))
        for srv in by_kind["server"]:
            D(Dependency(srv, one["dc1"], "identity"))
        for pump in by_kind["infusion-pump"]:
            F(Flow(pump, one["pumpsrv"], "https", 443))
            D(Dependency(pump, one["pumpsrv"], "service"))
        for dev in by_kind["patient-monitor"] + by_kind["ventilator"] + by_kind["anaesthesia-machine"]:
            F(Flow(dev, one["iomtgw"], "tcp", 24105))
        for mod in by_kind["modality"]:
            F(Flow(mod, one["dicom"], "dicom", 104))
        for src, dst, proto in ((one["iomtgw"], one["ehr"], "hl7v2"), (one["his"], one["hl7"], "hl7v2"),
                                (one["hl7"], one["ehr"], "hl7v2"), (one["hl7"], one["ris"], "hl7v2"),
                                (one["fhir"], one["ehr"], "fhir"), (one["portal"], one["fhir"], "fhir"),
                                (one["jump"], one["pumpsrv"], "rdp"), (one["vpn"], one["jump"], "rdp"),
                                (one["dicom"], f"{provider}-dicomgw", "dicom"), (one["hl7"], f"{lab}-hl7", "hl7v2"),
                                (f"{lab}-hl7", one["hl7"], "hl7v2"), (vendor_ws, one["vpn"], "vpn")):
            F(Flow(src, dst, proto))
        for src, dst, kind in ((one["ehr"], one["dc1"], "identity"), (one["ehr"], one["hl7"], "data"),
                               (one["pumpsrv"], one["dc1"], "identity"), (one["iomtgw"], one["ehr"], "data"),
                               (one["pharmacy"], one["ehr"], "data"), (one["ris"], f"{provider}-pacs", "service"),
                               (one["ehr"], f"{lab}-lis", "data"), (one["pumpsrv"], vendor_ws, "vendor-access")):
            D(Dependency(src, dst, kind))

    def provider(self, p: int) -> str:
        org = f"img{p}"
        self.orgs.append(Organisation(org, f"Imaging {p}", "imaging-centre"))
        part, clin = self.zone(f"{org}-partner", org, "partner"), self.zone(f"{org}-clin", org, "clinical")
        gw, pacs = self.asset(f"{org}-dicomgw", org, part, "dicom-router"), self.asset(f"{org}-pacs", org, clin, "pacs")
        self.asset(f"{org}-vna", org, clin, "server")
        dc = self.asset(f"{org}-dc", org, clin, "domain-controller")
        self.flows += [Flow(gw, pacs, "dicom", 104), Flow(pacs, f"{org}-vna", "dicom", 104)]
        self.deps += [Dependency(pacs, f"{org}-vna", "data"), Dependency(pacs, dc, "identity")]
        for i in range(6):
            m = self.asset(f"{org}-mod-{i}", org, clin, "modality")
            self.flows.append(Flow(m, pacs, "dicom", 104))
        return org

    def lab(self, n: int) -> str:
        org = f"lab{n}"
        self.orgs.append(Organisation(org, f"Lab {n}", "laboratory"))
        part, labz = self.zone(f"{org}-partner", org, "partner"), self.zone(f"{org}-lab", org, "clinical")
        self.asset(f"{org}-hl7", org, part, "interface-engine")
        lis = self.asset(f"{org}-lis", org, labz, "lis")
        self.flows.append(Flow(f"{org}-lis", f"{org}-hl7", "hl7v2"))
        for i in range(4):
            a = self.asset(f"{org}-analyser-{i}", org, labz, "lab-analyser")
            self.flows.append(Flow(a, lis, "hl7v2"))
            self.deps.append(Dependency(lis, a, "data"))
        return org


def generate(n_assets: int, seed: int = 2026) -> Inventory:
    demo = load_inventory([DEMO / "ecosystem.yaml"])
    models: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for a in demo.assets:
        models[a.kind].append((a.vendor, a.product, a.version))
    b = Builder(random.Random(seed), models)
    b.orgs.append(Organisation("vendor", "Device vendor", "vendor"))
    vendor_ws = b.asset("vendor-support", "vendor", b.zone("vendor-net", "vendor", "internet"), "workstation")
    n_hosp = max(1, round(n_assets / HOSPITAL_SIZE))
    size = n_assets // n_hosp
    providers = [b.provider(p) for p in range(max(1, -(-n_hosp // 5)))]
    labs = [b.lab(n) for n in range(max(1, -(-n_hosp // 5)))]
    for h in range(n_hosp):
        b.hospital(h, size - len(SINGLE), providers[h // 5], labs[h // 5], vendor_ws)
    return Inventory(tuple(b.orgs), tuple(b.zones), tuple(b.assets), tuple(b.flows), tuple(b.deps))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def instances(inv: Inventory, graph: AttackGraph, n: int, count: int) -> list[tuple[str, str, list[str], Any]]:
    """`count` search instances drawn for this size (seeded by it): a profile, the hospital it starts in, and
    two targets among the assets that attacker can compromise at all (graph reachability from its entries, not
    probability), drawn from the more harmful half of them: one in the origin hospital, one elsewhere
    (another hospital, a shared imaging provider or laboratory) when there is one."""
    rng = random.Random(10_000 + n)
    hospitals = sorted(o.id for o in inv.organisations if o.kind == "hospital")
    assets = graph.facts.assets
    out = []
    while len(out) < count:
        prof, org = rng.choice(["phishing", "external", "vendor"]), rng.choice(hospitals)
        view = graph.view(PROFILES[prof], org)
        reach = sorted({node.ref for node in nx.descendants(view, SOURCE)
                        if node.kind == "asset" and node.privilege in COMPROMISED} if SOURCE in view else set())
        ranked = sorted(reach, key=lambda a: (-worst_harm(assets[a]), a))[: max(2, len(reach) // 2)]
        home = [a for a in ranked if assets[a].organisation == org]
        away = [a for a in ranked if assets[a].organisation != org]
        if not ranked:
            continue
        targets = sorted({rng.choice(home or ranked), rng.choice(away or ranked)})
        out.append((prof, org, targets, view))
    return out


def measure(n: int, advisories: list, figures: dict, rows: list, small: bool) -> None:
    """One ecosystem size: graph build (median of 5), exact vs ACO k = 10 on seeded random instances, and
    incremental foothold updates over many sampled footholds (p50/p99) against a full recompute."""
    runs = 5
    inv, t_generate = cpu_timed(lambda: generate(n))
    findings, t_match = cpu_timed(lambda: match_findings(advisories, inv.assets))
    builds = []
    graph = None
    for _ in range(runs):
        graph, seconds = cpu_timed(lambda: build_attack_graph(inv, findings))
        builds.append(seconds)
    assert graph is not None
    t_build = statistics.median(builds)
    f: dict = {"assets": len(inv.assets), "findings": len(findings), "states": graph.node_count,
               "moves": graph.edge_count, "setup": {"generate_s": round(t_generate, 3), "match_s": round(t_match, 3)},
               "graph_build_s": round(t_build, 3), "graph_build_runs_s": [round(b, 3) for b in builds]}
    # exact (Yen, networkx shortest_simple_paths) vs ACO, k = 10, on random origins and targets; both count
    # distinct attacks (paths that differ only in bookkeeping moves, such as which phished workstation of a
    # zone is the foothold, are one attack), so the ratios compare like with like
    k = 10
    searches = []
    drawn, t_draw = cpu_timed(lambda: instances(inv, graph, n, INSTANCES))
    f["setup"]["draw_instances_s"] = round(t_draw, 3)
    for i, (prof, org, targets, view) in enumerate(drawn):
        exact, t_exact = cpu_timed(lambda v=view, t=targets: k_best_paths(v, t, k=k, max_steps=8, distinct=True,
                                                                           time_limit=120, max_candidates=100_000))
        ants, t_aco = cpu_timed(lambda v=view, t=targets, s=i: aco_paths(v, t, k=k, params=AcoParams(
            seed=s + 1, time_limit=60)))
        e_p, a_p = [x.p for x in exact.paths], [x.p for x in ants.paths]
        entry = {"profile": prof, "origin": org, "targets": targets, "moves_in_view": view.number_of_edges(),
                 "exact_cpu_s": round(t_exact, 4), "aco_cpu_s": round(t_aco, 4), "exact_paths": len(e_p),
                 "aco_paths": len(a_p), "exact_complete": exact.complete, "aco_stopped": ants.reason,
                 "exact_best_p": round(e_p[0], 6) if e_p else 0.0, "aco_best_p": round(a_p[0], 6) if a_p else 0.0}
        if e_p:
            entry["best_ratio"] = round((a_p[0] if a_p else 0.0) / e_p[0], 4)
            entry["top_k_sum_ratio"] = round(sum(a_p[:k]) / sum(e_p[:k]), 4)
            entry["kth_ratio"] = round((a_p[len(e_p) - 1] if len(a_p) >= len(e_p) else 0.0) / e_p[-1], 4)
        searches.append(entry)
    reached = [s for s in searches if "best_ratio" in s]

    def spread(key: str, among: list[dict]) -> dict[str, float | None]:
        values = [s[key] for s in among]
        return {"p50": _pct(values, 50) if values else None, "p99": _pct(values, 99) if values else None,
                "min": min(values, default=None), "max": max(values, default=None)}

    f["path_search"] = {"k": k, "max_steps": 8, "identity": "distinct attacks (paths.attack_key), exact and ACO",
                        "time": "CPU seconds of this process", "instances": searches,
                        "reachable_instances": len(reached),
                        "instances_with_k_attacks": sum(s["exact_paths"] >= k for s in searches),
                        "best_ratio": spread("best_ratio", reached),
                        "top_k_sum_ratio": spread("top_k_sum_ratio", reached),
                        "kth_ratio": spread("kth_ratio", reached),
                        "exact_cpu_s": spread("exact_cpu_s", searches), "aco_cpu_s": spread("aco_cpu_s", searches),
                        "best_ratio_min": min((s["best_ratio"] for s in reached), default=None),
                        "top_k_sum_ratio_median": statistics.median(s["top_k_sum_ratio"] for s in reached)
                        if reached else None}
    # incremental foothold updates, sampled over many footholds (seeded), against a full recompute
    rng = random.Random(20_000 + n)
    footholds = rng.sample([a.id for a in inv.assets], FOOTHOLDS)
    live = LiveRisk(graph)
    times, changed = [], []
    for asset in footholds:
        got, seconds = cpu_timed(lambda a=asset: live.add_foothold(a))
        times.append(seconds)
        changed.append(len(got))

    def full() -> None:  # what the incremental update saves: rebuild everything for the same footholds
        again = LiveRisk(build_attack_graph(inv, findings))
        for asset in footholds:
            again.add_foothold(asset)

    fulls = [cpu_timed(full)[1] for _ in range(3)]
    f["incremental"] = {"footholds": len(footholds), "p50_s": round(_pct(times, 50), 5),
                        "p99_s": round(_pct(times, 99), 5),
                        "max_s": round(max(times), 5), "changed_assets_p50": _pct(changed, 50),
                        "changed_assets_p99": _pct(changed, 99), "changed_assets_max": max(changed),
                        "full_recompute_s_median_of_3": round(statistics.median(fulls), 3),
                        "full_recompute_covers": f"graph build + {len(footholds)} footholds"}
    if small:
        profiles = [PROFILES["phishing"], PROFILES["external"], PROFILES["vendor"], PROFILES["physical"],
                    PROFILES["insider"]]
        pool = [a for a in inv.assets if a.organisation in ("h0", "h1", "img0")]
        crown = [a.id for a in sorted(pool, key=lambda a: (-worst_harm(a), a.id))[:16]] + ["img0-pacs", "h0-ehr"]
        model, f["mitigation_model_s"] = cpu_timed(lambda: build_model(graph, profiles, crown, k=8))
        f["mitigation_controls"], f["mitigation_paths"] = len(model.controls), sum(len(g[3]) for g in model.groups)
        f["mitigation"] = []
        for budget in (5.0, 10.0, 20.0, 40.0):
            plan, t_milp = cpu_timed(lambda b=budget: solve(graph, model, b, "milp"))
            entry = {"budget": budget, "baseline_risk": round(plan.baseline, 6),
                     "milp_residual": round(plan.residual, 6), "milp_optimal": plan.optimal, "milp_s": round(t_milp, 4)}
            for name, heuristic in (("greedy", solve_greedy), ("aco", solve_aco)):
                found, t_h = cpu_timed(lambda b=budget, h=heuristic: h(model, b))
                res = model.residual(found)
                entry |= {f"{name}_residual": round(res, 6), f"{name}_s": round(t_h, 4),
                          f"{name}_gap": round((res - plan.residual) / plan.residual, 4) if plan.residual > 1e-12
                          else (0.0 if res <= 1e-12 else None)}
            f["mitigation"].append(entry)
        for key in ("greedy_gap", "aco_gap", "milp_s", "greedy_s", "aco_s"):
            f[f"{key}_max"] = max((m[key] if m[key] is not None else float("inf")) for m in f["mitigation"])
    figures[str(n)] = f
    ps, inc = f["path_search"], f["incremental"]
    quality = (f"{ps['best_ratio']['min']} / {ps['top_k_sum_ratio']['p50']} / {ps['top_k_sum_ratio']['min']}"
               if ps["reachable_instances"] else "no reachable instance")
    rows += [(f"{n:,} assets: findings / states / moves", f"{len(findings):,} / {f['states']:,} / {f['moves']:,}"),
             (f"{n:,}: graph build, median of {runs} (target 10k <= 10 s)", f"{t_build:.2f} s"),
             (f"{n:,}: exact / ACO k=10, CPU s p50 (p99) over {len(searches)} random instances",
              f"{ps['exact_cpu_s']['p50']:.2f} ({ps['exact_cpu_s']['p99']:.2f}) / "
              f"{ps['aco_cpu_s']['p50']:.2f} ({ps['aco_cpu_s']['p99']:.2f})"),
             (f"{n:,}: ACO/exact best-path min / top-10 sum p50 / min ({ps['reachable_instances']} reachable, "
              f"{ps['instances_with_k_attacks']} with >= 10 attacks)", quality),
             (f"{n:,}: incremental p50 / p99 over {inc['footholds']} footholds (changed assets p50 / p99)",
              f"{inc['p50_s'] * 1000:.1f} / {inc['p99_s'] * 1000:.1f} ms "
              f"({inc['changed_assets_p50']} / {inc['changed_assets_p99']})"),
             (f"{n:,}: full recompute for the same footholds (median of 3)",
              f"{inc['full_recompute_s_median_of_3']:.2f} s")]
    if small:
        rows.append((f"{n:,}: mitigation, {f['mitigation_controls']} controls: MILP / greedy / ACO time",
                     f"{f['milp_s_max']:.2f} / {f['greedy_s_max']:.2f} / {f['aco_s_max']:.2f} s"))
        rows.append((f"{n:,}: worst optimality gap greedy / ACO",
                     f"{f['greedy_gap_max']:.1%} / {f['aco_gap_max']:.1%}"))


def crossover(advisories: list, figures: dict, rows: list) -> None:
    """Where `find_paths` should stop asking Yen: per size and k, the CPU seconds of Yen (distinct attacks, what
    find_paths runs; each instance the median of RUNS runs) p50/p99 over the instances, against the budget of an
    interactive question (BUDGET_S at p99), and the quality of the ants (RUNS seeds) against Yen's optimum. Yen
    on plain paths (bookkeeping variants counted as paths: what find_paths ran before) is timed beside it."""
    load_start = round(os.getloadavg()[0], 2)
    groups = []
    for n in CROSSOVER_SIZES:
        inv = generate(n)
        graph = build_attack_graph(inv, match_findings(advisories, inv.assets))
        drawn = instances(inv, graph, n, INSTANCES)
        for k in CROSSOVER_KS:
            searches = []
            for prof, org, targets, view in drawn:
                def yen(distinct: bool, v: Any = view, t: list[str] = targets, kk: int = k) -> Any:
                    return k_best_paths(v, t, k=kk, max_steps=8, distinct=distinct, time_limit=120,
                                        max_candidates=100_000)
                exact_runs = [cpu_timed(lambda: yen(True)) for _ in range(RUNS)]
                plain_runs = [cpu_timed(lambda: yen(False))[1] for _ in range(RUNS)]
                ant_runs = [cpu_timed(lambda s=seed, v=view, t=targets, kk=k: aco_paths(
                    v, t, k=kk, params=AcoParams(seed=s, time_limit=60))) for seed in range(1, RUNS + 1)]
                exact = exact_runs[0][0]
                e_p = [x.p for x in exact.paths]
                entry = {"profile": prof, "origin": org, "targets": targets, "moves_in_view": view.number_of_edges(),
                         "exact_paths": len(e_p), "exact_complete": exact.complete,
                         "exact_cpu_s_runs": [round(t, 4) for _, t in exact_runs],
                         "exact_cpu_s": round(statistics.median(t for _, t in exact_runs), 4),
                         "plain_yen_cpu_s": round(statistics.median(plain_runs), 4),
                         "aco_cpu_s_runs": [round(t, 4) for _, t in ant_runs],
                         "aco_cpu_s": round(statistics.median(t for _, t in ant_runs), 4)}
                if e_p:  # per seed: the ants' best path and their k paths against Yen's
                    best = [(a.paths[0].p if a.paths else 0.0) / e_p[0] for a, _ in ant_runs]
                    total = [sum(x.p for x in a.paths[:k]) / sum(e_p[:k]) for a, _ in ant_runs]
                    entry |= {"aco_best_ratio_min": round(min(best), 4),
                              "aco_sum_ratio_median": round(statistics.median(total), 4),
                              "aco_sum_ratio_min": round(min(total), 4)}
                searches.append(entry)
            reached = [s for s in searches if "aco_best_ratio_min" in s]
            moves = statistics.median(s["moves_in_view"] for s in searches)
            exact_s = [s["exact_cpu_s"] for s in searches]
            aco_s = [s["aco_cpu_s"] for s in searches]
            plain_s = [s["plain_yen_cpu_s"] for s in searches]
            groups.append({
                "assets": len(inv.assets), "k": k, "moves_in_view": moves, "moves_x_k": moves * k,
                "exact_cpu_s": {"p50": _pct(exact_s, 50), "p99": _pct(exact_s, 99)},
                "plain_yen_cpu_s": {"p50": _pct(plain_s, 50), "p99": _pct(plain_s, 99)},
                "aco_cpu_s": {"p50": _pct(aco_s, 50), "p99": _pct(aco_s, 99)},
                "exact_complete": sum(s["exact_complete"] for s in searches),
                "reachable_instances": len(reached),
                "aco_best_ratio_min": min((s["aco_best_ratio_min"] for s in reached), default=None),
                "aco_sum_ratio_p50": _pct([s["aco_sum_ratio_median"] for s in reached], 50) if reached else None,
                "aco_sum_ratio_min": min((s["aco_sum_ratio_min"] for s in reached), default=None),
                "exact_within_budget": _pct(exact_s, 99) <= BUDGET_S, "instances": searches})
        print(f"crossover: measured {n} assets", file=sys.stderr, flush=True)
    figures["crossover"] = {
        "budget": f"Yen's CPU seconds p99 over the instances <= {BUDGET_S} s (an interactive path question)",
        "runs": f"each instance: the median of {RUNS} runs of Yen; the ants with seeds 1..{RUNS} (time: median, "
                "quality: per seed)", "p99": f"over {INSTANCES} instances, so the slowest",
        "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "time": "CPU seconds of this process", "groups": groups, **crossover_summary(groups, EXACT_MAX_WORK)}
    c = figures["crossover"]
    largest_fit, smallest_miss = c["largest_moves_x_k_within_budget"], c["smallest_moves_x_k_over_budget"]
    for g in groups:
        rows.append((f"crossover {g['assets']:,} assets, k={g['k']} ({g['moves_in_view']:,.0f} moves × k = "
                     f"{g['moves_x_k']:,.0f}): Yen / plain Yen / ACO CPU s p50 (p99)",
                     f"{g['exact_cpu_s']['p50']:.2f} ({g['exact_cpu_s']['p99']:.2f}) / "
                     f"{g['plain_yen_cpu_s']['p50']:.2f} ({g['plain_yen_cpu_s']['p99']:.2f}) / "
                     f"{g['aco_cpu_s']['p50']:.2f} ({g['aco_cpu_s']['p99']:.2f})"))
        rows.append((f"crossover {g['assets']:,} assets, k={g['k']}: ACO/Yen best min, sum p50 / min",
                     f"{g['aco_best_ratio_min']} / {g['aco_sum_ratio_p50']} / {g['aco_sum_ratio_min']}"))
    rows.append((f"crossover: moves × k, largest within {BUDGET_S} s p99 / smallest over / largest with none over "
                 "at or below it", f"{largest_fit} / {smallest_miss} / {c['largest_safe_moves_x_k']} (separates: "
                 f"moves × k {c['moves_x_k_separates']}, moves alone {c['moves_alone_separates']})"))
    rows.append(("crossover: 1-minute load average start / end",
                 f"{c['load_average_1min']['start']} / {c['load_average_1min']['end']}"))
    ants = c["aco_above_threshold"]
    rows.append((f"crossover: engine EXACT_MAX_WORK {EXACT_MAX_WORK:,}: no group at or below it over budget / "
                 "groups above it Yen would have fitted",
                 f"{c['engine_threshold_safe']} / {c['groups_within_budget_above_threshold']}"))
    rows.append(("crossover: ACO above EXACT_MAX_WORK: best min, sum p50 min / min, CPU s p99 max",
                 f"{ants['best_ratio_min']}, {ants['sum_ratio_p50_min']} / {ants['sum_ratio_min']}, "
                 f"{ants['aco_cpu_s_p99_max']}"))


def campaign(advisories: list, figures: dict, rows: list, quick: bool = False) -> None:
    """Exact (enumeration + MILP) vs ACO campaign on the demo ecosystem and a generated 500-asset one.
    The exact MILP gets 120 s; an answer it could not prove optimal is marked and not used for the ratio."""
    demo = load_inventory([DEMO / "ecosystem.yaml"])
    gen = generate(500)
    gen_targets = ("img0-pacs", "h0-ehr", "h0-dc1", "h0-pharmacy", "h0-ventilator-0", "h0-infusion-pump-0",
                   "h0-patient-monitor-0")
    demo_targets = ("rim-pacs-01", "sta-ehr-01", "sta-pump-server-01", "sta-pharmacy-01", "sta-vent-01", "nfh-ehr-01")
    # the last case is where exact stops scaling: ~40,000 candidate paths for one target
    cases = [("demo", demo, "phishing", "st-aurelia", demo_targets, 6, (3, 5, 8)),
             ("generated-500", gen, "phishing", "h0", gen_targets, 3, (3, 5, 8)),
             ("generated-500", gen, "phishing", "h0", gen_targets, 4, (5,))][: 2 if quick else 3]
    out = []
    for name, inv, prof, org, targets, steps, budgets in cases:
        graph = build_attack_graph(inv, match_findings(advisories, inv.assets))
        view = graph.view(PROFILES[prof], org)
        prizes = {t: worst_harm(graph.facts.assets[t]) for t in targets}
        states = {s: impact(graph.facts.assets[t], Privilege(s.privilege)).harm
                  for t in targets for s in target_states(t)}
        for budget in budgets:
            exact, t_exact = timed(lambda b=budget, v=view, pz=prizes, st=steps, sp=states: exact_campaign(
                v, pz, b, max_steps=st, max_edges=4 * st + 4, max_paths=100_000, time_limit=120, state_prizes=sp))
            ants, t_aco = timed(lambda b=budget, v=view, pz=prizes, st=steps, sp=states: aco_campaign(v, pz, AcoParams(
                seed=3, budget=b, max_steps=st, max_edges=4 * st + 4, time_limit=60), state_prizes=sp))
            entry = {"instance": name, "max_steps": steps, "budget": budget, "aco_value": round(ants.value, 6),
                     "aco_s": round(t_aco, 3), "aco_cost": ants.cost}
            proven = exact is not None and exact.complete
            if exact is not None:
                entry |= {"exact_value": round(exact.value, 6), "exact_s": round(t_exact, 3), "exact_cost": exact.cost,
                          "exact_proven_optimal": proven, "exact_status": exact.reason}
            if proven and exact is not None:
                entry["quality_ratio"] = round(ants.value / exact.value, 4) if exact.value else (
                    1.0 if ants.value == 0 else None)
            out.append(entry)
            rows.append((f"campaign {name}, {steps} steps, budget {budget}: ACO / exact",
                         f"{ants.value:.4f} / {exact.value:.4f}{'' if proven else ' (not proven)'} "
                         f"({t_aco:.2f} s / {t_exact:.2f} s)" if exact else
                         f"{ants.value:.4f} / too large ({t_aco:.2f} s)"))
    figures["campaign"] = out


def crossover_summary(groups: list[dict], threshold: int) -> dict[str, Any]:
    """What the measured groups justify: the largest moves × k within the budget and the smallest over it,
    whether that criterion (and the moves alone) sorts every group, the largest moves × k below which every
    group fits, whether `threshold` keeps Yen to such groups (and how many groups above it Yen would have
    fitted: the price of the margin), and the ants' quality and time on the groups above it."""
    fit = [g["moves_x_k"] for g in groups if g["exact_within_budget"]]
    miss = [g["moves_x_k"] for g in groups if not g["exact_within_budget"]]
    fit_moves = [g["moves_in_view"] for g in groups if g["exact_within_budget"]]
    miss_moves = [g["moves_in_view"] for g in groups if not g["exact_within_budget"]]
    above = [g for g in groups if g["moves_x_k"] > threshold and g["reachable_instances"]]
    largest_fit, smallest_miss = max(fit, default=None), min(miss, default=None)
    return {
        "largest_moves_x_k_within_budget": largest_fit, "smallest_moves_x_k_over_budget": smallest_miss,
        "moves_x_k_separates": largest_fit is None or smallest_miss is None or largest_fit < smallest_miss,
        "moves_alone_separates": not fit_moves or not miss_moves or max(fit_moves) < min(miss_moves),
        "largest_safe_moves_x_k": max((w for w in fit if smallest_miss is None or w < smallest_miss), default=None),
        "engine_exact_max_work": threshold,
        "engine_threshold_safe": smallest_miss is None or threshold < smallest_miss,
        "groups_within_budget_above_threshold": sum(w > threshold for w in fit),
        "aco_above_threshold": {"groups": len(above),
                                "best_ratio_min": min((g["aco_best_ratio_min"] for g in above), default=None),
                                "sum_ratio_p50_min": min((g["aco_sum_ratio_p50"] for g in above), default=None),
                                "sum_ratio_min": min((g["aco_sum_ratio_min"] for g in above), default=None),
                                "aco_cpu_s_p99_max": max((g["aco_cpu_s"]["p99"] for g in above), default=None)}}


def only_crossover(advisories: list, quick: bool) -> int:
    """`--only crossover`: this run's crossover section; the other sections of bench/results/risk.json (of the
    same mode) are kept and labelled with the run that measured them."""
    import json

    from common import RESULTS

    try:
        previous = json.loads((RESULTS / "risk.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    kept = previous.get("figures", {}) if bool(previous.get("quick")) == quick else {}
    kept.pop("crossover", None)
    recorded = kept.get("recorded") or {"sections": sorted(kept), "measured_at": previous.get("measured_at"),
                                        "command": "python bench/risk.py" + (" --quick" if quick else "")}
    figures = dict(kept, recorded=recorded) if kept else {}
    rows: list[tuple[str, str]] = []
    crossover(advisories, figures, rows)
    report("risk", figures, rows, quick)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["crossover"], help="run only that part; the other sections of "
                        "bench/results/risk.json are kept as they were measured, labelled recorded")
    args = parser.parse_args()
    sizes = [500, 2000, 5000] if args.quick else [500, 2000, 5000, 10_000, 20_000, 50_000]
    source = SHARED_ADVISORIES if SHARED_ADVISORIES.exists() else DEMO / "advisories"
    (advisories, _), t_adv = timed(lambda: load_advisories([source]))
    if args.only:
        return only_crossover(advisories, args.quick)
    figures: dict = {"advisories": len(advisories), "advisory_source": str(source), "sizes": {},
                     "load_average_1min": {"start": round(os.getloadavg()[0], 2)},
                     "clock": "per-size figures (…_s) are CPU seconds of this process; campaign times are wall seconds"}
    rows: list[tuple[str, str]] = [("ICSMA advisories", f"{len(advisories)} ({t_adv:.2f} s)")]
    for n in sizes:
        measure(n, advisories, figures["sizes"], rows, small=n <= 5000)
        print(f"measured {n} assets", file=sys.stderr, flush=True)
    crossover(advisories, figures, rows)
    try:
        campaign(advisories, figures, rows, args.quick)
    except Exception as exc:  # the demo ecosystem must load: say why not, keep the per-size figures
        figures["campaign"] = []
        figures["campaign_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        rows.append(("campaign (exact vs ACO)", f"not run: {figures['campaign_error'][:80]}"))
    sz = figures["sizes"]
    ten = sz.get("10000")
    figures["targets"] = {
        "graph_10k_le_10s": None if ten is None else ten["graph_build_s"] <= 10,
        "incremental_p99_le_1s": all(v["incremental"]["p99_s"] <= 1 for v in sz.values()),
        "aco_within_5pct_paths_k10": all((v["path_search"]["best_ratio_min"] or 0) >= 0.95
                                         and (v["path_search"]["top_k_sum_ratio_median"] or 0) >= 0.95
                                         for v in sz.values()),
        "mitigation_aco_gap_le_5pct": all(v.get("aco_gap_max", 0) <= 0.05 for v in sz.values()),
        "aco_within_5pct_campaign": all((c.get("quality_ratio") or 0) >= 0.95 for c in figures["campaign"]
                                        if c.get("exact_proven_optimal")),
        "campaign_instances_proven": sum(bool(c.get("exact_proven_optimal")) for c in figures["campaign"]),
    }
    figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
    figures["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    rows.append(("1-minute load average start / end", f"{figures['load_average_1min']['start']} / "
                                                      f"{figures['load_average_1min']['end']}"))
    rows.append(("targets met", ", ".join(f"{k}={v}" for k, v in figures["targets"].items())))
    rows.append(("peak RSS", f"{figures['peak_rss_mib']} MiB"))
    report("risk", figures, rows, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
