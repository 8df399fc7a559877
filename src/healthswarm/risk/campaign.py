"""The exact most-harmful campaign on small instances: every simple path to every target (within the
limits) enumerated, then a MILP (scipy/HiGHS) picks at most one path per target so that the union of
their moves fits the capability budget and Σ harm · p(path) is greatest.

Exact for the model the ACO also optimises (`risk.aco.aco_campaign`), so the two can be compared;
it refuses (returns None with a reason) when the enumeration would exceed `max_paths`.
"""

from __future__ import annotations

import itertools
import math
import time

import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from healthswarm.risk.aco import Campaign, Edge, hops_to
from healthswarm.risk.attack_graph import SOURCE, target_states
from healthswarm.risk.paths import make_path
from healthswarm.risk.states import Node


def enumerate_paths(view: nx.DiGraph, target: str, max_steps: int, max_edges: int,
                    max_paths: int, deadline: float = math.inf) -> list[list[Node]] | None:
    """All simple SOURCE -> target-state paths within the limits, by depth-first search pruned with
    the hop distance to the target (a branch that cannot arrive within the edges left is not
    entered). None when there are more than max_paths, or the search passes the `deadline`
    (a time.perf_counter() value)."""
    goals = {s for s in target_states(target) if s in view}
    out: list[list[Node]] = []
    if SOURCE not in view or not goals:
        return out
    hops = hops_to(view, goals, max_edges)
    if SOURCE not in hops:
        return out
    succ = view.succ
    path: list[Node] = [SOURCE]
    on_path = {SOURCE}
    stack = [iter(succ[SOURCE].items())]
    steps = [0]
    visits = 0
    while stack:
        visits += 1
        if visits % 4096 == 0 and time.perf_counter() > deadline:
            return None
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            on_path.discard(path.pop())
            steps.pop()
            continue
        v, d = child
        left = max_edges - len(path)
        h = hops.get(v)
        if v in on_path or h is None or h > left or steps[-1] + d["step"] > max_steps:
            continue
        if v in goals:
            out.append([*path, v])
            if len(out) > max_paths:
                return None
            continue  # a path that held the target already is dominated by this shorter one
        path.append(v)
        on_path.add(v)
        steps.append(steps[-1] + d["step"])
        stack.append(iter(succ[v].items()))
    return out


def exact_campaign(view: nx.DiGraph, prizes: dict[str, float], budget: int | None, max_steps: int = 8,
                   max_edges: int = 40, max_paths: int = 5_000, time_limit: float = 30.0,
                   state_prizes: dict[Node, float] | None = None) -> Campaign | None:
    """None when the instance is too large for the exact method (too many paths, or enumeration
    slower than half the time limit)."""
    start = time.perf_counter()
    deadline = start + time_limit / 2
    candidates: list[tuple[str, list[Node], float]] = []
    for target, prize in prizes.items():
        paths = enumerate_paths(view, target, max_steps, max_edges, max_paths - len(candidates), deadline)
        if paths is None:
            return None
        for nodes in paths:
            p = math.prod(view[u][v]["p"] for u, v in itertools.pairwise(nodes))
            value = state_prizes.get(nodes[-1], prize) if state_prizes else prize
            candidates.append((target, nodes, value * p))
    campaign = Campaign(method="exact (all simple paths + MILP, HiGHS)")
    if not candidates:
        campaign.reason = "no target is reachable within the limits"
        campaign.seconds = time.perf_counter() - start
        return campaign
    edges: dict[Edge, int] = {}
    for _, nodes, _ in candidates:
        for e in itertools.pairwise(nodes):
            edges.setdefault(e, len(edges))
    n_paths, n_edges = len(candidates), len(edges)
    c = np.concatenate([-np.array([v for _, _, v in candidates]), np.zeros(n_edges)])
    rows, lower, upper = [], [], []
    targets = list(prizes)
    a = lil_matrix((len(targets) + sum(len(nodes) - 1 for _, nodes, _ in candidates) + 1, n_paths + n_edges))
    r = 0
    for ti, t in enumerate(targets):  # at most one path per target
        for j, (target, _, _) in enumerate(candidates):
            if target == t:
                a[r, j] = 1
        lower.append(0)
        upper.append(1)
        r += 1
        del ti
    for j, (_, nodes, _) in enumerate(candidates):  # a chosen path holds its edges: x_j - y_e <= 0
        for e in itertools.pairwise(nodes):
            a[r, j] = 1
            a[r, n_paths + edges[e]] = -1
            lower.append(-np.inf)
            upper.append(0)
            r += 1
    for e, i in edges.items():  # budget on the union of edges
        a[r, n_paths + i] = view[e[0]][e[1]]["cost"]
    lower.append(0)
    upper.append(budget if budget is not None else np.inf)
    r += 1
    rows = a[:r].tocsr()
    res = milp(c, constraints=LinearConstraint(rows, lower, upper), integrality=np.ones(n_paths + n_edges),
               bounds=Bounds(0, 1), options={"time_limit": time_limit})
    if res.x is None:
        campaign.reason = f"MILP failed: {res.message}"
        campaign.complete = False
        campaign.seconds = time.perf_counter() - start
        return campaign
    chosen = [candidates[j] for j in range(n_paths) if res.x[j] > 0.5]
    campaign.paths = [make_path(view, nodes) for _, nodes, _ in chosen]
    campaign.value = sum(v for _, _, v in chosen)
    used = {e for _, nodes, _ in chosen for e in itertools.pairwise(nodes)}
    campaign.cost = sum(view[u][v]["cost"] for u, v in used)
    campaign.complete = res.status == 0
    campaign.reason = f"{n_paths} candidate paths, {n_edges} moves; MILP status: {res.message}"
    campaign.seconds = time.perf_counter() - start
    return campaign
