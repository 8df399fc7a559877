"""Cascade along dependencies: when assets fall, which others lose their service, across organisations.

A dependency A -> B (A depends on B) passes B's failure to A with a probability by kind
(`PASS_ON`). Failures combine as independent causes, P(A) = 1 - Π(1 - P(B)·pass) over A's
dependencies, iterated to a fixed point (so cycles are fine) with at most `max_rounds` rounds. A
`vendor-access` dependency points the other way for harm: the vendor falling does not stop the asset,
but hands the attacker its session, which the attack graph already models; here it passes on at a low
rate (support lost).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from healthswarm.model import Dependency, Inventory

PASS_ON = {"service": 0.9, "data": 0.7, "identity": 0.8, "network": 0.9, "power": 1.0, "vendor-access": 0.1}


@dataclass
class CascadeResult:
    failed: dict[str, float] = field(default_factory=dict)  # asset -> probability it is affected
    via: dict[str, str] = field(default_factory=dict)  # asset -> the dependency that carries most of it
    rounds: int = 0
    converged: bool = True

    def by_organisation(self, inventory: Inventory) -> dict[str, list[tuple[str, float]]]:
        org = {a.id: a.organisation for a in inventory.assets}
        out: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for asset, p in sorted(self.failed.items(), key=lambda x: -x[1]):
            out[org.get(asset, "?")].append((asset, p))
        return dict(out)

    def as_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "converged": self.converged,
                "affected": [{"asset": a, "p": round(p, 4), "via": self.via.get(a, "")}
                             for a, p in sorted(self.failed.items(), key=lambda x: -x[1])]}


def cascade(inventory: Inventory, initial: dict[str, float], max_rounds: int = 50,
            tolerance: float = 1e-6, threshold: float = 1e-3) -> CascadeResult:
    """Propagate initial failure probabilities (asset -> p) along the dependencies."""
    dependents: dict[str, list[tuple[str, str]]] = defaultdict(list)  # B -> [(A, kind)]
    needs: dict[str, list[Dependency]] = defaultdict(list)  # A -> its dependencies
    for d in inventory.dependencies:
        dependents[d.target].append((d.source, d.kind))
        needs[d.source].append(d)
    p = dict(initial)
    via: dict[str, str] = {}
    result = CascadeResult()
    frontier = set(initial)
    for rnd in range(1, max_rounds + 1):
        result.rounds = rnd
        touched = {a for b in frontier for a, _ in dependents.get(b, ())}
        changed = set()
        for a in touched:
            survive = 1 - initial.get(a, 0.0)
            strongest, why = 0.0, ""
            for d in needs.get(a, ()):
                carried = p.get(d.target, 0.0) * PASS_ON.get(d.kind, 0.5)
                survive *= 1 - carried
                if carried > strongest:
                    strongest, why = carried, f"{d.kind} dependency on {d.target}"
            value = 1 - survive
            if value > p.get(a, 0.0) + tolerance:
                p[a] = value
                via[a] = why
                changed.add(a)
        if not changed:
            break
        frontier = changed
    else:
        result.converged = False
    result.failed = {a: v for a, v in p.items() if v >= threshold}
    result.via = via
    return result

