"""What an incident shows about its attacker: the actor profile, the footholds and their privileges.

Live risk predicts where an incident's attacker goes next. That prediction must start from what
the incident shows, not from "every asset of the incident is owned by a network attacker":

- **Footholds and privileges** come from the ATT&CK techniques of the incident's alerts, asset by
  asset. An alert's first asset is where the technique ran (its source); a lateral-movement
  technique also lands on the alert's other assets. Code execution, command and control and
  discovery on a host show `user` there; credential dumping or privilege escalation shows `admin`;
  a valid account or a read of a data repository shows the account's `user` session on the asset
  it was used from, and nothing on the repository it read (the actor read it, they do not hold it).
- **The actor profile** follows from the kinds of technique. Any intrusion technique (execution,
  command and control, credential access, privilege escalation, lateral movement, exploitation,
  persistence, evasion) makes an *intruder*: a network attacker with the skill the techniques
  show (advanced when they exploit software, intermediate otherwise), using every move of the
  attack graph. Only access misuse (valid accounts, reads of data repositories or cloud storage,
  collection) makes an *insider*: someone using legitimate access (a member of staff, or whoever
  holds their session). An insider does not exploit CVEs, escalate through the domain or open
  vendor sessions; their next targets are the record systems their own access reaches (the
  `data-access` moves built here from the declared flows) and the machines their credentials
  open. Exfiltration and discovery techniques fit both and decide nothing.
- An incident that shows no foothold (no asset, or only impact such as a message flood) has no
  prediction: nothing says where its attacker stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from healthswarm.model import Alert
from healthswarm.model.words import counted
from healthswarm.risk.facts import Facts
from healthswarm.risk.profiles import P_INSIDER, WORKSTATIONS
from healthswarm.risk.states import RANK, Node, Privilege, Technique, asset_node
from healthswarm.risk.techniques import RELAYED, RELAYS

Move = tuple[Node, Node, Technique]

# ATT&CK technique ids (a sub-technique counts as its parent: T1003.001 is T1003)
ADMIN_ON_SOURCE = frozenset({"T1003", "T1068", "T1548", "T1134", "T1484", "T1558"})
CODE_ON_SOURCE = frozenset({
    "T1059", "T1204", "T1047", "T1218", "T1053", "T1569", "T1106", "T1203",  # execution
    "T1071", "T1095", "T1105", "T1572", "T1090", "T1219", "T1573",  # command and control
    "T1543", "T1547", "T1546", "T1136", "T1505",  # persistence
    "T1027", "T1055", "T1562", "T1070", "T1036", "T1140", "T1112",  # defence evasion
    "T1110", "T1555", "T1552", "T1056",  # credential access (as the user)
    "T1016", "T1482", "T1087", "T1082", "T1057", "T1018", "T1046", "T1135", "T1069", "T1049",  # host discovery
})
LATERAL = frozenset({"T1021", "T1210", "T1570", "T1550", "T1563", "T1072"})
EXPLOITS = frozenset({"T1068", "T1203", "T1210", "T1190", "T1211", "T1212"})
INTRUSION = ADMIN_ON_SOURCE | CODE_ON_SOURCE | LATERAL | EXPLOITS | frozenset({"T1566", "T1133", "T1195"})
# misuse of legitimate access: an account used as it may be, for more than it should
MISUSE = frozenset({"T1078", "T1213", "T1530", "T1005", "T1039", "T1119", "T1114", "T1025", "T1074"})

APP_PROTOCOLS = frozenset({"https", "http", "fhir", "hl7v2", "dicom", "wado", "sql", "smb"})
RECORD_KINDS = frozenset({"ehr", "his", "pacs", "ris", "lis", "portal", "vna", "database"})
P_DATA_ACCESS = P_INSIDER  # an account reads what its own application shows it
MAX_RELAY_HOPS = 3


@dataclass(frozen=True, slots=True)
class Actor:
    """How an incident's attacker can move: skill, the kinds of move, and whether they use the data
    access of the accounts they hold."""

    name: str  # "intruder", "insider", "none"
    description: str
    skill: int = 2
    kinds: frozenset[str] | None = None  # technique kinds allowed (None: every kind)
    data_access: bool = False


INTRUDER = Actor("intruder", "a network attacker: code runs on the incident's hosts", 2)
ADVANCED_INTRUDER = Actor("intruder", "a network attacker who exploits software (the incident shows it)", 3)
INSIDER = Actor("insider", "legitimate access misused (a member of staff, or whoever holds their session): "
                           "no exploits, no domain escalation, no vendor sessions", 1,
                frozenset({"entry", "policy", "adjacency", "flow", "privilege", "credential", "data-access"}), True)
NO_ACTOR = Actor("none", "the incident shows no foothold: no asset, or only impact such as a flood", 0)


@dataclass(frozen=True, slots=True)
class Foothold:
    asset: str
    privilege: Privilege
    evidence: str  # the technique and alert that show it

    def as_dict(self) -> dict[str, str]:
        return {"asset": self.asset, "privilege": self.privilege.value, "evidence": self.evidence}


@dataclass
class Reading:
    """What an incident shows: its actor, its footholds, and why."""

    actor: Actor
    footholds: list[Foothold] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # every asset the incident names (none is a next target)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.name, "actor_description": self.actor.description,
                "footholds": [f.as_dict() for f in self.footholds], "reasons": list(self.reasons)}


def _base(technique: str) -> str:
    return technique.split(".", 1)[0].upper()


def _ids(items: Iterable[Any]) -> list[str]:
    out = []
    for item in items or ():
        ident = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(ident, str) and ident:
            out.append(ident)
    return out


def read_incident(doc: Mapping[str, Any], alerts: Iterable[Alert], known: Iterable[str]) -> Reading:
    """Read an incident document and its alerts; `known` are the inventory's asset ids."""
    known = set(known)
    seen = [a for a in doc.get("assets", []) if isinstance(a, str)]
    held: dict[str, tuple[Privilege, str]] = {}
    techniques: set[str] = {_base(t) for t in _ids(doc.get("techniques", []))}
    misuse_on: dict[str, str] = {}

    def hold(asset: str, privilege: Privilege, why: str) -> None:
        if asset not in known:
            return
        current = held.get(asset)
        if current is None or RANK[privilege] > RANK[current[0]]:
            held[asset] = (privilege, why)

    for alert in alerts:
        assets = list(alert.assets)
        ids = [t.id for t in alert.techniques]
        techniques |= {_base(t) for t in ids}
        if not assets:
            continue
        source, others = assets[0], assets[1:]
        title = alert.title
        for full in ids:
            t = _base(full)
            if t in ADMIN_ON_SOURCE:
                hold(source, Privilege.ADMIN, f"{full} ({title}) on {source}")
            elif t in CODE_ON_SOURCE or t in EXPLOITS - LATERAL - {"T1190"}:
                hold(source, Privilege.USER, f"{full} ({title}) on {source}")
            elif t in LATERAL or t == "T1190":
                # lateral movement lands on the other assets; an exploited public-facing application
                # is one of the assets named, whichever side the sensor wrote first
                hold(source, Privilege.USER, f"{full} ({title}) from {source}")
                for other in others:
                    hold(other, Privilege.USER, f"{full} ({title}) from {source} to {other}")
            elif t in MISUSE:
                misuse_on.setdefault(source, f"{full} ({title}): an account used on {source}")
    intrusion = sorted(t for t in techniques if t in INTRUSION)
    misuse = sorted(t for t in techniques if t in MISUSE)
    if intrusion:
        actor = ADVANCED_INTRUDER if techniques & EXPLOITS else INTRUDER
        for asset, why in misuse_on.items():
            hold(asset, Privilege.USER, why)
        reasons = [f"intrusion techniques {', '.join(intrusion)}: a network attacker"]
    elif misuse:
        actor = INSIDER
        for asset, why in misuse_on.items():
            hold(asset, Privilege.USER, why)
        reasons = [f"only access-misuse techniques ({', '.join(misuse)}) and none of intrusion: legitimate "
                   "access misused, not a network attacker"]
        users = sorted({e.split(":", 1)[1] for e in doc.get("entities", []) if isinstance(e, str)
                        and e.startswith("user:")})
        if users:
            reasons.append(f"{counted(len(users), 'account')}: {', '.join(users)}")
    else:
        actor = NO_ACTOR
        reasons = [f"techniques {', '.join(sorted(techniques)) or '(none)'} show no foothold"]
    if not held and actor is not NO_ACTOR:
        reasons.append("no asset of the inventory is shown held")
        actor = NO_ACTOR
    footholds = [Foothold(a, p, why) for a, (p, why) in held.items()]
    if actor is NO_ACTOR:
        footholds = []
    else:
        reasons.append("footholds: " + ", ".join(f"{f.asset} ({f.privilege.value})" for f in footholds))
    return Reading(actor, footholds, seen, reasons)


