"""Ant-colony search (MAX-MIN ant system) on an attacker view: diverse likely paths, and the most
harmful *campaign* across several targets under a capability budget and a path-length limit.

Ants walk from SOURCE along edges chosen with probability ∝ τ^α · η^β, where the pheromone τ learns
which moves pay off and the heuristic η = p(edge) · γ^(hops left to a target) / (1 + cost) (one reverse
BFS per target). A path ant aims at one target (ants take turns over the targets) and its heuristic
also has the best probability from the next state to that target (one reverse Dijkstra on -log p per
target): with hop counts alone every ant takes the route of fewest moves, and the k most likely paths
(k = 10) that take a longer route were never found. The path search stops when the sum of the k best
probabilities found stops growing. A campaign ant visits
the targets in a prize-weighted random order; edges it already holds cost nothing again, so shared
footholds are reused. Value of a campaign = Σ harm(target) · p(its path); its cost = the capability
of the union of its moves, which must stay within the budget. Every bound is explicit: ants,
iterations, `time_limit`, `max_steps` actions and `max_edges` moves per walk; a seeded
`random.Random` makes runs repeatable.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from healthswarm.risk.attack_graph import SOURCE, target_states
from healthswarm.risk.paths import AttackPath, PathResult, attack_key, make_path
from healthswarm.risk.states import Node

Edge = tuple[Node, Node]


@dataclass(frozen=True, slots=True)
class AcoParams:
    ants: int = 20
    iterations: int = 60
    alpha: float = 1.0
    beta: float = 2.0
    gamma: float = 0.5  # heuristic discount per hop still to go
    rho: float = 0.1  # evaporation
    tau_min: float = 0.05
    tau_max: float = 5.0
    seed: int = 7
    time_limit: float = 10.0
    max_steps: int = 8  # attacker actions per path
    max_edges: int = 40  # moves per walk (bookkeeping included)
    budget: int | None = None  # capability budget of a campaign; None = unbounded
    patience: int = 25  # iterations without improvement before stopping


@dataclass
class Campaign:
    paths: list[AttackPath] = field(default_factory=list)
    value: float = 0.0
    cost: int = 0
    method: str = ""
    seconds: float = 0.0
    complete: bool = True
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "value": round(self.value, 6), "cost": self.cost,
                "seconds": round(self.seconds, 4), "complete": self.complete, "reason": self.reason,
                "paths": [p.as_dict() for p in self.paths]}


def hops_to(view: nx.DiGraph, goals: Iterable[Node], limit: int) -> dict[Node, int]:
    """Edges still to go from each node to the nearest goal (reverse BFS up to `limit`)."""
    dist: dict[Node, int] = {}
    queue: deque[Node] = deque()
    for g in goals:
        if g in view:
            dist[g] = 0
            queue.append(g)
    pred = view.pred
    while queue:
        v = queue.popleft()
        d = dist[v] + 1
        if d > limit:
            continue
        for u in pred[v]:
            if u not in dist:
                dist[u] = d
                queue.append(u)
    return dist


def likelihood_to(view: nx.DiGraph, goals: Iterable[Node]) -> dict[Node, float]:
    """The probability of the most likely way from each node to the nearest goal (reverse Dijkstra on -log p)."""
    roots = [g for g in goals if g in view]
    if not roots:
        return {}
    dist = nx.multi_source_dijkstra_path_length(view.reverse(copy=False), roots, weight="w")
    return {n: math.exp(-d) for n, d in dist.items()}


class _Colony:
    def __init__(self, view: nx.DiGraph, params: AcoParams) -> None:
        self.view = view
        self.params = params
        self.rng = random.Random(params.seed)
        self.tau: dict[Edge, tuple[float, int]] = {}
        self.iteration = 0
        self.tau0 = params.tau_max

    def pheromone(self, e: Edge) -> float:
        value, when = self.tau.get(e, (self.tau0, 0))
        return max(self.params.tau_min, value * (1 - self.params.rho) ** (self.iteration - when))

    def deposit(self, edges: Iterable[Edge], amount: float) -> None:
        for e in edges:
            self.tau[e] = (min(self.params.tau_max, self.pheromone(e) + amount), self.iteration)

    def walk(self, goals: set[Node], hops: dict[Node, int], owned: set[Edge], spent: int,
             togo: dict[Node, float] | None = None) -> list[Node] | None:
        """One ant from SOURCE to a goal state within the bounds, or None if it gets stuck. `togo`, when
        given, is the best probability from each state to a goal: the heuristic then weighs a move by how
        likely the rest of the way is, not by the hops left alone."""
        p = self.params
        succ = self.view.succ
        node, path, visited, steps, cost = SOURCE, [SOURCE], {SOURCE}, 0, spent
        while node not in goals:
            left = p.max_edges - (len(path) - 1)
            choices: list[tuple[Node, float]] = []
            for v, d in succ[node].items():
                h = hops.get(v)
                if v in visited or h is None or h > left - 1:
                    continue
                e = (node, v)
                c = 0 if e in owned else d["cost"]
                if steps + d["step"] > p.max_steps or (p.budget is not None and cost + c > p.budget):
                    continue
                # γ^hops still applies with `togo`: probabilities to go ignore that a walk may not revisit a
                # state, so without it ants drift sideways through states that only lead back
                eta = d["p"] * p.gamma ** h * (togo[v] if togo is not None else 1.0) / (1 + c)
                choices.append((v, self.pheromone(e) ** p.alpha * eta ** p.beta))
            if not choices:
                return None
            total = sum(w for _, w in choices)
            pick = self.rng.random() * total
            chosen = choices[-1][0]
            for v, w in choices:
                pick -= w
                if pick <= 0:
                    chosen = v
                    break
            d = succ[node][chosen]
            steps += d["step"]
            cost += 0 if (node, chosen) in owned else d["cost"]
            node = chosen
            path.append(node)
            visited.add(node)
        return path


def _edges(nodes: list[Node]) -> list[Edge]:
    return list(itertools.pairwise(nodes))


def _goal_sets(view: nx.DiGraph, targets: Iterable[str]) -> dict[str, set[Node]]:
    return {t: {s for s in target_states(t) if s in view} for t in targets}


def aco_paths(view: nx.DiGraph, targets: list[str], k: int = 5, params: AcoParams | None = None) -> PathResult:
    """Likely and *diverse* paths found by the ants: paths that differ only in bookkeeping moves count once."""
    params = params or AcoParams()
    start = time.perf_counter()
    result = PathResult(f"ACO ({params.ants} ants, up to {params.iterations} iterations, seed {params.seed})")
    goals = set().union(*_goal_sets(view, targets).values()) if targets else set()
    hops = hops_to(view, goals, params.max_edges)
    if SOURCE not in hops:
        result.reason = "no target is reachable from the entry points within the limits"
        result.unreachable = list(targets)
        result.seconds = time.perf_counter() - start
        return result
    # why per target: with one goal set for all targets the nearest target shadows the others (an ant
    # stops at the first goal it meets), so ants take turns aiming at each reachable target
    aims = []
    for aim in _goal_sets(view, targets).values():
        aim_hops = hops_to(view, aim, params.max_edges)
        if SOURCE in aim_hops:
            aims.append((aim, aim_hops, likelihood_to(view, aim)))
    colony = _Colony(view, params)
    found: dict[tuple[Any, ...], tuple[float, list[Node]]] = {}
    score, stale = 0.0, 0
    for it in range(1, params.iterations + 1):
        colony.iteration = it
        iteration_best: tuple[float, list[Node]] | None = None
        for ant in range(params.ants):
            aim_goals, aim_hops, aim_togo = aims[ant % len(aims)]
            nodes = colony.walk(aim_goals, aim_hops, set(), 0, aim_togo)
            if nodes is None:
                continue
            prob = math.prod(view[u][v]["p"] for u, v in _edges(nodes))
            key = attack_key(view, nodes)
            if key not in found or found[key][0] < prob:
                found[key] = (prob, nodes)
            if iteration_best is None or prob > iteration_best[0]:
                iteration_best = (prob, nodes)
        top = sorted((p for p, _ in found.values()), reverse=True)[:k]
        if iteration_best is not None:
            colony.deposit(_edges(iteration_best[1]), iteration_best[0] / top[0])
        # converged when the k best found stop improving, not the best alone: the best path is found early
        # and the other k − 1 would be cut off
        if sum(top) > score * (1 + 1e-9):
            score, stale = sum(top), 0
        else:
            stale += 1
        if stale >= params.patience:
            result.reason = f"converged after {it} iterations"
            break
        if time.perf_counter() - start > params.time_limit:
            result.complete = False
            result.reason = f"time limit {params.time_limit} s reached after {it} iterations"
            break
    else:
        result.reason = f"ran all {params.iterations} iterations"
    ranked = sorted(found.values(), key=lambda x: -x[0])[:k]
    result.paths = [make_path(view, nodes) for _, nodes in ranked]
    reached = {p.target for p in result.paths}
    result.unreachable = [t for t in targets if t not in reached and not any(s in hops for s in target_states(t))]
    result.seconds = time.perf_counter() - start
    return result


def aco_campaign(view: nx.DiGraph, prizes: dict[str, float], params: AcoParams | None = None,
                 state_prizes: dict[Node, float] | None = None) -> Campaign:
    """The campaign (at most one path per target) of greatest expected harm within the budget.
    `prizes` is the harm of each target; `state_prizes`, when given, the harm of each target state
    (owning a PACS is worse than stopping it), which then values a path by the state it ends in."""
    params = params or AcoParams()
    start = time.perf_counter()
    campaign = Campaign(method=f"ACO ({params.ants} ants, up to {params.iterations} iterations, seed {params.seed})")
    goal_sets = _goal_sets(view, prizes)
    hop_maps = {t: hops_to(view, goals, params.max_edges) for t, goals in goal_sets.items()}
    live = [t for t in prizes if SOURCE in hop_maps[t] and prizes[t] > 0]
    if not live:
        campaign.reason = "no target is reachable from the entry points within the limits"
        campaign.seconds = time.perf_counter() - start
        return campaign
    colony = _Colony(view, params)
    best_value, best_plan, stale = 0.0, [], 0
    for it in range(1, params.iterations + 1):
        colony.iteration = it
        iteration_best: tuple[float, list[list[Node]], int] | None = None
        for _ in range(params.ants):
            order = sorted(live, key=lambda t: -prizes[t] * colony.rng.random())
            owned: set[Edge] = set()
            spent, value, plan = 0, 0.0, []
            for t in order:
                nodes = colony.walk(goal_sets[t], hop_maps[t], owned, spent)
                if nodes is None:
                    continue
                new = [e for e in _edges(nodes) if e not in owned]
                spent += sum(view[u][v]["cost"] for u, v in new)
                owned.update(new)
                prize = state_prizes.get(nodes[-1], prizes[t]) if state_prizes else prizes[t]
                value += prize * math.prod(view[u][v]["p"] for u, v in _edges(nodes))
                plan.append(nodes)
            if iteration_best is None or value > iteration_best[0]:
                iteration_best = (value, plan, spent)
        if iteration_best is not None and iteration_best[0] > 0:
            value, plan, _ = iteration_best
            colony.deposit({e for nodes in plan for e in _edges(nodes)}, value / max(best_value, value))
            if value > best_value * (1 + 1e-9):
                best_value, best_plan, stale = value, plan, 0
            else:
                stale += 1
            if best_plan:
                colony.deposit({e for nodes in best_plan for e in _edges(nodes)}, 0.5)
        if stale >= params.patience:
            campaign.reason = f"converged after {it} iterations"
            break
        if time.perf_counter() - start > params.time_limit:
            campaign.complete = False
            campaign.reason = f"time limit {params.time_limit} s reached after {it} iterations"
            break
    else:
        campaign.reason = f"ran all {params.iterations} iterations"
    campaign.paths = [make_path(view, nodes) for nodes in best_plan]
    campaign.value = best_value
    campaign.cost = sum(view[u][v]["cost"] for u, v in {e for nodes in best_plan for e in _edges(nodes)})
    campaign.seconds = time.perf_counter() - start
    return campaign
