"""The observed picture against the declared inventory: what is on the wire that nobody declared.

`compare(discovery, inventory, fingerprints)` gives a `DiscoveryReport`:
- **devices**: every internal address seen, tied to its declared asset or marked undeclared (with the
  organisation and zone its /24 neighbours have, and a kind from its fingerprint or its services);
  public addresses that are not in the inventory are the Internet, not devices;
- **flows**: every aggregated flow with a declared asset (or an undeclared device, or the Internet) at
  each end, matched against the declared flows (`protocols.satisfies`): undeclared ones carry the
  concerns that make them matter (a medical device speaking SMB, a modality reaching the Internet, a
  vendor box reaching the EHR, anything into a safety-critical device);
- **silent**: declared assets never seen although the sensors saw their zone ("not covered" when
  nothing of the zone was seen: silence there says nothing);
- **contradictions**: a declared version (or vendor) that the device's own announcements contradict.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from healthswarm.inventory.addresses import AddressIndex
from healthswarm.inventory.advisories.products import vendor_keys
from healthswarm.inventory.discover.fingerprints import Conclusion, Fingerprints, oui_vendor
from healthswarm.inventory.discover.observe import Discovery, Endpoint
from healthswarm.inventory.discover.protocols import classify, satisfies
from healthswarm.model import MEDICAL_DEVICE_KINDS, Asset, Flow, Inventory, Level
from healthswarm.model.network import INTERNAL_NETWORKS

REMOTE_ADMIN = frozenset({"smb", "rdp", "ssh", "telnet", "vnc", "ftp", "sftp"})
# name and time service from its own directory servers: expected, not declared, reported as "infrastructure"
# (Kerberos and LDAP are not: inventories declare them, and attack paths read domain membership from them)
INFRASTRUCTURE = frozenset({"dns", "ntp"})
DIRECTORY_KINDS = frozenset({"domain-controller", "dns-server"})
TALKING_DEPENDENCIES = frozenset({"service", "data", "identity", "vendor-access"})
CLINICAL_SYSTEMS = frozenset({"ehr", "his", "emr", "lis", "ris", "pacs", "fhir-server", "interface-engine",
                              "pharmacy-system", "medical-device-server", "dicom-router"})
INTERNET = "internet"
# what "a safety-critical device" is: a medical device, or what drives them (pump servers, IoMT gateways),
# with safety criticality high or critical (an EHR may be safety-relevant too; it is a clinical system)
SAFETY_DEVICE_KINDS = MEDICAL_DEVICE_KINDS | frozenset({"medical-device-server", "iomt-gateway"})


def safety_critical(asset: Asset | None) -> bool:
    return asset is not None and asset.kind in SAFETY_DEVICE_KINDS and asset.criticality.safety >= Level.HIGH
MIN_VERSION_CONFIDENCE = 0.5
MIN_VENDOR_CONFIDENCE = 0.8


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@lru_cache(maxsize=262_144)
def address_class(ip: str) -> str:
    """"internal", "external", or "" (multicast, broadcast, loopback: neither a device nor a peer)."""
    try:
        a = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ""
    if a.is_multicast or a.is_loopback or a.is_unspecified or a.is_reserved:
        return ""
    if a.version == 4 and ip.endswith(".255"):
        return ""
    if a.version == 6 and a.ipv4_mapped is not None:
        return address_class(str(a.ipv4_mapped))
    # the organisation's own address space (model/network.py, the egress gate's too); not Python's is_private,
    # which also counts the documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) that examples, and the
    # demo, use for the Internet
    return "internal" if any(a in n for n in INTERNAL_NETWORKS if n.version == a.version) else "external"


def _norm_version(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def versions_agree(declared: str, observed: str) -> bool:
    """'3.6.5' and 'OFFIS_DCMTK_365' → 365 = 365; '10 22H2' and '10' agree (one is the other's start)."""
    a, b = _norm_version(declared), _norm_version(observed)
    if not a or not b:
        return True
    return a.startswith(b) or b.startswith(a)


def vendors_agree(a: str, b: str) -> bool:
    return bool(set(vendor_keys(a)) & set(vendor_keys(b))) if a and b else True


@dataclass(slots=True)
class Device:
    ip: str
    status: str  # "declared" or "undeclared"
    asset_id: str | None
    first_seen: str | None
    last_seen: str | None
    events: int
    macs: list[str] = field(default_factory=list)
    mac_vendors: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # "tcp/104 dicom" it answered on
    signals: dict[str, list[str]] = field(default_factory=dict)
    fingerprint: Conclusion | None = None
    organisation: str = ""  # undeclared: guessed from the /24's declared neighbours
    zone: str = ""
    kind: str = ""
    why_kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fingerprint"}
        out["fingerprint"] = self.fingerprint.as_dict() if self.fingerprint else None
        return out


@dataclass(slots=True)
class ObservedFlow:
    client: str
    server: str
    port: int | None
    transport: str
    protocol: str
    source: str  # asset id, "ip:<address>" for an undeclared device, or "internet"
    target: str
    first: float  # epoch seconds; `first_seen` / `last_seen` (and `as_dict`) give ISO 8601
    last: float
    connections: int
    events: int
    bytes: int
    status: str  # "declared", "undeclared", or "infrastructure" (DNS/NTP to its own directory servers)
    declared_as: str = ""  # the declared flow it satisfies
    concerns: list[str] = field(default_factory=list)
    severity: str = "low"
    safety_critical_target: bool = False

    @property
    def first_seen(self) -> str | None:
        return iso(self.first)

    @property
    def last_seen(self) -> str | None:
        return iso(self.last)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("first", "last")}
        out["first_seen"], out["last_seen"] = self.first_seen, self.last_seen
        return out


