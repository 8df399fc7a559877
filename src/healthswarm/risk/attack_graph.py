"""The attack graph: attacker states joined by the techniques that move between them.

Built once from the inventory and the findings (`build_attack_graph`) by the rules of
`risk.techniques`; every edge keeps *all* the techniques that make its move, best first, each
explaining itself. A search never runs on this graph directly but on a `view` for one attacker
profile: its entry states hang off a virtual `SOURCE`, techniques beyond the profile's skill or
removed by controls are dropped, and each edge keeps its best remaining technique with `p`, weight
`w = -log p`, `cost` (capability spent) and `step` (1 for an attacker action, 0 for bookkeeping moves
such as "a foothold is a presence on its zone").

Incremental use (live risk): the graph does not depend on where the attacker stands, so a new
foothold needs no rebuild; `view(footholds=...)` adds it as an entry and one bounded Dijkstra from it
(`risk.whatif.reach_from`) gives the assets newly at risk.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Finding, Inventory
from healthswarm.model.words import counted
from healthswarm.risk.facts import Facts
from healthswarm.risk.likelihood import Likelihood
from healthswarm.risk.profiles import Profile
from healthswarm.risk.reach import ZonePolicy
from healthswarm.risk.states import COMPROMISE, Node, Privilege, Technique, asset_node
from healthswarm.risk.techniques import RULES

SOURCE = Node("source", "attacker")
GOAL = Node("goal", "target")
ACTIONS = frozenset({"exploit", "credential", "domain", "vendor-access", "physical"})


@dataclass
class AttackGraph:
    facts: Facts
    moves: dict[tuple[Node, Node], list[Technique]] = field(default_factory=dict)
    build_seconds: float = 0.0

    @property
    def notes(self) -> list[str]:
        return self.facts.notes

    @property
    def edge_count(self) -> int:
        return len(self.moves)

    @property
    def node_count(self) -> int:
        nodes = {u for u, _ in self.moves} | {v for _, v in self.moves}
        return len(nodes)

    def view(self, profile: Profile | None = None, organisation: str | None = None,
             removed: frozenset[str] = frozenset(), skill: int | None = None,
             footholds: Sequence[tuple[Node, float, str]] = (), kinds: frozenset[str] | None = None,
             extra: Sequence[tuple[Node, Node, Technique]] = ()) -> nx.DiGraph:
        """A searchable DiGraph for one attacker: entries of `profile` (and/or explicit `footholds`,
        each (state, probability, why)) under SOURCE, techniques within `skill`, none tagged in `removed`,
        only of `kinds` when given (an insider does not exploit), plus the attacker's own `extra`
        moves (an insider's data access, `risk.actor`)."""
        level = skill if skill is not None else (profile.skill if profile is not None else 3)
        moves: dict[tuple[Node, Node], list[Technique]] = self.moves
        if extra:
            moves = {key: list(ts) for key, ts in self.moves.items()}
            for u, v, technique in extra:
                moves.setdefault((u, v), []).append(technique)
                moves[(u, v)].sort(key=lambda t: (-t.p, t.difficulty, t.description))
        edges = []
        for (u, v), techniques in moves.items():
            allowed = techniques if kinds is None else [t for t in techniques if t.kind in kinds]
            best = _usable(allowed, level, removed)
            if best is not None:
                edges.append((u, v, _attrs(best)))
        g = nx.DiGraph()
        g.add_edges_from(edges)
        entries: list[tuple[Node, Technique]] = []
        if profile is not None:
            entries.extend(profile.entries(self.facts, organisation))
        for state, p, why in footholds:
            entries.append((state, Technique("entry", p, why, evidence={"asset": state.ref})))
        for state, technique in entries:
            if technique.tags & removed:
                continue
            if g.has_edge(SOURCE, state) and g[SOURCE][state]["p"] >= technique.p:
                continue
            g.add_edge(SOURCE, state, **_attrs(technique))
        g.add_node(SOURCE)
        return g

    def techniques(self, u: Node, v: Node) -> list[Technique]:
        return self.moves.get((u, v), [])


def _usable(techniques: list[Technique], skill: int, removed: frozenset[str]) -> Technique | None:
    for t in techniques:
        if t.difficulty <= skill and not (removed and t.tags & removed):
            return t
    return None


def _attrs(t: Technique) -> dict[str, object]:
    return {"p": t.p, "w": t.weight, "cost": t.difficulty if t.kind in ACTIONS else 0,
            "step": 1 if t.kind in ACTIONS else 0, "technique": t}


def build_attack_graph(inventory: Inventory, findings: Iterable[Finding], policy: ZonePolicy | None = None,
                       likelihood: Likelihood | None = None, rules: Sequence[str] | None = None) -> AttackGraph:
    """Run the rules over the indexed facts; parallel techniques on one move are kept best first."""
    start = time.perf_counter()
    facts = Facts.index(inventory, findings, policy or ZonePolicy(), likelihood or Likelihood())
    names = list(rules) if rules is not None else list(RULES)
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise InputError(Problem(Location("rules"), f"{counted(len(unknown), 'unknown rule')}: {', '.join(unknown)}",
                                 "one of " + ", ".join(RULES)))
    moves: dict[tuple[Node, Node], list[Technique]] = {}
    for name in names:
        for u, v, technique in RULES[name](facts):
            if technique.p <= 0:
                continue
            moves.setdefault((u, v), []).append(technique)
    for techniques in moves.values():
        if len(techniques) > 1:
            techniques.sort(key=lambda t: (-t.p, t.difficulty, t.description))
    graph = AttackGraph(facts, moves)
    graph.build_seconds = time.perf_counter() - start
    return graph


def resolve_targets(facts: Facts, spec: str) -> list[str]:
    """Asset ids named by `spec`: an asset id, an asset kind, `medical-device`, or either of these
    followed by `@organisation`; several specs separated by commas."""
    out: list[str] = []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        what, _, org = part.partition("@")
        if what in facts.assets and not org:
            out.append(what)
            continue
        hits = [a.id for a in facts.inventory.assets
                if (a.kind == what or (what == "medical-device" and a.is_medical_device))
                and (not org or a.organisation == org)]
        if not hits:
            raise InputError(Problem(Location("--to"), f"{part!r} names no asset",
                                     "an asset id, an asset kind, or KIND@ORGANISATION"))
        out.extend(hits)
    return list(dict.fromkeys(out))


def target_states(target: str) -> list[Node]:
    return [asset_node(target, p) for p in COMPROMISE]


def attach_goal(view: nx.DiGraph, targets: Iterable[str]) -> None:
    """Join every compromise state of the targets to GOAL (weight 0); `detach_goal` undoes it."""
    view.add_node(GOAL)
    for t in targets:
        for rank, state in enumerate(reversed(target_states(t))):
            if state in view:  # a hair of weight so that, p being equal, the higher privilege comes first
                view.add_edge(state, GOAL, p=1.0, w=rank * 1e-9, cost=0, step=0, technique=None)


def detach_goal(view: nx.DiGraph) -> None:
    if GOAL in view:
        view.remove_node(GOAL)


def privilege_of(node: Node) -> Privilege | None:
    return Privilege(node.privilege) if node.kind == "asset" else None
