"""The inventory and findings indexed once for the rules that build the attack graph."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from healthswarm.model import Asset, Finding, Flow, Inventory, Zone
from healthswarm.model.words import counted
from healthswarm.risk.likelihood import Likelihood
from healthswarm.risk.reach import ZonePolicy

IDENTITY_PROTOCOLS = frozenset({"kerberos", "ldap"})


@dataclass
class Facts:
    inventory: Inventory
    findings: list[Finding]
    policy: ZonePolicy
    likelihood: Likelihood
    assets: dict[str, Asset] = field(default_factory=dict)
    zones: dict[str, Zone] = field(default_factory=dict)
    org_kind: dict[str, str] = field(default_factory=dict)
    by_zone: dict[str, list[Asset]] = field(default_factory=dict)
    findings_by_asset: dict[str, list[Finding]] = field(default_factory=dict)
    flows_from: dict[str, list[Flow]] = field(default_factory=dict)
    # organisation -> its domain controllers / the assets that authenticate against one of them
    controllers: dict[str, set[str]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    # member asset -> the controllers it talks to (identity dependency or a kerberos/ldap flow)
    authenticates_at: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def index(cls, inventory: Inventory, findings: Iterable[Finding], policy: ZonePolicy,
              likelihood: Likelihood) -> Facts:
        f = cls(inventory, list(findings), policy, likelihood)
        f.assets = {a.id: a for a in inventory.assets}
        f.zones = {z.id: z for z in inventory.zones}
        f.org_kind = {o.id: o.kind for o in inventory.organisations}
        by_zone: dict[str, list[Asset]] = defaultdict(list)
        for a in inventory.assets:
            by_zone[a.zone].append(a)
        f.by_zone = dict(by_zone)
        per_asset: dict[str, list[Finding]] = defaultdict(list)
        unknown = 0
        for finding in f.findings:
            if finding.asset_id in f.assets:
                per_asset[finding.asset_id].append(finding)
            else:
                unknown += 1
        if unknown:
            f.notes.append(f"{counted(unknown, 'finding')} on assets not in the inventory; ignored")
        f.findings_by_asset = dict(per_asset)
        flows_from: dict[str, list[Flow]] = defaultdict(list)
        for flow in inventory.flows:
            flows_from[flow.source].append(flow)
        f.flows_from = dict(flows_from)
        controllers: dict[str, set[str]] = defaultdict(set)
        for a in inventory.assets:
            if a.kind == "domain-controller":
                controllers[a.organisation].add(a.id)
        f.controllers = dict(controllers)
        auth: dict[str, set[str]] = defaultdict(set)
        dcs = {dc for group in controllers.values() for dc in group}
        for flow in inventory.flows:
            if flow.target in dcs and flow.protocol in IDENTITY_PROTOCOLS and flow.source not in dcs:
                auth[flow.source].add(flow.target)
        for dep in inventory.dependencies:
            if dep.kind == "identity" and dep.target in dcs and dep.source not in dcs:
                auth[dep.source].add(dep.target)
        f.authenticates_at = dict(auth)
        members: dict[str, set[str]] = defaultdict(set)
        for member, at in auth.items():
            for dc in at:
                members[f.assets[dc].organisation].add(member)
        f.members = dict(members)
        return f

    def same_domain(self, a: str, b: str) -> bool:
        org = self.assets[a].organisation
        domain = self.members.get(org, set()) | self.controllers.get(org, set())
        return org == self.assets[b].organisation and a in domain and b in domain