@dataclass
class Contradiction:
    asset_id: str
    field: str
    declared: str
    observed: str
    confidence: float
    evidence: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "confidence": round(self.confidence, 3)}


@dataclass
class DiscoveryReport:
    window: dict[str, Any]
    devices: list[Device]
    flows: list[ObservedFlow]
    silent: list[dict[str, Any]]
    not_covered: list[str]
    contradictions: list[Contradiction]
    applications: list[dict[str, Any]]
    fingerprint_families: list[str]

    @property
    def undeclared_devices(self) -> list[Device]:
        return [d for d in self.devices if d.status == "undeclared"]

    @property
    def undeclared_flows(self) -> list[ObservedFlow]:
        return [f for f in self.flows if f.status == "undeclared"]

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.window.get("events", 0), "flow_events": self.window.get("flow_events", 0),
            "devices_seen": len(self.devices),
            "declared_devices_seen": sum(d.status == "declared" for d in self.devices),
            "undeclared_devices": len(self.undeclared_devices),
            "fingerprinted": sum(d.fingerprint is not None for d in self.devices),
            "flows": len(self.flows), "declared_flows_seen": sum(f.status == "declared" for f in self.flows),
            "infrastructure_flows": sum(f.status == "infrastructure" for f in self.flows),
            "undeclared_flows": len(self.undeclared_flows),
            "undeclared_flows_high": sum(f.severity == "high" for f in self.undeclared_flows),
            "silent_assets": len(self.silent), "assets_not_covered": len(self.not_covered),
            "contradictions": len(self.contradictions),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(), "window": self.window,
            "undeclared_devices": [d.as_dict() for d in self.undeclared_devices],
            "undeclared_flows": [f.as_dict() for f in self.undeclared_flows],
            "silent_assets": self.silent, "assets_not_covered": self.not_covered,
            "contradictions": [c.as_dict() for c in self.contradictions],
            "devices": [d.as_dict() for d in self.devices],
            "declared_flows_seen": [f.as_dict() for f in self.flows if f.status == "declared"],
            "applications": self.applications, "fingerprint_families": self.fingerprint_families,
        }


def _signals(e: Endpoint) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {k: list(v) for k, v in (e.signals or {}).items()}
    if e.names:
        out["host.name"] = list(e.names)
    vendors = [v for mac in e.macs or () if (v := oui_vendor(mac))]
    if vendors:
        out["mac.vendor"] = list(dict.fromkeys(vendors))
    return out


