"""The straightforward evaluation the engine must agree with: every rule tested on every event.

Each rule is one plain predicate — its log source as a test of the event's route key, then its condition
over each atom's own predicate (`atoms.predicate`) — with no routing, field index, Aho-Corasick, triggers,
guards or memo. Orders of magnitude slower than `SigmaEngine.match_view`; the tests and the detection
benchmark compare the two on the shared samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from healthswarm.detect.sigma.atoms import predicate
from healthswarm.detect.sigma.engine import SigmaEngine

View = dict[str, Any]
RouteKey = tuple[Any, ...]
RulePredicate = Callable[[View, RouteKey], bool]


def _condition(node: tuple[Any, ...], atoms: list[Any]) -> Callable[[View], bool]:
    kind = node[0]
    if kind == "a":
        return predicate(atoms[node[1]])
    if kind == "not":
        inner = _condition(node[1], atoms)
        return lambda view: not inner(view)
    if kind == "const":
        return lambda view: bool(node[1])
    children = [_condition(c, atoms) for c in node[1]]
    if kind == "and":
        return lambda view: all(c(view) for c in children)
    return lambda view: any(c(view) for c in children)


def _covers(routes: tuple[tuple[Any, ...], ...]) -> Callable[[RouteKey], bool]:
    def covers(key: RouteKey) -> bool:
        for route in routes:
            if route[0] == "win" and key[0] == "win" and route[1] in (None, key[1]) and route[2] in (None, key[2]):
                return True
            if route[0] == "obs" and key[0] == "obs" and route[1] == key[1]:
                return True
            if route[0] not in ("win", "obs") and key[0] == "obs":  # a non-Windows rule without a product
                return True
        return False
    return covers


def reference_rules(engine: SigmaEngine) -> list[RulePredicate]:
    """Each of the engine's rules as one predicate over (view, route key)."""
    atoms = engine.tables.atoms
    out: list[RulePredicate] = []
    for rule, condition in zip(engine.rules, engine.tables.conditions, strict=True):
        source, match = _covers(rule.routes), _condition(condition, atoms)
        out.append(lambda view, key, s=source, m=match: s(key) and m(view))
    return out


def reference_matches(rules: list[RulePredicate], view: View, key: RouteKey) -> list[int]:
    """Indices of the rules that match, in order (as `SigmaEngine.match_view` returns them)."""
    return [i for i, rule in enumerate(rules) if rule(view, key)]
