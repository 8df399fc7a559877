"""Logsource routing: which events a rule's `logsource` (product / category / service) applies to.

A rule compiles to a tuple of *routes*; an event has one *route key*; the engine tests an event only
against rules whose routes cover its key. Routes are plain tuples (they are pickled in the cache):

- `("win", channel, event_id)`: a Windows event log channel (lower case) and event id; either may be
  None for "any".
- `("obs", observer_type)`: events whose `observer.type` (the ingest format) is this.
- `("nonwin",)`: every event that is not a Windows event (rules without a product, e.g. `category: proxy`).

The tables below are data, so a new log source is a new entry, not a new branch of code. Windows
services map to channels as pySigma's own `windows_logsource_mapping` does; Sysmon categories map to
Sysmon event ids as Sysmon documents them, and the generic categories to the Security audit events
where Windows logs the same thing (process_creation ↔ Sysmon 1 and Security 4688, with the field
names of 4688 aliased to Sysmon's, as pySigma's windows_audit_pipeline maps them).
"""

from __future__ import annotations

from typing import Any

Route = tuple[Any, ...]

SYSMON = "microsoft-windows-sysmon/operational"
SECURITY = "security"
POWERSHELL = ("microsoft-windows-powershell/operational", "powershellcore/operational")
POWERSHELL_CLASSIC = "windows powershell"

#: Windows categories → (channel, event id) pairs.
WINDOWS_CATEGORIES: dict[str, tuple[tuple[str, int], ...]] = {
    "process_creation": ((SYSMON, 1), (SECURITY, 4688)),
    "file_change": ((SYSMON, 2),),
    "network_connection": ((SYSMON, 3),),
    "sysmon_status": ((SYSMON, 4), (SYSMON, 16)),
    "process_termination": ((SYSMON, 5),),
    "driver_load": ((SYSMON, 6),),
    "image_load": ((SYSMON, 7),),
    "create_remote_thread": ((SYSMON, 8),),
    "raw_access_thread": ((SYSMON, 9),),
    "process_access": ((SYSMON, 10),),
    "file_event": ((SYSMON, 11),),
    "registry_add": ((SYSMON, 12), (SECURITY, 4657)),
    "registry_delete": ((SYSMON, 12),),
    "registry_set": ((SYSMON, 13), (SECURITY, 4657)),
    "registry_rename": ((SYSMON, 14),),
    "registry_event": ((SYSMON, 12), (SYSMON, 13), (SYSMON, 14), (SECURITY, 4657)),
    "create_stream_hash": ((SYSMON, 15),),
    "pipe_created": ((SYSMON, 17), (SYSMON, 18)),
    "wmi_event": ((SYSMON, 19), (SYSMON, 20), (SYSMON, 21)),
    "dns_query": ((SYSMON, 22),),
    "file_delete": ((SYSMON, 23), (SYSMON, 26)),
    "clipboard_capture": ((SYSMON, 24),),
    "process_tampering": ((SYSMON, 25),),
    "file_delete_detected": ((SYSMON, 26),),
    "file_block_executable": ((SYSMON, 27),),
    "file_block_shredding": ((SYSMON, 28),),
    "file_executable_detected": ((SYSMON, 29),),
    "sysmon_error": ((SYSMON, 255),),
    "ps_module": tuple((c, 4103) for c in POWERSHELL),
    "ps_script": tuple((c, 4104) for c in POWERSHELL),
    "ps_classic_start": ((POWERSHELL_CLASSIC, 400),),
    "ps_classic_provider_start": ((POWERSHELL_CLASSIC, 600),),
    "ps_classic_script": ((POWERSHELL_CLASSIC, 800),),
}

#: Field aliases per (channel, event id): rules written with Sysmon names also match the audit event.
WINDOWS_ALIASES: dict[tuple[str, int], dict[str, str]] = {
    (SECURITY, 4688): {"Image": "NewProcessName", "ParentImage": "ParentProcessName", "LogonId": "SubjectLogonId"},
    (SECURITY, 4657): {"Details": "NewValue"},
}

#: Sigma products (other than windows) → the ingest formats (`observer.type`) that carry them.
PRODUCT_OBSERVERS: dict[str, tuple[str, ...]] = {
    "linux": ("syslog", "auditd"),
    "zeek": ("zeek",),
    "suricata": ("suricata",),
    "fhir": ("fhir",),
    "hl7": ("hl7",),
    "dicom": ("dicom",),
    "iomt": ("iomt", "iomt-json"),
}

#: Ingest formats whose events are Windows events (`Event.original` is the flat Windows dict).
WINDOWS_FORMATS = frozenset({"windows", "evtx", "windows-json"})


#: Windows services pySigma's mapping lacks (service → channels); healthswarm's pack uses them.
EXTRA_WINDOWS_SERVICES: dict[str, tuple[str, ...]] = {
    "directory-service": ("directory service",),  # NTDS: LDAP search logging (1644), replication
}


def _windows_services() -> dict[str, tuple[str, ...]]:
    from sigma.pipelines.common import windows_logsource_mapping

    out: dict[str, tuple[str, ...]] = dict(EXTRA_WINDOWS_SERVICES)
    for service, channels in windows_logsource_mapping.items():
        names = [channels] if isinstance(channels, str) else list(channels)
        out[service] = tuple(c.lower() for c in names)
    return out


def routes_for(product: str | None, category: str | None, service: str | None) -> tuple[tuple[Route, ...], str]:
    """The routes of a logsource, and a note when part of it is unknown (the route is then broader)."""
    product = (product or "").lower() or None
    category = (category or "").lower() or None
    service = (service or "").lower() or None
    if product == "windows":
        if category and category in WINDOWS_CATEGORIES:
            return tuple(("win", ch, eid) for ch, eid in WINDOWS_CATEGORIES[category]), ""
        services = _windows_services()
        if service and service in services:
            return tuple(("win", ch, None) for ch in services[service]), ""
        if category or service:
            what = f"category {category!r}" if category else f"service {service!r}"
            return (("win", None, None),), f"Windows {what} has no known channel: rule tested on all Windows events"
        return (("win", None, None),), ""
    if product is None:
        return (("nonwin",),), ""
    observers = PRODUCT_OBSERVERS.get(product, (product,))
    return tuple(("obs", o) for o in observers), ""


def windows_key(original: dict[str, Any]) -> tuple[str, int | None]:
    """The route key of a Windows event: (channel in lower case, event id)."""
    channel = original.get("Channel")
    eid = original.get("EventID")
    try:
        event_id = int(eid) if eid is not None else None
    except (TypeError, ValueError):
        event_id = None
    return (channel.lower() if isinstance(channel, str) else "", event_id)
