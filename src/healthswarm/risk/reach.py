"""Network reachability between zones: a default policy by exposure, optionally a zone-to-zone file.

The default says which exposures may open connections to which others *inside one organisation*
(hospitals are rarely well segmented); between organisations only explicit flows connect. The
Internet reaches zones of exposure `internet` (DMZs, a vendor's network). A policy file (JSON or YAML)
replaces or amends it:

    default: exposure        # or "deny": only the allow list and flows connect
    allow: [[corporate-zone-id, clinical-zone-id], [internal, iomt]]   # zone ids or exposures
    deny:  [[st-aurelia-corporate, st-aurelia-iomt]]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Inventory, Zone

DEFAULT_POLICY: dict[str, frozenset[str]] = {
    "internet": frozenset(),
    "partner": frozenset(),
    "internal": frozenset({"internet", "clinical"}),
    "clinical": frozenset({"internal", "internet", "iomt"}),
    "iomt": frozenset(),
    "management": frozenset({"internet", "internal", "clinical", "iomt"}),
}


@dataclass(frozen=True, slots=True)
class ZonePolicy:
    use_default: bool = True
    allow: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    deny: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def allows(self, src: Zone, dst: Zone) -> bool:
        pairs = {(src.id, dst.id), (src.exposure, dst.exposure), (src.id, dst.exposure), (src.exposure, dst.id)}
        if pairs & self.deny:
            return False
        if pairs & self.allow:
            return True
        return (self.use_default and src.organisation == dst.organisation
                and dst.exposure in DEFAULT_POLICY.get(src.exposure, frozenset()))

    def internet_reaches(self, zone: Zone) -> bool:
        return ("internet", zone.id) not in self.deny and (
            zone.exposure == "internet" or ("internet", zone.id) in self.allow)


def zone_links(inventory: Inventory, policy: ZonePolicy) -> Iterator[tuple[Zone, Zone]]:
    """Every ordered pair of distinct zones the policy lets connect. The default only links zones of
    one organisation, so all pairs are visited only when the policy has an allow list."""
    if policy.allow:
        groups = [list(inventory.zones)]
    else:
        by_org: dict[str, list[Zone]] = {}
        for z in inventory.zones:
            by_org.setdefault(z.organisation, []).append(z)
        groups = list(by_org.values())
    for group in groups:
        for src in group:
            for dst in group:
                if src.id != dst.id and policy.allows(src, dst):
                    yield src, dst


def load_policy(path: Path) -> ZonePolicy:
    where = Location(str(path))
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(Problem(where, f"cannot read: {exc.strerror}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(where, f"not YAML/JSON: {exc}")) from None
    if not isinstance(doc, dict):
        raise InputError(Problem(where, "the policy must be a mapping", "keys default, allow, deny"))
    problems: list[Problem] = []
    default = doc.get("default", "exposure")
    if default not in ("exposure", "deny"):
        problems.append(Problem(Location(str(path), None, "default"), f"unknown value {default!r}",
                                "exposure or deny"))
    lists: dict[str, frozenset[tuple[str, str]]] = {}
    for key in ("allow", "deny"):
        pairs = []
        for n, item in enumerate(doc.get(key) or []):
            if isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
                pairs.append((item[0], item[1]))
            else:
                problems.append(Problem(Location(str(path), None, f"{key}[{n}]"), f"bad pair {item!r}",
                                        "[from zone or exposure, to zone or exposure]"))
        lists[key] = frozenset(pairs)
    if problems:
        raise InputError(problems)
    return ZonePolicy(default == "exposure", lists["allow"], lists["deny"])
