"""Mitigation choice: the MILP is exact (checked against brute force), heuristics never beat it."""

from __future__ import annotations

import random

import pytest

from healthswarm.model import Dependency, Flow
from healthswarm.risk.attack_graph import build_attack_graph
from healthswarm.risk.controls import Control, candidate_controls
from healthswarm.risk.mitigate import (
    Model,
    PathModel,
    build_model,
    solve,
    solve_aco,
    solve_brute,
    solve_greedy,
    solve_milp,
)
from healthswarm.risk.profiles import PROFILES
from test_risk_paths import PHYSICAL, RCE, RCE_HARD, asset, finding, hospital


def random_model(rng: random.Random, n_controls: int = 8, n_moves: int = 14, n_groups: int = 4) -> Model:
    controls = [Control(f"c{i}", "test", f"c{i}", float(rng.randint(1, 5)), frozenset({f"t{i}"}))
                for i in range(n_controls)]
    model = Model(controls)
    for _ in range(n_moves):  # each move: 1-2 techniques, each removable by 0-2 controls
        model.moves.append([sorted(rng.sample(range(n_controls), rng.randint(0, 2)))
                            for _ in range(rng.randint(1, 2))])
    for g in range(n_groups):
        paths = [PathModel(rng.uniform(0.05, 0.9), rng.sample(range(n_moves), rng.randint(1, 4)))
                 for _ in range(rng.randint(1, 4))]
        model.groups.append(("p", f"t{g}", rng.uniform(0.1, 1.0), paths))
    return model


@pytest.mark.parametrize("seed", range(12))
def test_milp_equals_brute_force_on_tiny_models(seed: int) -> None:
    rng = random.Random(seed)
    model = random_model(rng)
    for budget in (0, 3, 6, 10, 40):
        exact, optimal, _ = solve_milp(model, budget)
        brute = solve_brute(model, budget)
        assert optimal
        assert model.cost(exact) <= budget + 1e-9
        assert model.residual(exact) == pytest.approx(model.residual(brute), abs=1e-7)
        for heuristic in (solve_greedy(model, budget), solve_aco(model, budget, iterations=15)):
            assert model.cost(heuristic) <= budget + 1e-9
            assert model.residual(heuristic) >= model.residual(exact) - 1e-9


def test_plan_on_a_small_hospital_cuts_the_paths() -> None:
    inv = hospital(extra_assets=(asset("ws", "corp", "workstation"),),
                   flows=(Flow("ws", "srv", "rdp", 3389),), deps=(Dependency("srv", "vws", "vendor-access"),))
    findings = [finding("web", "CVE-A", RCE), finding("srv", "CVE-C", RCE_HARD),
                finding("pump", "CVE-2023-30560", PHYSICAL)]
    graph = build_attack_graph(inv, findings)
    profiles = [PROFILES[n] for n in ("external", "vendor", "physical", "phishing")]
    targets = ["srv", "pump"]
    model = build_model(graph, profiles, targets, k=4)
    kinds = {c.kind for c in model.controls}
    assert {c.label for c in model.controls if c.kind == "patch"} >= {"patch CVE-A on 1 asset"}
    assert {"patch", "disable-vendor-access", "physical", "block-flow", "segment", "mfa"} <= kinds
    assert len(model.controls) <= 16
    for budget in (0, 2, 5, 12, 100):
        plan = solve(graph, model, budget, "milp", compare=True, profiles=profiles, targets=targets)
        brute = solve_brute(model, budget)
        assert plan.optimal and plan.cost <= budget
        assert plan.residual == pytest.approx(model.residual(brute), abs=1e-9)
        assert plan.gap is not None
        assert plan.gap["greedy"]["residual"] >= plan.residual - 1e-6
        assert plan.gap["aco"]["residual"] >= plan.residual - 1e-6
        assert plan.true_residual is not None and plan.true_residual <= plan.true_baseline + 1e-9
    plan = solve(graph, model, 100, "milp", profiles=profiles, targets=targets)
    assert plan.residual == 0.0 and plan.true_residual == pytest.approx(0.0)
    # with no budget nothing changes
    nothing = solve(graph, model, 0, "milp", profiles=profiles, targets=targets)
    assert nothing.chosen == [] and nothing.residual == pytest.approx(nothing.baseline)


def test_aco_over_controls_stays_within_tolerance_of_exact() -> None:
    for seed in range(8):
        model = random_model(random.Random(100 + seed), n_controls=10, n_moves=20, n_groups=6)
        for budget in (4, 8):
            exact = model.residual(solve_milp(model, budget)[0])
            found = model.residual(solve_aco(model, budget, seed=seed))
            assert exact - 1e-9 <= found <= exact + 0.05 * model.baseline


def test_no_control_cuts_a_safety_critical_device_off_its_flows() -> None:
    inv = hospital(flows=(Flow("pump", "srv", "https", 443), Flow("web", "web2", "https", 443)))
    graph = build_attack_graph(inv, [finding("srv", "CVE-C", RCE)])
    controls = candidate_controls(graph.facts, ["flow:pump>srv:https", "flow:web>web2:https"])
    assert [c.id for c in controls] == ["flow:web>web2:https"]