class _Neighbourhood:
    """Organisation and zone of an undeclared address, from the declared assets of its /24 (IPv4) or /64."""

    def __init__(self, inventory: Inventory) -> None:
        self.zone_org = {z.id: z.organisation for z in inventory.zones}
        self.by_prefix: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_wide: dict[str, Counter[str]] = defaultdict(Counter)  # IPv4 /16 → organisations
        for a in inventory.assets:
            for text in a.addresses:
                if "/" not in text:
                    self.by_prefix[self._prefix(text)][a.zone] += 1
                    if "." in text:
                        self.by_wide[text.rsplit(".", 2)[0]][self.zone_org.get(a.zone, "")] += 1
        self._memo: dict[str, tuple[str, str]] = {}

    @staticmethod
    def _prefix(ip: str) -> str:
        return ip.rsplit(".", 1)[0] if "." in ip else ":".join(ip.split(":")[:4])

    def guess(self, ip: str) -> tuple[str, str]:
        """(organisation, zone) from the /24's declared assets; else (organisation, "") from the /16's."""
        prefix = self._prefix(ip)
        hit = self._memo.get(prefix)
        if hit is None:
            hit = ("", "")
            zones = self.by_prefix.get(prefix)
            if zones:
                zone = zones.most_common(1)[0][0]
                hit = (self.zone_org.get(zone, ""), zone)
            elif "." in ip and (orgs := self.by_wide.get(ip.rsplit(".", 2)[0])):
                hit = (orgs.most_common(1)[0][0], "")
            self._memo[prefix] = hit
        return hit


def _kind_from_services(services: list[str], zone_exposure: str) -> tuple[str, str]:
    ports = {s.split()[0] for s in services}
    for port, kind in (("tcp/104", "dicom-router"), ("tcp/11112", "dicom-router"), ("tcp/2575", "interface-engine"),
                       ("tcp/88", "domain-controller"), ("tcp/445", "file-server"), ("tcp/25", "mail-server"),
                       ("tcp/1883", "iomt-gateway"), ("tcp/8883", "iomt-gateway")):
        if port in ports:
            return kind, f"answers on {port}"
    if ports:
        return "server", "answers on " + ", ".join(sorted(ports)[:3])
    if zone_exposure == "iomt":
        return "medical-device", "seen on the medical-device network"
    return "workstation", "only a client"


