"""The rules that turn facts into attack-graph edges, one rule per kind of move, kept in a registry.

A rule yields `(from_state, to_state, Technique)`. Add a rule with `@rule("name")`; the builder runs
them all (or the ones named). Probabilities of non-exploit moves are stated here, in one table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from healthswarm.model import Finding, FindingStatus
from healthswarm.model.words import counted
from healthswarm.risk.facts import Facts
from healthswarm.risk.reach import zone_links
from healthswarm.risk.states import INTERNET, Node, Privilege, Technique, asset_node, segment_node, zone_node
from healthswarm.risk.vector import Exploitability, VectorError, check, parse_vector

Move = tuple[Node, Node, Technique]
Rule = Callable[[Facts], Iterator[Move]]
RULES: dict[str, Rule] = {}

# probabilities of the moves that are not exploits (one attempt, pre-conditions met)
P = {
    "credential-reuse": 0.35,  # a user's credentials work on another machine over RDP/SSH/VNC/telnet
    "vpn-login": 0.5,  # valid VPN credentials stolen or reused from the source machine
    "pass-the-hash": 0.6,  # admin on a domain member reuses hashes over SMB/RDP on another member
    "domain-escalation": 0.35,  # admin on a member obtains domain admin (cached creds, Kerberoasting)
    "domain-admin": 0.95,  # domain admin controls every member
    "vendor-session": 0.8,  # the vendor's remote support session into the asset
    "network-port": 0.5,  # plugging into a network socket in the room
    "possibly-affected": 0.5,  # factor when the asset's version could not be compared
    "unscored": 0.3,  # exploit probability when the advisory gives no CVSS
}
REMOTE_LOGIN = frozenset({"rdp", "ssh", "vnc", "telnet"})
HASH_REUSE = frozenset({"smb", "rdp"})
PORT_EXPOSURES = frozenset({"internal", "clinical", "iomt", "management"})
TALKING_DEPENDENCIES = frozenset({"service", "data", "identity"})
RELAYS = frozenset({"dicom-router", "interface-engine", "iomt-gateway", "fhir-server"})
RELAYED = frozenset({"dicom", "hl7v2", "fhir", "wado"})
# what an unscored finding is assumed to be: reachable over the network, hard, limited impact
UNSCORED = Exploitability(av="N", ac="H", pr="N", ui="N", c="L", i="L", a="L")


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn
    return register


def _flow_tag(source: str, target: str, protocol: str) -> str:
    return f"flow:{source}>{target}:{protocol}"


@rule("network")
def network(f: Facts) -> Iterator[Move]:
    """Zone presence: the Internet reaches exposed zones, the policy links zones, a zone reaches its
    hosts, a foothold on a host gives presence on its zone; admin includes user."""
    for zone in f.inventory.zones:
        if f.policy.internet_reaches(zone):
            yield zone_node(INTERNET), zone_node(zone.id), Technique(
                "policy", 1.0, f"the Internet reaches zone {zone.id} (exposure {zone.exposure})",
                tags=frozenset({f"segment:{zone.id}"}), evidence={"zone": zone.id})
    for zone, other in zone_links(f.inventory, f.policy):
        yield zone_node(zone.id), zone_node(other.id), Technique(
            "policy", 1.0, f"zone {zone.id} ({zone.exposure}) may connect to zone {other.id} ({other.exposure})",
            tags=frozenset({f"segment:{other.id}"}), evidence={"from_zone": zone.id, "to_zone": other.id})
    for a in f.inventory.assets:
        yield zone_node(a.zone), asset_node(a.id, Privilege.NONE), Technique(
            "adjacency", 1.0, f"{a.id} is on zone {a.zone}", tags=frozenset({f"segment:{a.zone}"}),
            evidence={"zone": a.zone})
        yield asset_node(a.id, Privilege.USER), segment_node(a.zone), Technique(
            "adjacency", 1.0, f"a foothold on {a.id} stands inside zone {a.zone}", evidence={"zone": a.zone})
        yield asset_node(a.id, Privilege.ADMIN), asset_node(a.id, Privilege.USER), Technique(
            "privilege", 1.0, "admin includes user")
    for zone in f.inventory.zones:
        yield segment_node(zone.id), zone_node(zone.id), Technique(
            "adjacency", 1.0, f"inside zone {zone.id} everything routed there is reachable", evidence={"zone": zone.id})


@rule("flows")
def flows(f: Facts) -> Iterator[Move]:
    """A foothold on a flow's source can send to its target, whatever the zone policy."""
    for flow in f.inventory.flows:
        port = f"/{flow.port}" if flow.port is not None else ""
        yield asset_node(flow.source, Privilege.USER), asset_node(flow.target, Privilege.NONE), Technique(
            "flow", 1.0, f"flow {flow.source} -> {flow.target} ({flow.protocol}{port})",
            tags=frozenset({_flow_tag(flow.source, flow.target, flow.protocol)}),
            evidence={"flow": f"{flow.source}>{flow.target}", "protocol": flow.protocol, "port": str(flow.port or "")})


