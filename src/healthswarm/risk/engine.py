"""The questions the CLI and API ask, answered with the right method and a word on why.

- `find_paths`: the k most likely distinct attacks (`paths.attack_key`) use Yen (exact) while the view's
  moves × k stay within `EXACT_MAX_WORK`, and the ants beyond; `diverse=True` asks the ants for alternatives.
- `find_campaign`: several targets under a budget: exact (enumeration + MILP) when the enumeration fits,
  ACO otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import networkx as nx

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.model.words import counted
from healthswarm.risk.aco import AcoParams, Campaign, aco_campaign, aco_paths
from healthswarm.risk.attack_graph import SOURCE, AttackGraph, target_states
from healthswarm.risk.campaign import exact_campaign
from healthswarm.risk.facts import Facts
from healthswarm.risk.impact import impact, worst_harm
from healthswarm.risk.paths import PathResult, k_best_paths
from healthswarm.risk.profiles import PROFILES, Attacker, get_profile
from healthswarm.risk.states import Privilege

# Yen answers while moves in the view × k <= EXACT_MAX_WORK. Why moves × k: each candidate path costs a
# Dijkstra per spur node over the view, and the candidates Yen must examine for k distinct attacks grow with k.
# Budget: an interactive question (the dashboard's path form, `risk paths`) within 1 CPU s at p99.
# Measured by `python bench/risk.py --quick --only crossover` (2026-12-07, load 1.8-12.4 on 2 shared cores; 5
# seeded instances per size, each the median of 5 runs): every group at or under 20,950 kept p99 <= 0.30 s;
# the smallest over budget was 1,016 assets at k = 3 (24,615: p99 1.11 s), and everything past 61,610 was over
# (up to 4.5 s). Between, it depends on the targets drawn (moves alone separates no better), so the line
# sits below the first miss. Beyond it the ants found Yen's best attack on every instance and seed, within
# 0.68 CPU s at p99; they can miss lower-ranked ones (sum of the k: median 1.0, worst 0.32), so --method exact
# stays for a complete list. docs/risk.md, "Which method".
EXACT_MAX_WORK = 24_000
CLINICAL_TARGETS = frozenset({"ehr", "his", "pacs", "lis", "ris", "emr", "pharmacy-system", "domain-controller"})


def parse_attacker(spec: str, facts: Facts, skill: int | None = None) -> Attacker:
    """`PROFILE` or `PROFILE@ORGANISATION`."""
    name, _, org = spec.partition("@")
    prof = get_profile(name.strip()).with_skill(skill)
    if org and org not in facts.org_kind:
        raise InputError(Problem(Location("--from"), f"unknown organisation {org!r}",
                                 "one of " + ", ".join(sorted(facts.org_kind))))
    return Attacker(prof, org or None)


def default_targets(facts: Facts, n: int = 10) -> list[str]:
    """The crown jewels: clinical systems and medical devices of highest harm, at most n."""
    pool = [a for a in facts.inventory.assets if a.kind in CLINICAL_TARGETS or a.is_medical_device]
    pool.sort(key=lambda a: (-worst_harm(a), a.id))
    return [a.id for a in pool[:n]]


# path search models intrusion; an insider's misuse of their own access is read per incident (risk.actor)
PATH_PROFILE = "phishing"


def suggested_query(facts: Facts, incidents: list[dict[str, Any]]) -> dict[str, Any]:
    """A path question worth asking first, for a form to start from: the foothold of the first open incident
    (most severe first; its actor profile when path search models it, else phishing) at its organisation, and
    that organisation's crown jewel of highest harm that the incident does not hold yet. Without incidents, a
    phishing foothold at the organisation of the highest-harm crown jewel."""
    jewels = default_targets(facts, len(facts.inventory.assets))
    org_of = {a.id: a.organisation for a in facts.inventory.assets}
    for doc in incidents:
        orgs = [o for o in doc.get("organisations") or [] if o in facts.org_kind]
        if doc.get("state") in CLOSED_STATES or not orgs:
            continue
        basis = doc.get("predicted_basis") or {}
        actor = basis.get("actor") if isinstance(basis, dict) else None
        profile = actor if actor in PROFILES and actor != "insider" else PATH_PROFILE
        held = set(doc.get("assets") or [])
        target = next((j for j in jewels if org_of[j] == orgs[0] and j not in held),
                      next((j for j in jewels if j not in held), None))
        if target is not None:
            return {"from": f"{profile}@{orgs[0]}", "to": target, "incident": doc.get("id"),
                    "why": f"a {profile} foothold where {doc.get('id')} is ({orgs[0]}), towards the crown jewel "
                           f"of highest harm there that the incident does not hold yet"}
    if not jewels:
        return {"from": None, "to": None, "incident": None, "why": "no clinical system or medical device in the "
                                                                    "inventory (healthswarm inventory load)"}
    return {"from": f"{PATH_PROFILE}@{org_of[jewels[0]]}", "to": jewels[0], "incident": None,
            "why": "no open incident: a phishing foothold beside the crown jewel of highest harm"}


def find_paths(view: nx.DiGraph, targets: list[str], k: int, max_steps: int | None, time_limit: float,
               diverse: bool = False, method: str = "auto", params: AcoParams | None = None) -> PathResult:
    size = view.number_of_edges()
    work = size * k
    # the attacker's view: the graph's moves within its skill plus its entry moves, which `risk assess` leaves out
    moves = f"{size} moves in the attacker's view ({counted(view.out_degree(SOURCE), 'entry move')} included)"
    use = method
    if method == "auto":
        use = "aco" if diverse or work > EXACT_MAX_WORK else "exact"
    if use == "exact":
        # distinct attacks, as the ants count them: the k paths are k attacks, not one attack from k workstations
        result = k_best_paths(view, targets, k=k, max_steps=max_steps, time_limit=time_limit, distinct=True)
        why = ("asked for" if method == "exact" else
               f"exact: {moves} × k = {k} is {work} (<= {EXACT_MAX_WORK}), where Yen's algorithm is optimal "
               "and answers within a second")
    else:
        base = params or AcoParams()
        params = replace(base, time_limit=time_limit, max_steps=max_steps if max_steps is not None else base.max_steps)
        result = aco_paths(view, targets, k=k, params=params)
        why = ("asked for" if method == "aco" else "ACO: diverse alternatives asked for" if diverse else
               f"ACO: {moves} × k = {k} is {work} (> {EXACT_MAX_WORK}), where Yen's algorithm takes more "
               "than a second")
    result.reason = f"{why}; {result.reason}".strip("; ")
    return result


def find_campaign(view: nx.DiGraph, graph: AttackGraph, targets: list[str], budget: int | None, max_steps: int,
                  time_limit: float, method: str = "auto", params: AcoParams | None = None,
                  max_paths: int = 5_000) -> Campaign:
    prizes = {t: worst_harm(graph.facts.assets[t]) for t in targets}
    states = {s: impact(graph.facts.assets[t], Privilege(s.privilege)).harm for t in targets for s in target_states(t)}
    base = params or AcoParams()
    params = replace(base, budget=budget, max_steps=max_steps, time_limit=time_limit, max_edges=4 * max_steps + 4)
    if method in ("auto", "exact"):
        exact = exact_campaign(view, prizes, budget, max_steps=max_steps, max_edges=4 * max_steps + 4,
                               max_paths=max_paths, time_limit=time_limit, state_prizes=states)
        if exact is not None and (exact.complete or method == "exact"):
            exact.reason = f"exact: all paths within {max_steps} actions enumerable; {exact.reason}"
            return exact
        if exact is not None:  # the MILP stopped at its time limit: let the ants try, keep the better
            ants = aco_campaign(view, prizes, params, state_prizes=states)
            best = ants if ants.value > exact.value else exact
            best.reason = (f"the exact MILP stopped at its time limit ({exact.reason}); ACO found "
                           f"{ants.value:.4f}, the MILP {exact.value:.4f}; the better is shown")
            best.complete = False
            return best
        if method == "exact":
            raise InputError(Problem(Location("--method"), f"more than {max_paths} candidate paths: too large for "
                                     "the exact campaign", "--method aco or a smaller --max-steps"))
    result = aco_campaign(view, prizes, params, state_prizes=states)
    why = ("asked for" if method == "aco" else
           f"ACO: more than {max_paths} candidate paths (or enumeration over {time_limit / 2:g} s), too many for the "
           "exact MILP")
    result.reason = f"{why}; {result.reason}"
    return result
