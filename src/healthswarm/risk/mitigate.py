"""Which controls, within a budget, cut the most risk.

Model: for each (attacker profile, target) pair the k most likely paths (Yen). A control removes
the techniques carrying its tag; a move is cut when none of its usable techniques survives; a path
is cut when one of its moves is. The residual risk of a pair is harm(target) × P(target), where
P(target) is the probability that **at least one** of its uncut candidate paths succeeds, each move
succeeding independently with its probability (`risk.aggregate.union_probability`: exact, never
below the best path, never lowered by one more path); the objective is the sum over pairs.
Solvers of the same model:

- `milp`: exact, scipy.optimize.milp (HiGHS), with x_c (control chosen), u_e (move cut),
  z_π (path cut) and r_g (residual probability of pair g) — all linear: r_g ≥ U(S)·(1 − Σ_{π∈S} z_π)
  for every set S of the pair's paths, U(S) the at-least-one probability of S; since U grows with
  S, r_g is the union of exactly the uncut paths (exact up to `MILP_MAX_SUBSET_PATHS` paths a pair;
  beyond, sets of at most two paths are written and the plan is not called optimal).
- `greedy`: best risk-cut per cost first (with a little credit for paths cut, which the max hides),
  then local search (fill the budget, single swaps).
- `aco`: an ant colony over controls, polished by the same local search; the default at scale.
- `brute`: every subset (tests, tiny instances).
`solve(method="auto")` runs the MILP when the model is small enough and the ACO otherwise; with
`compare=True` it also runs greedy and ACO and reports their optimality gaps. After solving, the chosen set is
re-evaluated on the real graph (fresh shortest paths with the controls applied), since attackers may
switch to paths outside the candidate set.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from healthswarm.risk.aggregate import union_probability
from healthswarm.risk.attack_graph import SOURCE, AttackGraph
from healthswarm.risk.controls import Control, candidate_controls
from healthswarm.risk.impact import worst_harm
from healthswarm.risk.paths import k_best_paths
from healthswarm.risk.profiles import Attacker, Profile, attacker_of
from healthswarm.risk.states import Node

MILP_MAX_CONTROLS = 400
MILP_MAX_PATHS = 5_000
MILP_MAX_SUBSET_PATHS = 8  # per pair: 2^8 - 1 = 255 rows, the exact union in the MILP


@dataclass
class PathModel:
    p: float
    moves: list[int]  # indices into Model.moves
    # the probability of each move, aligned with `moves`; without them the path is one event of
    # probability p, independent of every other path
    move_p: list[float] | None = None

    def events(self, key: int) -> list[tuple[object, float]]:
        """The independent events the path needs, for `union_probability`."""
        if self.move_p is None:
            return [(("path", key), self.p)]
        return [(("move", m), p) for m, p in zip(self.moves, self.move_p, strict=True)]


def pair_probability(paths: list[PathModel]) -> float:
    """P(at least one of `paths` succeeds): the pair's aggregate, ≥ its best path's p."""
    return union_probability([pm.events(i) for i, pm in enumerate(paths)])


@dataclass
class Model:
    controls: list[Control]
    # per move: for each usable technique, the indices of the controls that remove it
    moves: list[list[list[int]]] = field(default_factory=list)
    groups: list[tuple[str, str, float, list[PathModel]]] = field(default_factory=list)  # profile, target, harm, paths
    k: int = 5  # candidate paths per pair (the re-evaluation on the real graph takes as many)
    _cache: dict[tuple[int, tuple[int, ...]], float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def baseline(self) -> float:
        return self.residual(set())

    def move_cut(self, m: int, chosen: set[int]) -> bool:
        return all(any(c in chosen for c in removers) for removers in self.moves[m])

    def residual(self, chosen: set[int]) -> float:
        return sum(harm * p for harm, p in zip((g[2] for g in self.groups), self.probabilities(chosen), strict=True))

    def probabilities(self, chosen: set[int]) -> list[float]:
        """Per pair, P(at least one uncut candidate path succeeds)."""
        cut = [self.move_cut(m, chosen) for m in range(len(self.moves))]
        out = []
        for g, (_, _, _, paths) in enumerate(self.groups):
            uncut = tuple(i for i, pm in enumerate(paths) if not any(cut[m] for m in pm.moves))
            key = (g, uncut)
            if key not in self._cache:  # the solvers ask for the same sets of uncut paths many times
                self._cache[key] = pair_probability([paths[i] for i in uncut])
            out.append(self._cache[key])
        return out

    def pairs(self, chosen: set[int]) -> list[dict[str, Any]]:
        """Each pair's figures before and after `chosen`: best path, aggregate probability, harm, risk."""
        before, after = self.probabilities(set()), self.probabilities(chosen)
        return [{"attacker": name, "target": target, "paths": len(paths),
                 "best_path_p": round(max((pm.p for pm in paths), default=0.0), 6),
                 "p": round(b, 6), "harm": round(harm, 6), "risk": round(harm * b, 6),
                 "residual_p": round(a, 6), "residual_risk": round(harm * a, 6)}
                for (name, target, harm, paths), b, a in zip(self.groups, before, after, strict=True)]

    def cost(self, chosen: set[int]) -> float:
        return sum(self.controls[c].cost for c in chosen)