@rule("dependencies")
def dependencies(f: Facts) -> Iterator[Move]:
    """A service, data or identity dependency A -> B means A talks to B, flow or not."""
    for dep in f.inventory.dependencies:
        if dep.kind in TALKING_DEPENDENCIES:
            yield asset_node(dep.source, Privilege.USER), asset_node(dep.target, Privilege.NONE), Technique(
                "flow", 1.0, f"{dep.source} uses {dep.target} ({dep.kind} dependency)",
                tags=frozenset({_flow_tag(dep.source, dep.target, dep.kind)}),
                evidence={"dependency": f"{dep.source}>{dep.target}", "kind": dep.kind})


@rule("relay")
def relay(f: Facts) -> Iterator[Move]:
    """Routers and interface engines pass messages on: whoever sends DICOM/HL7/FHIR to a relay reaches
    the relay's own destinations of the same protocol with crafted content (one relay hop)."""
    for source, items in f.flows_from.items():
        for first in items:
            hub = f.assets[first.target]
            if hub.kind not in RELAYS or first.protocol not in RELAYED:
                continue
            for second in f.flows_from.get(hub.id, ()):
                if second.protocol != first.protocol or second.target == source:
                    continue
                yield asset_node(source, Privilege.USER), asset_node(second.target, Privilege.NONE), Technique(
                    "flow", 1.0, f"{first.protocol} from {source} relayed by {hub.id} to {second.target}",
                    tags=frozenset({_flow_tag(source, hub.id, first.protocol),
                                    _flow_tag(hub.id, second.target, second.protocol)}),
                    evidence={"flow": f"{source}>{hub.id}>{second.target}", "protocol": first.protocol})


def _post(e: Exploitability) -> Privilege | None:
    """What the attacker holds after the exploit, from its impact."""
    if (e.c == "H" and e.i == "H") or (e.scope_changed and "H" in (e.c, e.i)) or (e.i == "H" and e.a == "H"):
        return Privilege.ADMIN
    if e.c == "H" or e.i in ("L", "H"):
        return Privilege.USER
    if e.a != "N":
        return Privilege.DISRUPT
    return None


def _pre(asset: str, zone: str, e: Exploitability) -> Node:
    """Where the attacker must stand: AV:P physical, AV:L or PR:L a user, PR:H admin, AV:A the zone."""
    if e.pr == "H":
        return asset_node(asset, Privilege.ADMIN)
    if e.av == "P":
        return asset_node(asset, Privilege.PHYSICAL)
    if e.av == "L" or e.pr == "L":
        return asset_node(asset, Privilege.USER)
    if e.av == "A":
        return segment_node(zone)
    return asset_node(asset, Privilege.NONE)


_GAIN = {Privilege.NONE: 0, Privilege.PHYSICAL: 0, Privilege.DISRUPT: 1, Privilege.USER: 2, Privilege.ADMIN: 3}


def exploit_move(f: Facts, finding: Finding) -> Move | None:
    asset = f.assets[finding.asset_id]
    why: list[str] = []
    try:
        if not finding.cvss_vector:
            raise VectorError("no CVSS vector")
        e = parse_vector(finding.cvss_vector, finding.cvss_version)
        check(e)
        p = e.probability
    except VectorError as exc:
        e, p = UNSCORED, P["unscored"]
        why.append(f"{exc}: assumed network-reachable, high complexity, limited impact")
    post = _post(e)
    pre = _pre(asset.id, asset.zone, e)
    if post is None or (pre.kind == "asset" and _GAIN[Privilege(pre.privilege)] >= _GAIN[post]):
        return None  # nothing gained (e.g. an information leak, or needs admin already)
    if finding.status == FindingStatus.POSSIBLY_AFFECTED:
        p *= P["possibly-affected"]
        why.append("version unknown: possibly affected")
    if finding.cve:
        p, raised = f.likelihood.adjust(finding.cve, p)
        if raised:
            why.append(raised)
    # the swarm raises the risk of assets whose model, vendor or providers peers report under attack
    swarm = float(asset.attributes.get("swarm.risk", "1") or 1)
    if swarm > 1:
        p = min(0.99, p * swarm)
        why.append(f"raised ×{swarm:g} by the swarm")
    name = finding.cve or finding.advisory_id
    difficulty = e.difficulty + (e.av == "P" and e.pr != "N")
    text = f"exploit {name} on {asset.id} ({finding.cvss_vector or 'unscored'}) -> {post.value}"
    if why:
        text += f" [{'; '.join(why)}]"
    tags = {f"cve:{name}", f"cve:{name}@{asset.id}"}
    return pre, asset_node(asset.id, post), Technique(
        "exploit", p, text, min(difficulty, 3), frozenset(tags),
        {"cve": finding.cve, "advisory": finding.advisory_id, "asset": asset.id, "vector": finding.cvss_vector,
         "status": str(finding.status)})


