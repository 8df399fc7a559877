"""The aggregate of several attack paths: P(at least one succeeds), exact, bounded below by the best
path and never lowered by one more path (hypothesis properties); the demo's figure for rim-pacs-01."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthswarm.risk.aggregate import union_probability
from healthswarm.risk.mitigate import Model, PathModel, pair_probability

MOVES = 6
probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# a path: a non-empty set of move ids out of MOVES shared moves
paths = st.lists(st.frozensets(st.integers(0, MOVES - 1), min_size=1, max_size=4), min_size=1, max_size=6)


def events(path: frozenset[int], p: list[float]) -> list[tuple[object, float]]:
    return [(m, p[m]) for m in sorted(path)]


def brute_force(routes: list[frozenset[int]], p: list[float]) -> float:
    """Σ over every outcome of the moves of its probability, when some route has all its moves succeed."""
    total = 0.0
    for outcome in itertools.product((False, True), repeat=MOVES):
        if any(all(outcome[m] for m in r) for r in routes):
            total += math.prod(p[m] if ok else 1 - p[m] for m, ok in enumerate(outcome))
    return total


def path_p(path: frozenset[int], p: list[float]) -> float:
    return math.prod(p[m] for m in path)


@settings(max_examples=300, deadline=None)
@given(paths, st.lists(probabilities, min_size=MOVES, max_size=MOVES))
def test_aggregate_is_exact_and_at_least_the_best_path(routes: list[frozenset[int]], p: list[float]) -> None:
    got = union_probability([events(r, p) for r in routes])
    assert got == pytest.approx(brute_force(routes, p), abs=1e-9)
    best = max(path_p(r, p) for r in routes)
    assert best - 1e-12 <= got <= min(1.0, sum(path_p(r, p) for r in routes)) + 1e-12


@settings(max_examples=300, deadline=None)
@given(paths, st.frozensets(st.integers(0, MOVES - 1), min_size=1, max_size=4),
       st.lists(probabilities, min_size=MOVES, max_size=MOVES))
def test_adding_a_path_never_lowers_the_aggregate(routes: list[frozenset[int]], extra: frozenset[int],
                                                  p: list[float]) -> None:
    before = union_probability([events(r, p) for r in routes])
    after = union_probability([events(r, p) for r in [*routes, extra]])
    assert after >= before - 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=8))
def test_independent_paths_combine_by_noisy_or(ps: list[float]) -> None:
    # PathModels without move probabilities are independent events: 1 - Π(1 - p)
    got = pair_probability([PathModel(p, [i]) for i, p in enumerate(ps)])
    assert got == pytest.approx(1 - math.prod(1 - p for p in ps), abs=1e-9)
    assert got >= max(ps) - 1e-12


def test_shared_moves_are_counted_once() -> None:
    # three paths of p = 0.125 that share their first move (p 0.5) and differ after it (p 0.25 each)
    shared = [[("entry", 0.5), (f"last{i}", 0.25)] for i in range(3)]
    assert union_probability(shared) == pytest.approx(0.5 * (1 - 0.75 ** 3))
    assert union_probability(shared) > 0.125
    # a path that needs everything another needs and more adds nothing
    assert union_probability([[("a", 0.5)], [("a", 0.5), ("b", 0.9)]]) == pytest.approx(0.5)
    assert union_probability([]) == 0.0 and union_probability([[("a", 1.0)]]) == 1.0
    assert union_probability([[("a", 0.0)], [("b", 0.2)]]) == pytest.approx(0.2)


def test_model_risk_is_harm_times_the_aggregate_of_uncut_paths() -> None:
    model = Model([], moves=[[[]], [[]], [[]]], groups=[
        ("phishing", "pacs", 0.75, [PathModel(0.125, [0, 1], [0.5, 0.25]), PathModel(0.125, [0, 2], [0.5, 0.25])])])
    p = 0.5 * (1 - 0.75 ** 2)
    assert model.probabilities(set()) == [pytest.approx(p)]
    assert model.baseline == pytest.approx(0.75 * p)
    pair = model.pairs(set())[0]
    assert pair["best_path_p"] == 0.125 and pair["p"] >= pair["best_path_p"] and pair["harm"] == 0.75


def test_demo_risk_to_the_pacs_is_at_least_its_best_path() -> None:
    # the issue: `risk mitigate` said 0.0937 for rim-pacs-01 while each of its paths had p = 0.125
    from healthswarm.demo import ADVISORIES, ECOSYSTEM
    from healthswarm.inventory import load_inventory
    from healthswarm.inventory.advisories import load_advisories, match_findings
    from healthswarm.risk.attack_graph import build_attack_graph
    from healthswarm.risk.engine import parse_attacker
    from healthswarm.risk.mitigate import build_model, solve

    inv = load_inventory([ECOSYSTEM])
    advisories, _ = load_advisories([ADVISORIES])
    graph = build_attack_graph(inv, match_findings(advisories, inv.assets))
    attackers = [parse_attacker("phishing@st-aurelia", graph.facts)]
    model = build_model(graph, attackers, ["rim-pacs-01"], k=5)
    plan = solve(graph, model, 10, "milp", profiles=attackers, targets=["rim-pacs-01"])
    pair = plan.as_dict()["pairs"][0]
    assert pair["paths"] == 5 and pair["best_path_p"] == pytest.approx(0.125, abs=1e-3)
    assert pair["p"] > pair["best_path_p"]  # several ways in: more likely than any one of them
    assert pair["risk"] == pytest.approx(pair["harm"] * pair["p"], abs=1e-6)
    assert plan.baseline == pytest.approx(pair["risk"], abs=1e-6)
    assert plan.true_baseline is not None and plan.true_baseline >= pair["harm"] * pair["best_path_p"] - 1e-9
    assert plan.optimal and plan.residual <= plan.baseline
