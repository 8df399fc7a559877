"""The vocabulary of the attack graph: privilege levels, nodes (states) and techniques (edges).

A node is an attacker *state*: a privilege on an asset (none = can send packets to it, physical =
stands next to it, disrupt = can stop it, user, admin), presence on a zone's network, or a virtual
source/goal used by the searches. An edge carries every *technique* that makes the move, each saying
why it exists (which CVE on which asset, which flow, which dependency) and which `tags` a control
must hit to remove it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Privilege(StrEnum):
    NONE = "none"  # network reachability: packets get there
    PHYSICAL = "physical"  # hands on the device
    DISRUPT = "disrupt"  # can stop it working (availability-only flaw); not a foothold
    USER = "user"
    ADMIN = "admin"


# privileges that count as having "reached" an asset for the searches and the impact
COMPROMISE = (Privilege.DISRUPT, Privilege.USER, Privilege.ADMIN)
RANK = {Privilege.NONE: 0, Privilege.PHYSICAL: 0, Privilege.DISRUPT: 1, Privilege.USER: 2, Privilege.ADMIN: 3}


class Node(NamedTuple):
    kind: str  # "asset", "zone" (can route into it), "segment" (stands on it), "source", "goal"
    ref: str  # asset or zone id ("*internet*" for the Internet), profile name for a source
    privilege: str = ""

    def __str__(self) -> str:
        if self.kind == "asset":
            return f"{self.ref}[{self.privilege}]"
        if self.kind == "zone":
            return "internet" if self.ref == INTERNET else f"zone {self.ref}"
        if self.kind == "segment":
            return f"inside zone {self.ref}"
        return f"{self.kind} {self.ref}".strip()


INTERNET = "*internet*"


def asset_node(asset: str, privilege: Privilege) -> Node:
    return Node("asset", asset, privilege.value)


def zone_node(zone: str) -> Node:
    """Packets can be routed into the zone (from elsewhere, as the policy allows)."""
    return Node("zone", zone)


def segment_node(zone: str) -> Node:
    """The attacker stands on the zone's own network (needed by adjacent-network, AV:A, flaws)."""
    return Node("segment", zone)


@dataclass(frozen=True, slots=True)
class Technique:
    """One way to make a move. `tags` are what a control removes (e.g. `cve:CVE-2020-6961`,
    `flow:a>b:rdp`, `segment:zone`, `mfa:asset`, `vendor:org`, `physical:zone`)."""

    kind: str  # exploit, adjacency, flow, policy, credential, domain, vendor-access, physical, entry, privilege
    p: float
    description: str
    difficulty: int = 1
    tags: frozenset[str] = frozenset()
    # the facts behind it, for the output: cve, advisory, asset, flow, dependency ...
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def weight(self) -> float:
        return -math.log(self.p) if self.p > 0 else math.inf

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "p": round(self.p, 4), "difficulty": self.difficulty,
                "description": self.description, "evidence": dict(self.evidence), "tags": sorted(self.tags)}
