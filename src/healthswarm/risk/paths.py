"""Exact k most likely attack paths: Yen's algorithm on -log p (networkx `shortest_simple_paths`).

Paths run from the profile's entries (SOURCE) to any compromise state of the targets. The product of
edge probabilities is maximised by minimising the sum of `w = -log p`, all weights >= 0, so Dijkstra
is exact and cycles in the graph are harmless (Yen's paths are simple). Bounds: `k`, `max_steps`
(attacker actions per path; longer paths are skipped), `time_limit` seconds and `max_candidates`
(paths examined); when a bound stops the search the result says so.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from healthswarm.model.words import counted
from healthswarm.risk.attack_graph import GOAL, SOURCE, attach_goal, detach_goal, target_states
from healthswarm.risk.states import Node


@dataclass(frozen=True, slots=True)
class AttackPath:
    nodes: tuple[Node, ...]  # from the first real state to the target state (SOURCE and GOAL left out)
    p: float
    steps: int  # attacker actions (exploits, credential abuse, ...)
    cost: int  # capability spent
    moves: tuple[dict[str, Any], ...]  # one per edge: from, to, technique

    @property
    def target(self) -> str:
        return self.nodes[-1].ref

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "p": round(self.p, 6), "steps": self.steps, "cost": self.cost,
                "states": [str(n) for n in self.nodes], "moves": list(self.moves)}


@dataclass
class PathResult:
    method: str
    paths: list[AttackPath] = field(default_factory=list)
    complete: bool = True  # False when a bound stopped the search early
    reason: str = ""  # why the method was used / why it stopped / why nothing was found
    unreachable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "complete": self.complete, "reason": self.reason,
                "unreachable": self.unreachable, "seconds": round(self.seconds, 4),
                "paths": [p.as_dict() for p in self.paths]}


def make_path(view: nx.DiGraph, nodes: list[Node]) -> AttackPath:
    """An AttackPath from a node list SOURCE ... GOAL (or a plain list of states) with its moves explained."""
    inner = [n for n in nodes if n not in (SOURCE, GOAL)]
    p, steps, cost, moves = 1.0, 0, 0, []
    for u, v in itertools.pairwise(nodes):
        if v == GOAL:
            continue
        d = view[u][v]
        p *= d["p"]
        steps += d["step"]
        cost += d["cost"]
        technique = d["technique"]
        moves.append({"from": str(u), "to": str(v), **(technique.as_dict() if technique else {})})
    return AttackPath(tuple(inner), p, steps, cost, tuple(moves))


def path_steps(view: nx.DiGraph, nodes: list[Node]) -> int:
    return sum(view[u][v]["step"] for u, v in itertools.pairwise(nodes))


def attack_key(view: nx.DiGraph, nodes: list[Node]) -> tuple[Any, ...]:
    """What makes two paths different attacks: their attacker actions, in order, and the state they end in.
    Bookkeeping moves (which phished workstation of a zone is the foothold, how packets are routed between
    zones) are left out, so paths that differ only in those are one attack."""
    inner = [n for n in nodes if n != GOAL]
    return (*(e for e in itertools.pairwise(inner) if view[e[0]][e[1]]["step"]), inner[-1])


def k_best_paths(view: nx.DiGraph, targets: list[str], k: int = 5, max_steps: int | None = None,
                 time_limit: float = 10.0, max_candidates: int = 10_000, distinct: bool = False) -> PathResult:
    """The k most likely simple paths from SOURCE to any of `targets` (each path ends at its target).
    With `distinct`, the k most likely distinct attacks (`attack_key`), each by its most likely path: what
    the ant colony returns, so the two can be compared."""
    start = time.perf_counter()
    result = PathResult("exact (Yen's k shortest paths on -log p" + (", distinct attacks)" if distinct else ")"))
    attach_goal(view, targets)
    try:
        reachable = nx.descendants(view, SOURCE) if SOURCE in view else set()
        result.unreachable = [t for t in targets if not any(n.kind == "asset" and n.ref == t
                                                            and n.privilege in ("disrupt", "user", "admin")
                                                            for n in _states_of(view, t) if n in reachable)]
        if GOAL not in reachable:
            result.reason = "no target is reachable from the entry points with this attacker's capability"
            return result
        seen = 0
        routes: set[tuple[Any, ...]] = set()
        for nodes in nx.shortest_simple_paths(view, SOURCE, GOAL, weight="w"):
            seen += 1
            route = attack_key(view, nodes) if distinct else (*tuple(nodes[:-2]), Node("asset", nodes[-2].ref))
            if _dominated(nodes) or route in routes:
                continue  # the same route ending in a lower privilege on the same target
            routes.add(route)
            if max_steps is None or path_steps(view, nodes) <= max_steps:
                result.paths.append(make_path(view, nodes))
            if len(result.paths) >= k:
                break
            if time.perf_counter() - start > time_limit or seen >= max_candidates:
                result.complete = False
                result.reason = (f"stopped after {seen} candidate paths and {time.perf_counter() - start:.1f} s "
                                 f"(bounds: time {time_limit} s, {max_candidates} candidates)")
                break
        else:
            if len(result.paths) < k:
                result.reason = f"only {counted(len(result.paths), 'simple path')} within the limits"
        if not result.paths and not result.reason:
            result.reason = f"every path needs more than {max_steps} attacker actions"
    finally:
        detach_goal(view)
        result.seconds = time.perf_counter() - start
    return result


def _dominated(nodes: list[Node]) -> bool:
    """A path that already held its final target earlier (then only changed privilege on it) repeats a
    better path: leave it out."""
    last = nodes[-2]
    return any(n.kind == "asset" and n.ref == last.ref and n.privilege in ("disrupt", "user", "admin")
               for n in nodes[1:-2])


def _states_of(view: nx.DiGraph, target: str) -> list[Node]:
    return [s for s in target_states(target) if s in view]


def best_probabilities(view: nx.DiGraph, sources: list[Node] | None = None,
                       cutoff: float | None = None) -> dict[Node, float]:
    """Most likely way to every state from SOURCE (or `sources`): one Dijkstra on -log p."""
    roots = sources if sources is not None else [SOURCE]
    roots = [r for r in roots if r in view]
    if not roots:
        return {}
    dist = nx.multi_source_dijkstra_path_length(view, roots, cutoff=cutoff, weight="w")
    return {n: math.exp(-d) for n, d in dist.items()}