@rule("exploits")
def exploits(f: Facts) -> Iterator[Move]:
    """Every finding whose impact gains the attacker something, from its pre- to its post-condition."""
    skipped = 0
    for items in f.findings_by_asset.values():
        for finding in items:
            move = exploit_move(f, finding)
            if move is None:
                skipped += 1
            else:
                yield move
    if skipped:
        f.notes.append(f"{counted(skipped, 'finding')} without a privilege beyond the pre-condition (e.g. information "
                       "leaks, or admin needed already): no edge")


@rule("remote-access")
def remote_access(f: Facts) -> Iterator[Move]:
    """Credential abuse over remote-login flows; pass-the-hash between members of one domain; VPN logins."""
    for flow in f.inventory.flows:
        tags = frozenset({_flow_tag(flow.source, flow.target, flow.protocol), f"mfa:{flow.target}"})
        ev = {"flow": f"{flow.source}>{flow.target}", "protocol": flow.protocol}
        if flow.protocol in REMOTE_LOGIN:
            yield asset_node(flow.source, Privilege.USER), asset_node(flow.target, Privilege.USER), Technique(
                "credential", P["credential-reuse"],
                f"reuse of credentials from {flow.source} over {flow.protocol} to {flow.target}", 1, tags, ev)
        if flow.protocol == "vpn" or f.assets[flow.target].kind == "vpn":
            yield asset_node(flow.source, Privilege.USER), asset_node(flow.target, Privilege.USER), Technique(
                "credential", P["vpn-login"], f"VPN login from {flow.source} to {flow.target} with its credentials",
                1, tags, ev)
        if flow.protocol in HASH_REUSE and f.same_domain(flow.source, flow.target):
            yield asset_node(flow.source, Privilege.ADMIN), asset_node(flow.target, Privilege.ADMIN), Technique(
                "credential", P["pass-the-hash"],
                f"pass-the-hash from {flow.source} over {flow.protocol} to {flow.target} (same domain)", 2, tags, ev)


@rule("domain")
def domain(f: Facts) -> Iterator[Move]:
    """Admin on a member can escalate to the domain controller it uses; domain admin controls members."""
    for member, dcs in f.authenticates_at.items():
        for dc in dcs:
            yield asset_node(member, Privilege.ADMIN), asset_node(dc, Privilege.ADMIN), Technique(
                "domain", P["domain-escalation"],
                f"domain privilege escalation from {member} via {dc} (cached credentials, Kerberoasting)", 2,
                frozenset({f"mfa:{dc}"}), {"member": member, "controller": dc})
    for org, dcs in f.controllers.items():
        for dc in dcs:
            for target in f.members.get(org, set()) | (dcs - {dc}):
                yield asset_node(dc, Privilege.ADMIN), asset_node(target, Privilege.ADMIN), Technique(
                    "domain", P["domain-admin"], f"domain admin on {dc} controls {target}", 1,
                    evidence={"controller": dc, "member": target})


@rule("vendor-access")
def vendor_access(f: Facts) -> Iterator[Move]:
    """A `vendor-access` dependency X -> V: whoever holds V's support machine opens a session on X."""
    for dep in f.inventory.dependencies:
        if dep.kind != "vendor-access":
            continue
        vendor = f.assets[dep.target]
        yield asset_node(dep.target, Privilege.USER), asset_node(dep.source, Privilege.ADMIN), Technique(
            "vendor-access", P["vendor-session"],
            f"remote support session of {vendor.organisation} ({dep.target}) into {dep.source}", 1,
            frozenset({f"vendor:{vendor.organisation}", f"vendor:{vendor.organisation}>{dep.source}",
                       f"mfa:{dep.source}"}),
            {"dependency": f"{dep.source}>{dep.target}", "kind": dep.kind, "vendor": vendor.organisation})


@rule("physical")
def physical(f: Facts) -> Iterator[Move]:
    """Someone standing at a device in a building can plug into the room's network socket."""
    for a in f.inventory.assets:
        zone = f.zones.get(a.zone)
        if zone is not None and zone.exposure in PORT_EXPOSURES:
            yield asset_node(a.id, Privilege.PHYSICAL), segment_node(a.zone), Technique(
                "physical", P["network-port"], f"network socket next to {a.id} on zone {a.zone}", 1,
                frozenset({f"physical:{a.zone}"}), {"zone": a.zone})
