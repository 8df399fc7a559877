"""Risk raised by the swarm: what a strong threat field means for our own assets.

Two rules, both only at or above the threshold (priority *high*; one trusted peer alone is not enough):
- a `vendor:` or `model:` key raises the risk of our assets of that vendor or model (product) —
  another organisation's incident involving the same infusion pump model makes ours likelier targets;
- an `indicator:` or `technique:` key reported by an organisation we depend on raises the risk of
  our assets that depend on it — its compromise may reach us through the service it provides.

The factor grows with the level: ×1.5 at the threshold, ×2 at twice the threshold or more. A vendor
alone (no model match) raises by half as much, because most of a vendor's products are unaffected by
one product's problem. Raises are recomputed from the field at every review, so they follow its
evaporation: when a level falls below the threshold its raise is lifted, with no message needed.
Field keys carry names normalised (`items.normalise`: case, punctuation, spacing), and our inventory's
names are normalised the same way before they are compared.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from healthswarm.model import Asset, Inventory
from healthswarm.swarm.items import normalise
from healthswarm.swarm.node import SwarmNode

INCIDENT_PREFIXES = ("indicator:", "technique:")
MAX_FACTOR = 2.0


@dataclass(frozen=True)
class Strong:
    """A field key at or above the threshold: its level and the organisations behind it."""

    key: str
    level: float
    reporters: tuple[str, ...]


@dataclass(frozen=True)
class Raise:
    """One reason to raise the risk of some of our assets, explained for the analyst."""

    reason: str                 # "model", "vendor" or "dependency"
    keys: tuple[str, ...]
    level: float
    factor: float
    assets: tuple[str, ...]
    reporters: tuple[str, ...]
    explanation: str


def factor_for(level: float, threshold: float, share: float = 1.0) -> float:
    return round(1 + share * 0.5 * min(level / threshold, MAX_FACTOR), 2)


def span(ids: list[str]) -> str:
    """`sta-pump-01..07` for consecutive numbered ids of one prefix, else a short list."""
    parts = [re.fullmatch(r"(.*?)(\d+)", i) for i in sorted(ids)]
    if len(ids) > 1 and all(parts) and len({p.group(1) for p in parts if p}) == 1:
        numbers = [int(p.group(2)) for p in parts if p]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))) and parts[0] and parts[-1]:
            return f"{parts[0].group(0)}..{parts[-1].group(2)}"
    shown = sorted(ids)[:5]
    return ", ".join(shown) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _reported(strong: list[Strong]) -> str:
    orgs = sorted({r for s in strong for r in s.reporters})
    return f"reported by {len(orgs)} organisation{'s' if len(orgs) != 1 else ''}: {', '.join(orgs)}"


@dataclass
class RiskRaiser:
    """Turns the node's strong keys into raises for one organisation's assets (see the module docstring)."""

    inventory: Inventory
    organisation: str

    def __post_init__(self) -> None:
        self.ours = [a for a in self.inventory.assets if a.organisation == self.organisation]
        self.assets = {a.id: a for a in self.inventory.assets}
        self.org_names = {o.id: o.name for o in self.inventory.organisations}

    def strong(self, node: SwarmNode, now: float) -> dict[str, Strong]:
        """Keys at or above the threshold that at least one other organisation reports: what our own
        incidents alone imply is live risk's business (risk/live.py), not the swarm's."""
        bar = node.params.threshold
        out = {}
        for key in node.field.state:
            contributions = node.field.contributions(key, now, node.weight)
            level = sum(c for _, c in contributions)
            reporters = tuple(org for org, c in contributions if c > 0)
            if level >= bar and set(reporters) - {self.organisation}:
                out[key] = Strong(key, level, reporters)
        return out

    def raises(self, node: SwarmNode, now: float) -> list[Raise]:
        strong = self.strong(node, now)
        bar = node.params.threshold
        return self._devices(strong, bar) + self._dependencies(strong, bar)

    def _devices(self, strong: dict[str, Strong], bar: float) -> list[Raise]:
        vendors = {normalise(k.split(":", 1)[1]): s for k, s in strong.items() if k.startswith("vendor:")}
        models = {normalise(k.split(":", 1)[1]): s for k, s in strong.items() if k.startswith("model:")}
        groups: dict[tuple[str, tuple[Strong, ...]], list[str]] = defaultdict(list)
        for asset in self.ours:
            vendor = vendors.get(normalise(asset.vendor)) if asset.vendor else None
            model = models.get(normalise(asset.product)) if asset.product else None
            if model is not None:
                found = tuple(s for s in (vendor, model) if s is not None)
                groups[("model", found)].append(asset.id)
            elif vendor is not None:
                groups[("vendor", (vendor,))].append(asset.id)
        out = []
        for (reason, found), ids in sorted(groups.items(), key=lambda g: (g[0][0], [s.key for s in g[0][1]])):
            lead = max(found, key=lambda s: s.level) if reason == "vendor" else found[-1]
            factor = factor_for(lead.level, bar, 1.0 if reason == "model" else 0.5)
            keys = " ".join(s.key for s in found)
            text = (f"swarm level {lead.level:.2f} ≥ {bar:.2f} for {keys} ({_reported(list(found))}) → risk of "
                    f"{span(ids)} raised ×{factor:g}")
            out.append(Raise(reason, tuple(s.key for s in found), lead.level, factor, tuple(sorted(ids)),
                             tuple(sorted({r for s in found for r in s.reporters})), text))
        return out

    def _dependencies(self, strong: dict[str, Strong], bar: float) -> list[Raise]:
        by_org: dict[str, list[Strong]] = defaultdict(list)
        for s in strong.values():
            if s.key.startswith(INCIDENT_PREFIXES):
                for org in s.reporters:
                    if org != self.organisation:
                        by_org[org].append(s)
        out = []
        for dep in self.inventory.dependencies:
            source, target = self.assets.get(dep.source), self.assets.get(dep.target)
            if source is None or target is None or source.organisation != self.organisation:
                continue
            reported = by_org.get(target.organisation)
            if not reported or target.organisation == self.organisation:
                continue
            lead = max(reported, key=lambda s: (s.level, s.key))
            factor = factor_for(lead.level, bar)
            more = f" and {len(reported) - 1} more key{'s' if len(reported) > 2 else ''}" if len(reported) > 1 else ""
            text = (f"swarm level {lead.level:.2f} ≥ {bar:.2f} for {lead.key}{more} ({_reported([lead])}); "
                    f"'{self._depends(source, target, dep.kind)}' → dependency risk of {source.id} raised ×{factor:g}")
            out.append(Raise("dependency", tuple(sorted(s.key for s in reported)), lead.level, factor, (source.id,),
                             (target.organisation,), text))
        return out

    def _depends(self, source: Asset, target: Asset, kind: str) -> str:
        us = self.org_names.get(source.organisation, source.organisation)
        them = self.org_names.get(target.organisation, target.organisation)
        return f"{us} depends on {them} ({target.id} {target.name}, {kind})"


def per_asset(raises: list[Raise]) -> dict[str, tuple[float, str]]:
    """asset → (the largest factor, every explanation that raised it), what is stored with the asset."""
    out: dict[str, tuple[float, list[str]]] = {}
    for r in raises:
        for asset in r.assets:
            factor, why = out.get(asset, (1.0, []))
            out[asset] = (max(factor, r.factor), [*why, r.explanation])
    return {a: (f, " | ".join(why)) for a, (f, why) in out.items()}
