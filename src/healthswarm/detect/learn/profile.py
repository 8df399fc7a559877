"""What one asset normally does on the network: peers, services, volume and hours, counted as it goes.

A service is `network.protocol` when the event names one, else the well-known name of the destination
port, else `transport/port`. Volume is tracked as a running mean/variance (Welford) of log(1 + bytes).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Well-known ports of the protocols a hospital network carries (what `network.protocol` would say).
PORT_SERVICES = {
    20: "ftp", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 80: "http", 88: "kerberos",
    104: "dicom", 123: "ntp", 135: "msrpc", 139: "smb", 161: "snmp", 389: "ldap", 443: "https", 445: "smb",
    502: "modbus", 514: "syslog", 636: "ldaps", 1433: "sql", 1883: "mqtt", 2575: "hl7", 3306: "sql",
    3389: "rdp", 4242: "dicom", 5432: "sql", 5900: "vnc", 8883: "mqtt", 11112: "dicom", 47808: "bacnet",
}
PROTOCOL_NAMES = {"hl7": "HL7", "hl7v2": "HL7", "dicom": "DICOM", "smb": "SMB", "rdp": "RDP", "fhir": "FHIR"}


def service_of(fields: Mapping[str, Any]) -> str:
    protocol = str(fields.get("network.protocol") or "").strip().lower()
    if protocol:
        return "hl7" if protocol == "hl7v2" else protocol
    port = fields.get("destination.port")
    try:
        number = int(port) if port is not None else None
    except (TypeError, ValueError):
        number = None
    if number is not None and number in PORT_SERVICES:
        return PORT_SERVICES[number]
    transport = str(fields.get("network.transport") or "ip").lower()
    return f"{transport}/{number}" if number is not None else transport


def display(service: str) -> str:
    return PROTOCOL_NAMES.get(service, service.upper() if "/" not in service else service)


#: Distinct peers (and service-peer pairs) one profile counts at most: past it only the half seen most often stay,
#: so a server that talks to the whole internet keeps a bounded profile; for such an asset a peer seen rarely is
#: no baseline anyway.
MAX_PEERS = 4_096


@dataclass(slots=True)
class AssetProfile:
    events: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    peers: Counter[str] = field(default_factory=Counter)
    services: Counter[str] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    volume_n: int = 0
    volume_mean: float = 0.0
    volume_m2: float = 0.0

    def update(self, peer: str, service: str, hour: int, size: float | None, when: float) -> None:
        if not self.events:
            self.first_seen = when
        self.events += 1
        self.last_seen = max(self.last_seen, when)
        self.peers[peer] += 1
        self.services[service] += 1
        self.pairs[(service, peer)] += 1
        if len(self.pairs) > MAX_PEERS:
            self.pairs = Counter(dict(self.pairs.most_common(MAX_PEERS // 2)))
        if len(self.peers) > MAX_PEERS:
            self.peers = Counter(dict(self.peers.most_common(MAX_PEERS // 2)))
        self.hours[hour] += 1
        if size is not None:
            x = math.log1p(max(size, 0.0))
            self.volume_n += 1
            delta = x - self.volume_mean
            self.volume_mean += delta / self.volume_n
            self.volume_m2 += delta * (x - self.volume_mean)

    def volume_z(self, size: float | None) -> float:
        """How many standard deviations log(1 + bytes) lies above the usual (0 when unknown)."""
        if size is None or self.volume_n < 2:
            return 0.0
        std = math.sqrt(self.volume_m2 / (self.volume_n - 1))
        return (math.log1p(max(size, 0.0)) - self.volume_mean) / max(std, 0.25)

    def describe(self, name: dict[str, str], top: int = 3) -> str:
        """'HL7 to the gateway only' / 'HL7 to gw (90%), NTP to 10.0.0.1 (10%)'."""
        by_service: dict[str, Counter[str]] = {}
        for (service, peer), n in self.pairs.items():
            by_service.setdefault(service, Counter())[peer] += n
        parts = []
        for service, peers in sorted(by_service.items(), key=lambda kv: -sum(kv[1].values()))[:top]:
            names = [name.get(p, p) for p, _ in peers.most_common(2)]
            more = f" and {len(peers) - 2} more" if len(peers) > 2 else ""
            share = sum(peers.values()) / self.events
            parts.append(f"{display(service)} to {' and '.join(names)}{more}"
                         + ("" if share == 1 else f" ({share:.0%})"))
        if len(by_service) > top:
            parts.append(f"{len(by_service) - top} other protocols")
        text = ", ".join(parts)
        return text + " only" if len(by_service) == 1 and len(self.peers) == 1 else text
