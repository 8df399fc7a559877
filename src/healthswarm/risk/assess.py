"""Exposure per organisation and attacker profile: how likely each asset falls and what it would cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from healthswarm.risk.attack_graph import AttackGraph
from healthswarm.risk.profiles import PROFILES, Attacker, Profile, attacker_of
from healthswarm.risk.whatif import AtRisk, reach_from


@dataclass
class Exposure:
    profile: str
    organisation: str
    expected_harm: float
    assets_at_risk: int
    top: list[AtRisk] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "organisation": self.organisation,
                "expected_harm": round(self.expected_harm, 4), "assets_at_risk": self.assets_at_risk,
                "top": [r.as_dict() for r in self.top]}


def assess(graph: AttackGraph, profiles: list[Profile | Attacker] | None = None, organisation: str | None = None,
           min_p: float = 0.01, top: int = 3) -> list[Exposure]:
    """For each profile (entries anywhere, or in `organisation`), the organisations it can hurt."""
    out: list[Exposure] = []
    for item in profiles or list(PROFILES.values()):
        who = attacker_of(item, organisation)
        prof = who.profile
        view = graph.view(prof, who.organisation)
        per_org: dict[str, list[AtRisk]] = {}
        for r in reach_from(graph, view, min_p):
            per_org.setdefault(r.organisation, []).append(r)
        for org, items in sorted(per_org.items()):
            out.append(Exposure(prof.name, org, sum(r.p * r.harm for r in items), len(items), items[:top]))
    out.sort(key=lambda e: -e.expected_harm)
    return out