def data_access_moves(facts: Facts) -> list[Move]:
    """An account on a workstation reads the records its declared flows reach: directly, or through
    DICOM/HL7/FHIR relays (up to MAX_RELAY_HOPS). Used only for actors that misuse access."""
    moves: list[Move] = []
    for source in facts.inventory.assets:
        if source.kind not in WORKSTATIONS:
            continue
        reached: dict[str, str] = {}
        for flow in facts.flows_from.get(source.id, ()):
            if flow.protocol not in APP_PROTOCOLS:
                continue
            frontier = [(flow.target, [flow.target])]
            while frontier:
                target, route = frontier.pop()
                asset = facts.assets.get(target)
                if asset is None or target == source.id:
                    continue
                if (asset.records or asset.kind in RECORD_KINDS) and target not in reached:
                    reached[target] = f"{flow.protocol} " + " -> ".join([source.id, *route])
                if asset.kind in RELAYS and flow.protocol in RELAYED and len(route) < MAX_RELAY_HOPS:
                    frontier += [(nxt.target, [*route, nxt.target]) for nxt in facts.flows_from.get(target, ())
                                 if nxt.protocol == flow.protocol and nxt.target not in route]
        for target, via in reached.items():
            moves.append((asset_node(source.id, Privilege.USER), asset_node(target, Privilege.USER), Technique(
                "data-access", P_DATA_ACCESS, f"reads records on {target} with the account's own access ({via})", 1,
                frozenset({f"access:{target}", f"mfa:{target}"}), {"asset": target, "via": via})))
    return moves