@dataclass
class Plan:
    method: str
    chosen: list[Control]
    cost: float
    baseline: float  # model risk before
    residual: float  # model risk after
    seconds: float
    optimal: bool = False
    note: str = ""
    true_baseline: float | None = None  # re-evaluated on the real graph
    true_residual: float | None = None
    gap: dict[str, Any] | None = None
    pairs: list[dict[str, Any]] = field(default_factory=list)  # per (attacker, target): see Model.pairs

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "optimal": self.optimal, "cost": self.cost,
                "baseline_risk": round(self.baseline, 6), "residual_risk": round(self.residual, 6),
                "reduction": round(1 - self.residual / self.baseline, 4) if self.baseline else 0.0,
                "true_baseline_risk": None if self.true_baseline is None else round(self.true_baseline, 6),
                "true_residual_risk": None if self.true_residual is None else round(self.true_residual, 6),
                "seconds": round(self.seconds, 4), "note": self.note, "gap": self.gap,
                "risk_definition": RISK_DEFINITION, "pairs": self.pairs,
                "controls": [c.as_dict() for c in self.chosen]}


RISK_DEFINITION = ("risk = Σ over (attacker, target) of harm(target) × P(target); P(target) = probability that at "
                   "least one candidate path succeeds, moves independent (≥ the best path's p)")


def build_model(graph: AttackGraph, profiles: list[Profile | Attacker], targets: list[str], k: int = 5,
                organisation: str | None = None, costs: dict[str, float] | None = None,
                max_steps: int | None = None, time_limit: float = 10.0) -> Model:
    raw: list[tuple[str, str, float, list[tuple[float, list[tuple[Node, Node]], list[float]]]]] = []
    techniques_of: dict[tuple[Node, Node], list[frozenset[str]]] = {}
    tags: list[str] = []
    for item in profiles:
        who = attacker_of(item, organisation)
        prof = who.profile
        view = graph.view(prof, who.organisation)
        for t in targets:
            result = k_best_paths(view, [t], k=k, max_steps=max_steps, time_limit=time_limit)
            if not result.paths:
                continue
            paths = []
            for ap in result.paths:
                nodes = [SOURCE, *ap.nodes]
                edges = list(itertools.pairwise(nodes))
                paths.append(edges)
                for e in edges:
                    if e not in techniques_of:
                        usable = [tech.tags for tech in _usable_all(graph, view, e, prof.skill)]
                        techniques_of[e] = usable
                        tags.extend(tag for ts in usable for tag in ts)
            name = prof.name + (f"@{who.organisation}" if who.organisation else "")
            raw.append((name, t, worst_harm(graph.facts.assets[t]), [
                _with_p(view, edges) for edges in paths]))
    controls = candidate_controls(graph.facts, tags, costs)
    by_tag: dict[str, list[int]] = {}
    for i, c in enumerate(controls):
        for tag in c.tags:
            by_tag.setdefault(tag, []).append(i)
    model = Model(controls, k=k)
    index: dict[tuple[Node, Node], int] = {}
    for e, usable in techniques_of.items():
        index[e] = len(model.moves)
        model.moves.append([sorted({c for tag in ts for c in by_tag.get(tag, [])}) for ts in usable])
    for name, t, harm, paths in raw:
        model.groups.append((name, t, harm, [PathModel(p, [index[e] for e in edges], move_p)
                                             for p, edges, move_p in paths]))
    return model


