"""What follows when an asset falls, and for whom: the attacker's next reach from a foothold, and
the service cascade along dependencies, grouped by organisation, with probabilities.

`LiveRisk` is the incremental form for live risk: a new foothold is one bounded Dijkstra from it
on a view kept between updates; the graph is not rebuilt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted
from healthswarm.risk.attack_graph import SOURCE, AttackGraph
from healthswarm.risk.cascade import CascadeResult, cascade
from healthswarm.risk.impact import ImpactWeights, impact
from healthswarm.risk.states import COMPROMISE, Node, Privilege, Technique, asset_node


@dataclass
class AtRisk:
    asset: str
    organisation: str
    privilege: str
    p: float
    harm: float
    next_move: str  # the last move of the most likely way there

    def as_dict(self) -> dict[str, Any]:
        return {"asset": self.asset, "organisation": self.organisation, "privilege": self.privilege,
                "p": round(self.p, 4), "harm": round(self.harm, 4), "risk": round(self.p * self.harm, 4),
                "how": self.next_move}


@dataclass
class WhatIf:
    compromised: list[str]
    reach: list[AtRisk] = field(default_factory=list)
    cascade: CascadeResult = field(default_factory=CascadeResult)
    seconds: float = 0.0

    def as_dict(self, organisation_of: dict[str, str]) -> dict[str, Any]:
        orgs: dict[str, dict[str, Any]] = {}
        for r in self.reach:
            orgs.setdefault(r.organisation, {"attack": [], "service": []})["attack"].append(r.as_dict())
        for item in self.cascade.as_dict()["affected"]:
            org = organisation_of.get(item["asset"], "?")
            orgs.setdefault(org, {"attack": [], "service": []})["service"].append(item)
        return {"compromised": self.compromised, "seconds": round(self.seconds, 4), "organisations": orgs}


def reach_from(graph: AttackGraph, view: nx.DiGraph, min_p: float = 0.01) -> list[AtRisk]:
    """Every asset the attacker of `view` can compromise with probability >= min_p, best privilege each."""
    dist, paths = nx.single_source_dijkstra(view, SOURCE, cutoff=-math.log(min_p), weight="w")
    best: dict[str, AtRisk] = {}
    for node, d in dist.items():
        if node.kind != "asset" or node.privilege not in {p.value for p in COMPROMISE}:
            continue
        asset = graph.facts.assets[node.ref]
        priv = Privilege(node.privilege)
        p = math.exp(-d)
        harm = impact(asset, priv, ImpactWeights()).harm
        path = paths[node]
        last = view[path[-2]][path[-1]]["technique"] if len(path) > 1 else None
        current = best.get(node.ref)
        if current is None or p * harm > current.p * current.harm:
            best[node.ref] = AtRisk(node.ref, asset.organisation, priv.value, p, harm,
                                    last.description if last is not None else "")
    return sorted(best.values(), key=lambda r: (-r.p * r.harm, r.asset))


class LiveRisk:
    """Incremental at-risk assets as footholds appear (live risk from incidents).

    Holds one view (no profile, the given skill) and the best probability of each compromise state
    seen so far; `add_foothold` runs one Dijkstra bounded by `min_p` from the new foothold only and
    raises the probabilities it improves, returning the assets whose risk changed. Nothing is rebuilt.
    """

    def __init__(self, graph: AttackGraph, skill: int = 2, min_p: float = 0.01,
                 removed: frozenset[str] = frozenset(), kinds: frozenset[str] | None = None,
                 extra: Sequence[tuple[Node, Node, Technique]] = ()) -> None:
        self.graph = graph
        self.min_p = min_p
        self.view = graph.view(None, skill=skill, removed=removed, kinds=kinds, extra=extra)
        self.best: dict[Node, float] = {}
        self.footholds: list[str] = []

    def add_foothold(self, asset: str, privilege: Privilege = Privilege.ADMIN, p: float = 1.0) -> list[AtRisk]:
        if asset not in self.graph.facts.assets:
            raise InputError(Problem(Location("foothold"), f"unknown asset {asset!r}", "an asset id"))
        start = asset_node(asset, privilege)
        self.footholds.append(asset)
        if start not in self.view:
            return []
        dist, paths = nx.single_source_dijkstra(self.view, start, cutoff=-math.log(self.min_p / p), weight="w")
        changed: dict[str, AtRisk] = {}
        wanted = {q.value for q in COMPROMISE}
        for node, d in dist.items():
            if node.kind != "asset" or node.privilege not in wanted or node.ref in self.footholds:
                continue
            prob = p * math.exp(-d)
            if prob <= self.best.get(node, 0.0) + 1e-12:
                continue
            self.best[node] = prob
            a = self.graph.facts.assets[node.ref]
            priv = Privilege(node.privilege)
            path = paths[node]
            how = self.view[path[-2]][path[-1]]["technique"].description if len(path) > 1 else ""
            r = AtRisk(node.ref, a.organisation, priv.value, prob, impact(a, priv).harm, how)
            if node.ref not in changed or r.p * r.harm > changed[node.ref].p * changed[node.ref].harm:
                changed[node.ref] = r
        return sorted(changed.values(), key=lambda r: (-r.p * r.harm, r.asset))


def what_if(graph: AttackGraph, compromised: list[str], skill: int = 2, min_p: float = 0.01,
            removed: frozenset[str] = frozenset()) -> WhatIf:
    start = time.perf_counter()
    unknown = [a for a in compromised if a not in graph.facts.assets]
    if unknown:
        raise InputError(Problem(Location("--compromise"),
                                 f"{counted(len(unknown), 'unknown asset')}: {', '.join(unknown)}",
                                 "asset ids of the stored inventory"))
    footholds: list[tuple[Node, float, str]] = [(asset_node(a, Privilege.ADMIN), 1.0, f"{a} is compromised")
                                                for a in compromised]
    view = graph.view(None, skill=skill, removed=removed, footholds=footholds)
    reach = [r for r in reach_from(graph, view, min_p) if r.asset not in compromised]
    initial = {a: 1.0 for a in compromised}
    for r in reach:  # an asset the attacker can stop or own may fail too
        initial[r.asset] = max(initial.get(r.asset, 0.0), r.p)
    result = WhatIf(list(compromised), reach, cascade(graph.facts.inventory, initial))
    result.seconds = time.perf_counter() - start
    return result
