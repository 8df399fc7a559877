"""Typed records of a healthcare ICT infrastructure: organisations, zones, assets, flows, dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Level(IntEnum):
    """Criticality level; ordered, so `Level.HIGH >= Level.MEDIUM`."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.strip().upper()]

    def __str__(self) -> str:
        return self.name.lower()


LEVEL_NAMES = tuple(str(level) for level in Level)

ORGANISATION_KINDS = frozenset(
    {
        "hospital", "imaging-centre", "laboratory", "clinic", "pharmacy", "payer", "vendor",
        "health-authority", "care-home", "research", "ambulance-service", "managed-service-provider",
    }
)

ZONE_EXPOSURES = frozenset({"internet", "partner", "internal", "clinical", "iomt", "management"})

# Medical devices: kinds whose compromise can hurt a patient directly.
MEDICAL_DEVICE_KINDS = frozenset(
    {
        "modality", "infusion-pump", "patient-monitor", "ventilator", "implant-programmer",
        "anaesthesia-machine", "dialysis-machine", "defibrillator", "insulin-pump", "glucose-monitor",
        "lab-analyser", "surgical-robot", "radiotherapy-system", "telemetry-monitor", "medical-device",
    }
)

ASSET_KINDS = MEDICAL_DEVICE_KINDS | frozenset(
    {
        # clinical information systems
        "ehr", "his", "lis", "ris", "pacs", "emr", "pharmacy-system", "interface-engine", "fhir-server",
        "dicom-router", "iomt-gateway", "nurse-call", "medical-device-server", "portal",
        # general IT
        "workstation", "clinical-workstation", "laptop", "server", "domain-controller", "database",
        "file-server", "mail-server", "web-server", "backup-server", "jump-host", "hypervisor",
        "firewall", "vpn", "router", "switch", "wireless-controller", "proxy", "dns-server",
        "siem", "printer", "phone", "mobile-device", "building-management", "cloud-service",
    }
)

FLOW_PROTOCOLS = frozenset(
    {
        "hl7v2", "fhir", "dicom", "mqtt", "https", "http", "smb", "rdp", "ssh", "ldap", "kerberos",
        "dns", "smtp", "sql", "modbus", "bacnet", "ntp", "syslog", "snmp", "vnc", "telnet", "ftp",
        "sftp", "tcp", "udp", "vpn", "wado", "x12",
    }
)

DEPENDENCY_KINDS = frozenset({"service", "data", "vendor-access", "network", "identity", "power"})


@dataclass(frozen=True, slots=True)
class Criticality:
    safety: Level = Level.NONE
    confidentiality: Level = Level.NONE
    availability: Level = Level.NONE

    @property
    def highest(self) -> Level:
        return max(self.safety, self.confidentiality, self.availability)


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    kind: str
    country: str = ""


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    organisation: str
    name: str
    exposure: str


@dataclass(frozen=True, slots=True)
class Hl7Identity:
    """How an asset names itself in HL7 v2 message headers: the application namespace ids it sends and receives
    as (MSH-3 / MSH-5) and its facility (MSH-4 / MSH-6; empty: any facility)."""

    applications: tuple[str, ...] = ()
    facility: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"applications": list(self.applications), **({"facility": self.facility} if self.facility else {})}


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    organisation: str
    zone: str
    kind: str
    name: str
    vendor: str = ""
    product: str = ""
    version: str = ""
    cpe: str = ""
    addresses: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    criticality: Criticality = field(default_factory=Criticality)
    records: int | None = None
    # free-form extra facts the description gives under `attributes:` (serial, location, owner, ...)
    attributes: dict[str, str] = field(default_factory=dict)
    # what it is called in HL7 headers, declared under `hl7:` (ingest ties HL7 messages to it by MSH-3..6)
    hl7: Hl7Identity | None = None

    @property
    def is_medical_device(self) -> bool:
        return self.kind in MEDICAL_DEVICE_KINDS


@dataclass(frozen=True, slots=True)
class Flow:
    source: str
    target: str
    protocol: str
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Dependency:
    source: str
    target: str
    kind: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """One organisation's or a whole ecosystem's infrastructure, already validated."""

    organisations: tuple[Organisation, ...] = ()
    zones: tuple[Zone, ...] = ()
    assets: tuple[Asset, ...] = ()
    flows: tuple[Flow, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