def _with_p(view: nx.DiGraph, edges: list[tuple[Node, Node]]) -> tuple[float, list[tuple[Node, Node]], list[float]]:
    move_p = [view[u][v]["p"] for u, v in edges]
    return math.prod(move_p), edges, move_p


def _usable_all(graph: AttackGraph, view: nx.DiGraph, e: tuple[Node, Node], skill: int) -> list[Any]:
    if e[0] == SOURCE:
        technique = view[e[0]][e[1]]["technique"]
        return [technique]
    return [t for t in graph.techniques(*e) if t.difficulty <= skill]


def _subsets(model: Model) -> tuple[list[tuple[int, list[int], float]], bool]:
    """The MILP's residual rows: (pair, indices of its paths in the pair, U(those paths)) for every
    non-empty set of a pair's paths (exact), or the sets of at most two paths of a pair with more
    than MILP_MAX_SUBSET_PATHS paths (then not exact); and whether every pair was exact."""
    rows: list[tuple[int, list[int], float]] = []
    exact = True
    for g, (_, _, _, paths) in enumerate(model.groups):
        n = len(paths)
        sizes = range(1, n + 1) if n <= MILP_MAX_SUBSET_PATHS else range(1, 3)
        exact = exact and n <= MILP_MAX_SUBSET_PATHS
        for size in sizes:
            for combo in itertools.combinations(range(n), size):
                rows.append((g, list(combo), pair_probability([paths[i] for i in combo])))
    return rows, exact


def solve_milp(model: Model, budget: float, time_limit: float = 30.0) -> tuple[set[int], bool, str]:
    nc, nm = len(model.controls), len(model.moves)
    paths = [(g, pm) for g, (_, _, _, pms) in enumerate(model.groups) for pm in pms]
    first = {}  # pair -> index of its first path in `paths`
    for j, (g, _) in enumerate(paths):
        first.setdefault(g, j)
    subsets, exact = _subsets(model)
    npaths, ng = len(paths), len(model.groups)
    # variables: x (nc) | u (nm) | z (npaths) | r (ng)
    nvar = nc + nm + npaths + ng
    c = np.zeros(nvar)
    for i, ctrl in enumerate(model.controls):  # a hair of cost so that no useless control is bought
        c[i] = 1e-7 * ctrl.cost
    for g, (_, _, harm, _) in enumerate(model.groups):
        c[nc + nm + npaths + g] = harm
    n_rows = 1 + sum(len(m) for m in model.moves) + nm + npaths + len(subsets)
    a = lil_matrix((n_rows, nvar))
    lo: list[float] = []
    hi: list[float] = []
    r = 0
    for i, ctrl in enumerate(model.controls):
        a[r, i] = ctrl.cost
    lo.append(0)
    hi.append(budget)
    r += 1
    ub = np.ones(nvar)
    ub[nc + nm + npaths:] = 1.0
    for m, usable in enumerate(model.moves):
        if any(not removers for removers in usable) or not usable:
            ub[nc + m] = 0  # some technique no control removes: the move cannot be cut
            continue
        for removers in usable:  # u_m <= sum of controls removing this technique
            a[r, nc + m] = 1
            for ci in removers:
                a[r, ci] = -1
            lo.append(-np.inf)
            hi.append(0)
            r += 1
    for j, (_, pm) in enumerate(paths):
        a[r, nc + nm + j] = 1  # z_path <= sum of its moves cut
        for m in set(pm.moves):
            a[r, nc + m] -= 1
        lo.append(-np.inf)
        hi.append(0)
        r += 1
    for g, members, u in subsets:  # r_g >= U(S) (1 - Σ_{π∈S} z_π): r_g + U Σ z >= U
        a[r, nc + nm + npaths + g] = 1
        for i in members:
            a[r, nc + nm + first[g] + i] = u
        lo.append(u)
        hi.append(np.inf)
        r += 1
    integrality = np.concatenate([np.ones(nc + nm + npaths), np.zeros(ng)])
    res = milp(c, constraints=LinearConstraint(a[:r].tocsr(), lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(nvar), ub), options={"time_limit": time_limit})
    if res.x is None:
        return set(), False, f"MILP found no solution: {res.message}"
    chosen = {i for i in range(nc) if res.x[i] > 0.5}
    message = str(res.message) if exact else (f"{res.message} (a pair has more than {MILP_MAX_SUBSET_PATHS} "
                                             "paths: sets of at most two paths are exact, not optimal overall)")
    return chosen, res.status == 0 and exact, message


