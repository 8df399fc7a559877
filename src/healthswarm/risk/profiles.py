"""Attacker profiles: where an attacker starts, how likely each start is, and their capability.

A profile is registered with `@profile(...)`; its `entries(facts, organisation)` yields the starting
states with the probability of holding them. `skill` (1 basic, 2 intermediate, 3 advanced) is the
highest technique difficulty the attacker can use; `budget` bounds the total difficulty a campaign
may spend (the ACO's capability budget).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from healthswarm.errors import InputError, Location, Problem
from healthswarm.risk.facts import Facts
from healthswarm.risk.states import INTERNET, Node, Privilege, Technique, asset_node, zone_node

Entry = tuple[Node, Technique]
WORKSTATIONS = frozenset({"workstation", "clinical-workstation", "laptop"})
WARD_EXPOSURES = frozenset({"clinical", "iomt"})
P_PHISH = 0.3  # someone on a mailed workstation opens the attachment
P_INSIDER = 0.9
P_PHYSICAL = 0.6  # a visitor gets unobserved time next to a ward device


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    skill: int
    budget: int
    entries: Callable[[Facts, str | None], Iterator[Entry]]

    def with_skill(self, skill: int | None) -> Profile:
        return self if skill is None else replace(self, skill=skill)


PROFILES: dict[str, Profile] = {}


@dataclass(frozen=True, slots=True)
class Attacker:
    """A profile whose entries are restricted to one organisation (None: anywhere)."""

    profile: Profile
    organisation: str | None = None


def attacker_of(item: Profile | Attacker, organisation: str | None = None) -> Attacker:
    """An Attacker from either; a bare profile takes `organisation`."""
    return item if isinstance(item, Attacker) else Attacker(item, organisation)


def profile(name: str, description: str, skill: int, budget: int) -> Callable[
        [Callable[[Facts, str | None], Iterator[Entry]]], Callable[[Facts, str | None], Iterator[Entry]]]:
    def register(fn: Callable[[Facts, str | None], Iterator[Entry]]) -> Callable[[Facts, str | None], Iterator[Entry]]:
        PROFILES[name] = Profile(name, description, skill, budget, fn)
        return fn
    return register


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise InputError(Problem(Location("--from"), f"unknown attacker profile {name!r}",
                                 "one of " + ", ".join(sorted(PROFILES))))
    return PROFILES[name]


def _in(facts: Facts, asset_org: str, organisation: str | None) -> bool:
    return organisation is None or asset_org == organisation


@profile("external", "an attacker on the Internet", skill=2, budget=8)
def external(facts: Facts, organisation: str | None) -> Iterator[Entry]:
    yield zone_node(INTERNET), Technique("entry", 1.0, "attacker on the Internet")


@profile("phishing", "a phishing foothold: a user on a workstation that receives mail opened the payload",
         skill=2, budget=8)
def phishing(facts: Facts, organisation: str | None) -> Iterator[Entry]:
    mailed = {fl.target for fl in facts.inventory.flows if fl.protocol == "smtp"}
    candidates = [a for a in facts.inventory.assets
                  if a.kind in WORKSTATIONS and _in(facts, a.organisation, organisation)]
    chosen = [a for a in candidates if a.id in mailed] or candidates
    for a in chosen:
        yield asset_node(a.id, Privilege.USER), Technique(
            "entry", P_PHISH, f"phishing mail opened on {a.id}", 1, frozenset({f"phishing:{a.organisation}"}),
            {"asset": a.id})


@profile("insider", "a member of staff: their own logins on workstations and hands on ward devices",
         skill=1, budget=6)
def insider(facts: Facts, organisation: str | None) -> Iterator[Entry]:
    for a in facts.inventory.assets:
        if not _in(facts, a.organisation, organisation) or facts.org_kind.get(a.organisation) == "vendor":
            continue
        if a.kind in WORKSTATIONS:
            yield asset_node(a.id, Privilege.USER), Technique("entry", P_INSIDER, f"insider logs on to {a.id}",
                                                               evidence={"asset": a.id})
        zone = facts.zones.get(a.zone)
        if zone is not None and zone.exposure in WARD_EXPOSURES:
            yield asset_node(a.id, Privilege.PHYSICAL), Technique(
                "entry", P_INSIDER, f"insider has hands on {a.id}", 1, frozenset({f"physical:{a.zone}"}),
                {"asset": a.id})


@profile("vendor", "a compromised supplier: the vendor's own machines, and its remote access", skill=2, budget=8)
def vendor(facts: Facts, organisation: str | None) -> Iterator[Entry]:
    for a in facts.inventory.assets:
        if facts.org_kind.get(a.organisation) == "vendor" and _in(facts, a.organisation, organisation):
            yield asset_node(a.id, Privilege.USER), Technique("entry", 1.0, f"attacker controls vendor machine {a.id}",
                                                               evidence={"asset": a.id})


@profile("physical", "a visitor in the wards: hands on medical devices and network sockets", skill=1, budget=4)
def physical(facts: Facts, organisation: str | None) -> Iterator[Entry]:
    for a in facts.inventory.assets:
        zone = facts.zones.get(a.zone)
        if zone is not None and zone.exposure in WARD_EXPOSURES and _in(facts, a.organisation, organisation):
            yield asset_node(a.id, Privilege.PHYSICAL), Technique(
                "entry", P_PHYSICAL, f"visitor next to {a.id}", 1, frozenset({f"physical:{a.zone}"}),
                {"asset": a.id})