def compare(discovery: Discovery, inventory: Inventory, fingerprints: Fingerprints) -> DiscoveryReport:
    index = AddressIndex(inventory.assets)
    assets = {a.id: a for a in inventory.assets}
    zones = {z.id: z for z in inventory.zones}
    org_kind = {o.id: o.kind for o in inventory.organisations}
    neighbours = _Neighbourhood(inventory)
    resolved: dict[str, str | None] = {}

    def owner(ip: str) -> str | None:
        if ip not in resolved:
            resolved[ip] = index.lookup(ip)
        return resolved[ip]

    # services each address answered on, from the flows (the server side)
    services: dict[str, set[str]] = defaultdict(set)
    for (_, server, port, transport), stats in discovery.flows.items():
        if port is not None and len(services[server]) < 32:
            services[server].add(f"{transport or 'tcp'}/{port} {classify(transport, port, stats.app)}")

    devices: list[Device] = []
    seen_assets: set[str] = set()
    for ip, e in discovery.endpoint_view().items():
        cls = address_class(ip)
        asset_id = owner(ip)
        if asset_id is None and cls != "internal":
            continue
        signals = _signals(e)
        declared = assets.get(asset_id) if asset_id else None
        conclusion = fingerprints.conclude(signals, declared.vendor if declared else "") if signals else None
        device = Device(ip=ip, status="declared" if declared else "undeclared", asset_id=asset_id,
                        first_seen=iso(e.first), last_seen=iso(e.last), events=e.events, macs=list(e.macs or ()),
                        mac_vendors=signals.get("mac.vendor", []), names=list(e.names or ()),
                        services=sorted(services.get(ip, ())), signals={k: v for k, v in signals.items()
                                                                        if k not in ("mac.vendor",)},
                        fingerprint=conclusion)
        if declared is not None:
            seen_assets.add(declared.id)
            device.organisation, device.zone, device.kind = declared.organisation, declared.zone, declared.kind
        else:
            device.organisation, device.zone = neighbours.guess(ip)
            exposure = zones[device.zone].exposure if device.zone in zones else ""
            if conclusion is not None and conclusion.kind:
                device.kind, device.why_kind = conclusion.kind, "fingerprint"
            else:
                device.kind, device.why_kind = _kind_from_services(device.services, exposure)
        devices.append(device)
    devices.sort(key=lambda d: (d.status != "undeclared", d.asset_id or "", d.ip))

    # the declared flows by (source, target), and the dependencies that say two assets talk
    declared_flows: dict[tuple[str, str], list[Flow]] = defaultdict(list)
    for fl in inventory.flows:
        declared_flows[(fl.source, fl.target)].append(fl)
    depends = {(d.source, d.target): d.kind for d in inventory.dependencies if d.kind in TALKING_DEPENDENCIES}
    device_kind = {d.ip: d.kind for d in devices if d.status == "undeclared"}

    flows: list[ObservedFlow] = []
    for (client, server, port, transport), stats in discovery.flows.items():
        src_asset, dst_asset = owner(client), owner(server)
        src_class, dst_class = address_class(client), address_class(server)
        if src_asset is None and dst_asset is None and src_class != "internal" and dst_class != "internal":
            continue  # neither end is ours
        if (src_asset is None and not src_class) or (dst_asset is None and not dst_class):
            continue  # multicast / broadcast: no peer
        source = src_asset or (f"ip:{client}" if src_class == "internal" else INTERNET)
        target = dst_asset or (f"ip:{server}" if dst_class == "internal" else INTERNET)
        protocol = classify(transport, port, stats.app)
        flow = ObservedFlow(client, server, port, transport, protocol, source, target, stats.first, stats.last,
                            stats.connections, stats.events, stats.bytes, "undeclared")
        if src_asset and dst_asset:
            for declared in declared_flows.get((src_asset, dst_asset), ()):
                if satisfies(protocol, port, declared.protocol, declared.port):
                    flow.status = "declared"
                    flow.declared_as = f"{declared.source} -> {declared.target} {declared.protocol}" + (
                        f"/{declared.port}" if declared.port else "")
                    break
        if flow.status == "undeclared":
            src, dst = assets.get(src_asset or ""), assets.get(dst_asset or "")
            if (src is not None and dst is not None and protocol in INFRASTRUCTURE and dst.kind in DIRECTORY_KINDS
                    and src.organisation == dst.organisation):
                flow.status, flow.severity = "infrastructure", "info"
                flow.concerns.append(f"{protocol} to the organisation's {dst.kind}")
            else:
                _concerns(flow, src, dst, zones, org_kind, device_kind.get(client, ""))
                if (kind := depends.get((src_asset or "", dst_asset or ""))) is not None:
                    flow.concerns.append(f"explained by a declared {kind} dependency")
        flows.append(flow)
    rank = {"high": 0, "medium": 1, "low": 2, "info": 3}
    flows.sort(key=lambda f: (f.status != "undeclared", rank[f.severity], f.source, f.target, f.port or 0))

    # silence means something only where the sensors saw the zone
    covered_zones = {d.zone for d in devices if d.status == "declared"}
    silent, not_covered = [], []
    for a in inventory.assets:
        if a.id in seen_assets or not a.addresses:
            continue
        if a.zone in covered_zones:
            silent.append({"asset_id": a.id, "kind": a.kind, "zone": a.zone, "addresses": list(a.addresses),
                           "medical_device": a.is_medical_device})
        else:
            not_covered.append(a.id)

    contradictions = []
    for d in devices:
        if d.status != "declared" or d.fingerprint is None:
            continue
        contradictions.extend(_contradictions(assets[d.asset_id or ""], d.fingerprint))

    # HL7 applications seen in messages, tied to the asset that declares that identity (MSH-3 + MSH-4)
    hl7_names: dict[tuple[str, str], str] = {}
    for asset in inventory.assets:
        identity = getattr(asset, "hl7", None)
        for name in getattr(identity, "applications", ()) or ():
            hl7_names[(name.upper(), (getattr(identity, "facility", "") or "").upper())] = asset.id
    applications = []
    for a in discovery.applications.values():
        owner_id = hl7_names.get((a.name.upper(), a.facility.upper())) or hl7_names.get((a.name.upper(), ""))
        conclusion = fingerprints.conclude({"hl7.sending_application": [a.name]})
        applications.append({
            "kind": a.kind, "facility": a.facility, "application": a.name, "asset_id": owner_id,
            "status": "declared" if owner_id else ("undeclared" if hl7_names else "unknown"),
            "first_seen": iso(a.first), "last_seen": iso(a.last), "messages": a.messages,
            "receivers": dict(a.receivers), "fingerprint": conclusion.as_dict() if conclusion else None})
    window = {"first": iso(discovery.first), "last": iso(discovery.last), "events": discovery.events,
              "flow_events": discovery.flow_events, "evicted_flows": discovery.evicted_flows,
              "evicted_endpoints": discovery.evicted_endpoints}
    return DiscoveryReport(window, devices, flows, silent, not_covered, contradictions, applications,
                           fingerprints.families)