def solve_greedy(model: Model, budget: float) -> set[int]:
    """Best (risk cut + a little partial credit) per cost first, then local search."""
    chosen: set[int] = set()
    current, credit = model.residual(chosen), 0.0
    while True:
        best, best_score = None, 0.0
        for i, ctrl in enumerate(model.controls):
            if i in chosen or model.cost(chosen) + ctrl.cost > budget + 1e-9:
                continue
            trial = chosen | {i}
            gain = current - model.residual(trial) + 0.1 * (_partial_credit(model, trial) - credit)
            score = gain / max(ctrl.cost, 1e-9)
            if gain > 1e-12 and score > best_score:
                best, best_score = i, score
        if best is None:
            break
        chosen.add(best)
        current, credit = model.residual(chosen), _partial_credit(model, chosen)
    return _local_search(model, budget, chosen)


def _local_search(model: Model, budget: float, chosen: set[int]) -> set[int]:
    """Fill the budget with any control that still helps, then single swaps (one out, one in)."""
    current = model.residual(chosen)
    improved = True
    while improved:
        improved = False
        for i in range(len(model.controls)):
            if i not in chosen and model.cost(chosen) + model.controls[i].cost <= budget + 1e-9:
                trial = chosen | {i}
                if model.residual(trial) < current - 1e-12:
                    chosen, current, improved = trial, model.residual(trial), True
        for out_, in_ in itertools.product(sorted(chosen), range(len(model.controls))):
            if in_ in chosen:
                continue
            trial = (chosen - {out_}) | {in_}
            if model.cost(trial) <= budget + 1e-9 and model.residual(trial) < current - 1e-12:
                chosen, current, improved = trial, model.residual(trial), True
                break
    return chosen


def _partial_credit(model: Model, chosen: set[int]) -> float:
    """Σ harm · p over the candidate paths cut: rewards progress the max-of-paths residual hides."""
    cut = [model.move_cut(m, chosen) for m in range(len(model.moves))]
    return sum(harm * pm.p for _, _, harm, paths in model.groups for pm in paths if any(cut[m] for m in pm.moves))


def solve_aco(model: Model, budget: float, ants: int = 20, iterations: int = 40, seed: int = 7,
              rho: float = 0.1, beta: float = 1.0, time_limit: float = 10.0) -> set[int]:
    """Ant colony over controls (MAX-MIN): each ant fills the budget choosing controls with probability
    ∝ τ · η^β, η = (risk cut alone + partial credit) / cost; the best set is polished by local search."""
    rng = random.Random(seed)
    n = len(model.controls)
    if n == 0:
        return set()
    base = model.baseline
    raw = [((base - model.residual({i})) + 0.1 * _partial_credit(model, {i})) / max(c.cost, 1e-9)
           for i, c in enumerate(model.controls)]
    # controls that only help together (a move with two techniques) get a fair base chance
    floor = 0.25 * sum(raw) / n + 1e-9
    eta = [r + floor for r in raw]
    tau = [1.0] * n
    best, best_value = set(), base
    start = time.perf_counter()
    for _ in range(iterations):
        iteration_best, iteration_value = None, math.inf
        for _ in range(ants):
            chosen: set[int] = set()
            spent = 0.0
            while True:
                options = [i for i in range(n) if i not in chosen and spent + model.controls[i].cost <= budget + 1e-9]
                if not options:
                    break
                weights = [tau[i] * eta[i] ** beta for i in options]
                pick = rng.random() * sum(weights)
                choice = options[-1]
                for i, w in zip(options, weights, strict=True):
                    pick -= w
                    if pick <= 0:
                        choice = i
                        break
                chosen.add(choice)
                spent += model.controls[choice].cost
            value = model.residual(chosen)
            if value < iteration_value:
                iteration_best, iteration_value = chosen, value
        if iteration_best is not None and iteration_value < best_value - 1e-12:
            best, best_value = iteration_best, iteration_value
        tau = [max(0.05, min(5.0, t * (1 - rho))) for t in tau]
        for i in best | (iteration_best or set()):
            tau[i] = min(5.0, tau[i] + 1.0)
        if time.perf_counter() - start > time_limit:
            break
    return _local_search(model, budget, set(best))


