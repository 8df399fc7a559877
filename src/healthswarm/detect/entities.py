"""What an alert is about, read from the events it rests on: inventory assets and entities (users, hosts,
addresses, patients, facilities …) that the correlator joins alerts on."""

from __future__ import annotations

from healthswarm.model import Event

#: Entities an alert names (`details["entities"]`, read by the alert correlator): ECS fields first, then the
#: vendor names of the original record when the ECS ones are absent.
ENTITY_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "user": (("user.name",), ("User", "SubjectUserName", "TargetUserName")),
    "host": (("host.name",), ("Computer",)),
    "ip": (("source.ip", "destination.ip"), ("SourceIp", "DestinationIp", "IpAddress")),
    "community_id": (("network.community_id",), ()),
    "patient": (("patient.id",), ()),
    "process": (("process.executable",), ("Image",)),
    "facility": (("hl7.sending_facility",), ()),
    "ae_title": (("dicom.calling_ae_title",), ()),
    "domain": (("dns.question.name", "tls.client.server_name", "url.domain"), ("QueryName",)),
    "url": (("url.original",), ()),
    "sha256": (("file.hash.sha256",), ()),
}


ASSET_FIELDS = ("asset.id", "source.asset.id", "destination.asset.id")
_ASSET_NAMES = frozenset(ASSET_FIELDS)


def event_assets(events: list[Event]) -> tuple[str, ...]:
    """The inventory assets the events involve: the host they happened on and both ends of a connection."""
    out: dict[str, None] = {}
    for event in events:
        if event.fields.keys().isdisjoint(_ASSET_NAMES):  # no inventory resolved it (a hunt over files): one test
            continue
        for name in ASSET_FIELDS:
            value = event.fields.get(name)
            for item in value if isinstance(value, list | tuple) else (value,):
                if item:
                    out[str(item)] = None
    return tuple(out)


#: ENTITY_FIELDS as (kind, ECS names, vendor names), and the values that name nothing.
_LOOKUPS = tuple((kind, ecs, vendor) for kind, (ecs, vendor) in ENTITY_FIELDS.items())
_EMPTY = (None, "", "-")


def event_entities(events: list[Event]) -> dict[str, list[str]]:
    """Per kind of ENTITY_FIELDS, the distinct values the events name, in order of appearance.

    Once per alert (a hunt makes thousands): plain loops, each name read once (a comprehension is a call)."""
    out: dict[str, dict[str, None]] = {}
    for event in events:
        fields = event.fields.get
        original = event.original.get if isinstance(event.original, dict) else {}.get
        for kind, ecs, vendor in _LOOKUPS:
            found = []
            for name in ecs:
                value = fields(name)
                if value not in _EMPTY:
                    found.append(value)
            if not found:
                for name in vendor:
                    value = original(name)
                    if value not in _EMPTY:
                        found.append(value)
            for value in found:
                values = out.setdefault(kind, {})
                for item in value if isinstance(value, list | tuple) else (value,):
                    values[str(item)] = None
    return {kind: list(values) for kind, values in out.items()}