def _concerns(flow: ObservedFlow, src: Asset | None, dst: Asset | None, zones: dict[str, Any],
              org_kind: dict[str, str], undeclared_kind: str) -> None:
    concerns = flow.concerns
    severity = "low"
    src_medical = (src is not None and src.is_medical_device) or undeclared_kind in (
        "medical-device", "infusion-pump", "patient-monitor", "ventilator", "modality")
    if safety_critical(dst) and dst is not None:
        flow.safety_critical_target = True
        concerns.append(f"into a safety-critical {dst.kind} ({flow.protocol})")
        severity = "high"
    if src_medical and flow.protocol in REMOTE_ADMIN:
        concerns.append(f"a medical device speaking {flow.protocol}")
        severity = "high"
    if src_medical and flow.target == INTERNET:
        concerns.append("a medical device reaching the Internet")
        severity = "high"
    src_vendor = src is not None and (org_kind.get(src.organisation) == "vendor" or
                                      (zones.get(src.zone) is not None and zones[src.zone].exposure == "internet"
                                      and src.kind not in ("firewall", "vpn", "mail-server", "portal", "proxy")))
    if (src_vendor or flow.source == INTERNET) and dst is not None and (dst.kind in CLINICAL_SYSTEMS
                                                                        or dst.is_medical_device):
        concerns.append(f"{'a vendor box' if src_vendor else 'the Internet'} reaching a {dst.kind}")
        severity = "high"
    if src is not None and dst is not None and src.organisation != dst.organisation:
        concerns.append(f"crosses organisations ({src.organisation} -> {dst.organisation})")
        severity = "medium" if severity == "low" else severity
    if flow.target == INTERNET and not src_medical:
        concerns.append("reaches the Internet")
    if flow.source == INTERNET and not concerns:
        concerns.append("from the Internet")
    if flow.source.startswith("ip:"):
        concerns.append("from an undeclared device")
        severity = "medium" if severity == "low" else severity
    if flow.target.startswith("ip:"):
        concerns.append("to an undeclared device")
        severity = "medium" if severity == "low" else severity
    if flow.protocol in REMOTE_ADMIN and severity == "low":
        concerns.append(f"remote administration ({flow.protocol})")
        severity = "medium"
    if not concerns:
        concerns.append("not declared")
    flow.severity = severity


def _contradictions(asset: Asset, c: Conclusion) -> list[Contradiction]:
    out = []
    vendor_ok = vendors_agree(asset.vendor, c.vendor)
    if asset.vendor and not vendor_ok and c.confidence >= MIN_VENDOR_CONFIDENCE and not any(
            vendors_agree(asset.vendor, alt["vendor"]) for alt in c.alternatives):
        out.append(Contradiction(asset.id, "vendor", asset.vendor, c.vendor, c.confidence, c.evidence))
    if (vendor_ok and asset.version and c.version and c.version_confidence >= MIN_VERSION_CONFIDENCE
            and (not c.product or not asset.product or _same_product(asset.product, c.product))
            and not versions_agree(asset.version, c.version)):
        evidence = [e for e in c.evidence if e.get("version")]
        out.append(Contradiction(asset.id, "version", asset.version, c.version, c.version_confidence, evidence))
    return out


def _same_product(a: str, b: str) -> bool:
    x, y = re.sub(r"[^0-9a-z]", "", a.lower()), re.sub(r"[^0-9a-z]", "", b.lower())
    return x.startswith(y) or y.startswith(x) or x in y or y in x