def solve_brute(model: Model, budget: float) -> set[int]:
    best, best_value = set(), model.residual(set())
    n = len(model.controls)
    for size in range(1, n + 1):
        for combo in itertools.combinations(range(n), size):
            s = set(combo)
            if model.cost(s) <= budget + 1e-9:
                v = model.residual(s)
                if v < best_value - 1e-12:
                    best, best_value = s, v
    return best


def true_risk(graph: AttackGraph, profiles: list[Profile | Attacker], targets: list[str], removed: frozenset[str],
              organisation: str | None = None, k: int = 5) -> float:
    """Σ harm × P(target) on the real graph with `removed` tags gone: P(target) is the at-least-one
    probability of the k most likely paths found afresh (so ≥ the best remaining path's p)."""
    total = 0.0
    for item in profiles:
        who = attacker_of(item, organisation)
        view = graph.view(who.profile, who.organisation, removed=removed)
        if SOURCE not in view:
            continue
        for t in targets:
            found = k_best_paths(view, [t], k=k)
            events = [[((u, v), view[u][v]["p"]) for u, v in itertools.pairwise([SOURCE, *ap.nodes])]
                      for ap in found.paths]
            total += worst_harm(graph.facts.assets[t]) * union_probability(events)
    return total


def solve(graph: AttackGraph, model: Model, budget: float, method: str = "auto", compare: bool = False,
          profiles: list[Profile | Attacker] | None = None, targets: list[str] | None = None,
          organisation: str | None = None, time_limit: float = 30.0) -> Plan:
    n_paths = sum(len(g[3]) for g in model.groups)
    fits = len(model.controls) <= MILP_MAX_CONTROLS and n_paths <= MILP_MAX_PATHS
    use = method if method != "auto" else ("milp" if fits else "aco")
    note = ("" if method != "auto" else
            f"MILP chosen: {len(model.controls)} controls, {n_paths} paths fit" if fits else
            f"ACO chosen: {len(model.controls)} controls / {n_paths} paths exceed the MILP limits")
    start = time.perf_counter()
    baseline = model.baseline
    optimal = False
    if use == "milp":
        chosen, optimal, msg = solve_milp(model, budget, time_limit)
        note = f"{note}; HiGHS: {msg}".strip("; ")
    elif use == "greedy":
        chosen = solve_greedy(model, budget)
    elif use == "aco":
        chosen = solve_aco(model, budget, time_limit=time_limit)
    elif use == "brute":
        chosen, optimal = solve_brute(model, budget), True
    else:
        raise ValueError(f"unknown method {method!r}")
    plan = Plan(use, [model.controls[i] for i in sorted(chosen)], model.cost(chosen), baseline,
                model.residual(chosen), time.perf_counter() - start, optimal, note, pairs=model.pairs(chosen))
    if compare and use == "milp":
        plan.gap = {}
        for name, heuristic in (("greedy", solve_greedy), ("aco", solve_aco)):
            h_start = time.perf_counter()
            found = heuristic(model, budget)
            h_time = time.perf_counter() - h_start
            h_res = model.residual(found)
            plan.gap[name] = {
                "residual": round(h_res, 6), "seconds": round(h_time, 4),
                "relative_gap": round((h_res - plan.residual) / plan.residual, 6) if plan.residual > 1e-12
                else (0.0 if h_res <= 1e-12 else None),
                "gap_share_of_baseline": round((h_res - plan.residual) / baseline, 6) if baseline else 0.0}
        plan.gap["exact_residual"] = round(plan.residual, 6)
    if profiles is not None and targets is not None:
        removed = frozenset(t for c in plan.chosen for t in c.tags)
        plan.true_baseline = true_risk(graph, profiles, targets, frozenset(), organisation, model.k)
        plan.true_residual = true_risk(graph, profiles, targets, removed, organisation, model.k)
    return plan
