"""FHIR R4 AuditEvent, and the care feed's Encounter and CareTeam: single resources (pretty-printed or not),
Bundles of them, and NDJSON.

`original` is the resource as written. A resource of another type (Provenance, Observation …) is rejected
with the type found; so is a Bundle entry of another type.
`position` is the byte offset after the record (the JSON text of a resource or Bundle); the entries of
a Bundle get the last positions of the Bundle's bytes, one each, so their idempotency keys differ.

Fields:
- who: the requesting agent (`requestor: true`, else the first human user, else the first agent with
  a `who`): `user.id` (who.identifier.value or who.reference), `user.name` (agent.name or
  who.display), `user.roles` (agent.role texts/codes);
- network: that agent's network address (else the DICOM "Source Role ID" agent's) →
  `source.address` and `source.ip` (an IP) or `source.domain` (a machine name); the "Destination
  Role ID" agent → `destination.*`;
- what: `event.action` from the subtype (FHIR restful interaction such as `read`, `search`, an
  operation such as `$export`, else the subtype display, e.g. `login`), else from the action code
  (C create, R read, U update, D delete, E execute); `event.outcome` success (0) / failure (4, 8, 12);
- why: `fhir.purpose_of_use` (codes of agent.purposeOfUse and purposeOfEvent) and
  `fhir.break_the_glass` when one is BTG or ETREAT;
- where: `observer.name` (source.observer), `fhir.source.site`;
- which patient: only in `patient.*`: `patient.id` (from an entity `Patient/<id>` reference, or the
  identifier of an entity of type Person with role Patient, or a `patient=`/`subject=Patient/`
  search parameter), `patient.identifiers` (all of them), `patient.reference`;
- `url.original` from the entity query (base64 in R4) when it is a URL, with patient references in it
  replaced by `[patient]` so the identifier lives in `patient.*` only.

Encounter and CareTeam say who treats whom (privacy monitoring reads them from `original`: its care
relationships, detect/privacy/relationships.py); their time is `period.start`, else `meta.lastUpdated`.
Fields: `fhir.resource_type`, `event.action` (`encounter`, `care-team`), `event.id`, `fhir.status`,
`fhir.participants` (how many), `patient.id` / `patient.reference` (the Patient subject).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from healthswarm.ingest.formats.json_records import JsonItem, iter_json_from
from healthswarm.ingest.formats.timestamps import parse_iso
from healthswarm.model import Event, Reject
from healthswarm.model.words import counted

_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')
_ACTIONS = {"C": "create", "R": "read", "U": "update", "D": "delete", "E": "execute"}
_RESTFUL = {
    "read", "vread", "update", "patch", "delete", "history", "history-instance", "history-type",
    "history-system", "create", "search", "search-type", "search-system", "capabilities", "transaction",
    "batch", "operation",
}  # fmt: skip
_OUTCOMES = {"0": "success", "4": "failure", "8": "failure", "12": "failure"}
_BREAK_THE_GLASS = {"BTG", "ETREAT"}
_SOURCE_ROLE, _DESTINATION_ROLE = "110153", "110152"
_PATIENT_PARAMS = {"patient", "subject", "patient.identifier", "subject:patient"}
_PATIENT_REF = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
_PATIENT_REFERENCE = re.compile(r"^(?:.*/)?Patient/([^/]+)")  # an entity's or a subject's reference
_CARE = {"Encounter": "encounter", "CareTeam": "care-team"}  # resources of the care feed → event.action


class FhirFormat:
    name: ClassVar[str] = "fhir"
    description: ClassVar[str] = "FHIR R4 AuditEvent, Encounter and CareTeam (resources, Bundles, NDJSON)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        found = _RESOURCE_TYPE.findall(head)
        if not found:
            return 0.0
        if b"AuditEvent" in found or b"Encounter" in found or b"CareTeam" in found:
            return 0.95
        # another FHIR resource: ours to reject with a clear reason rather than nobody's
        return 0.6

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        for item in iter_json_from(stream, start):
            yield from self._item(item, source, start)

    def _reject(self, source: str, position: int, record: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)

    def _item(self, item: JsonItem, source: str, start: int) -> Iterator[Event | Reject]:
        if item.error:
            yield self._reject(source, item.position, item.line, item.error, item.raw)
            return
        value = item.value
        kind = value.get("resourceType") if isinstance(value, dict) else None
        if kind == "Bundle":
            entries = value.get("entry") or []
            if not isinstance(entries, list):
                yield self._reject(source, item.position, item.line, "Bundle.entry is not a list", item.raw)
                return
            count = len(entries)
            for index, entry in enumerate(entries):
                position = item.position - (count - 1 - index)
                if position <= start:
                    continue
                resource = entry.get("resource") if isinstance(entry, dict) else None
                yield self._resource(resource, source, position, item.line, f"Bundle entry {index + 1}: ")
        else:
            yield self._resource(value, source, item.position, item.line, "", item.raw)

    def _resource(
        self, resource: Any, source: str, position: int, record: int, where: str, raw: bytes = b""
    ) -> Event | Reject:
        text = raw or (orjson.dumps(resource) if resource is not None else b"")
        if not isinstance(resource, dict):
            return self._reject(
                source, position, record, f"{where}expected a FHIR resource (JSON object), found "
                f"{type(resource).__name__}", text,
            )  # fmt: skip
        kind = resource.get("resourceType")
        if kind in _CARE:
            return self._care(resource, kind, source, position, record, where, text)
        if kind != "AuditEvent":
            found = f"resourceType {kind}" if kind else "no resourceType"
            return self._reject(
                source, position, record,
                f"{where}{found}, expected AuditEvent, Encounter or CareTeam (or a Bundle of them)", text,
            )  # fmt: skip
        timestamp = parse_iso(resource.get("recorded")) if isinstance(resource.get("recorded"), str) else None
        if timestamp is None:
            return self._reject(
                source, position, record,
                f"{where}AuditEvent.recorded {resource.get('recorded')!r} missing or invalid: expected an instant",
                text,
            )  # fmt: skip
        try:
            fields = audit_fields(resource)
        except (AttributeError, TypeError, ValueError) as exc:
            return self._reject(source, position, record, f"{where}AuditEvent malformed: {exc}", text)
        return Event(
            timestamp=timestamp, fields=fields, original=resource, source=source, record=record, position=position
        )

    def _care(
        self, resource: dict[str, Any], kind: str, source: str, position: int, record: int, where: str, raw: bytes
    ) -> Event | Reject:
        period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        stamp = period.get("start") or meta.get("lastUpdated")
        timestamp = parse_iso(stamp) if isinstance(stamp, str) else None
        if timestamp is None:
            return self._reject(
                source, position, record,
                f"{where}{kind} has no valid period.start or meta.lastUpdated ({stamp!r}): expected an instant", raw,
            )  # fmt: skip
        return Event(timestamp=timestamp, fields=care_fields(resource, kind), original=resource, source=source,
                     record=record, position=position)  # fmt: skip


def _codings(concept: Any) -> list[dict[str, Any]]:
    """Codings of a CodeableConcept, or the Coding itself (R4 uses both in AuditEvent)."""
    if isinstance(concept, dict):
        if isinstance(concept.get("coding"), list):
            return [c for c in concept["coding"] if isinstance(c, dict)]
        if "code" in concept or "display" in concept:
            return [concept]
    return []


def _codes(concept: Any) -> list[str]:
    return [str(c["code"]) for c in _codings(concept) if c.get("code") is not None]


def _who(agent: dict[str, Any]) -> tuple[str | None, str | None]:
    who = agent.get("who") if isinstance(agent.get("who"), dict) else {}
    identifier = who.get("identifier") if isinstance(who.get("identifier"), dict) else {}
    user_id = identifier.get("value") or who.get("reference")
    name = agent.get("name") or who.get("display")
    return (str(user_id) if user_id else None), (str(name) if name else None)


def _is_human(agent: dict[str, Any]) -> bool:
    return "humanuser" in _codes(agent.get("type"))


def _network(fields: dict[str, Any], prefix: str, agent: dict[str, Any] | None) -> None:
    network = agent.get("network") if agent else None
    if not isinstance(network, dict) or not network.get("address"):
        return
    address = str(network["address"])
    fields[f"{prefix}.address"] = address
    if (ip := _ip_text(address)) is not None:
        fields[f"{prefix}.ip"] = ip
    elif str(network.get("type")) == "1":  # machine name
        fields[f"{prefix}.domain"] = address


@functools.lru_cache(maxsize=4096)
def _ip_text(address: str) -> str | None:
    """The address as an IP in its normal form, None when it is none; cached: the same workstations and servers
    recur in an audit trail, and ipaddress's parsing was a quarter of this format's time."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _action(resource: dict[str, Any]) -> str | None:
    for subtype in resource.get("subtype") or []:
        if not isinstance(subtype, dict):
            continue
        code = str(subtype.get("code") or "")
        if code in _RESTFUL or code.startswith("$"):
            return code
        if subtype.get("display"):
            return str(subtype["display"]).strip().lower().replace(" ", "-")
    action = resource.get("action")
    return _ACTIONS.get(action) if isinstance(action, str) else None


def _decode_query(query: Any) -> str | None:
    if not isinstance(query, str):
        return None
    try:
        text = base64.b64decode(query, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        text = query
    text = text.strip()
    return text if re.match(r"^(https?://|[A-Z][A-Za-z]+(\?|/|$))", text) else None


def _mask_url(url: str, patients: list[str]) -> tuple[str, list[str]]:
    """The URL with patient references replaced by [patient], and the patient ids found in it."""
    found = [m.group(1) for m in _PATIENT_REF.finditer(url)]
    masked = _PATIENT_REF.sub("Patient/[patient]", url)
    parts = urlsplit(masked)
    if parts.query:
        pairs = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.lower() in _PATIENT_PARAMS or (
                parts.path.rstrip("/").endswith("Patient") and key in ("_id", "identifier")
            ):
                found.append(value.removeprefix("Patient/"))
                value = "[patient]"
            pairs.append(f"{key}={value}")
        masked = masked.split("?", 1)[0] + "?" + "&".join(pairs)
    for patient in patients:
        if patient and patient in masked:
            masked = masked.replace(patient, "[patient]")
    return masked, [f for f in found if f and f != "[patient]"]


def audit_fields(resource: dict[str, Any]) -> dict[str, Any]:
    """ECS (+ fhir.*, patient.*) fields of an AuditEvent; see the module docstring."""
    fields: dict[str, Any] = {"event.kind": "event", "event.module": "fhir", "observer.type": "fhir"}
    type_codes = _codings(resource.get("type"))
    if type_codes:
        fields["fhir.type.code"] = str(type_codes[0].get("code", ""))
        if type_codes[0].get("display"):
            fields["fhir.type.display"] = str(type_codes[0]["display"])
        if type_codes[0].get("code") == "110114":
            fields["event.category"] = ["authentication"]
    subtypes = [str(s.get("code")) for s in resource.get("subtype") or [] if isinstance(s, dict) and s.get("code")]
    if subtypes:
        fields["fhir.subtype"] = subtypes
    if isinstance(resource.get("action"), str):
        fields["fhir.action"] = resource["action"]
    if action := _action(resource):
        fields["event.action"] = action
    outcome = resource.get("outcome")
    if isinstance(outcome, str):
        fields["fhir.outcome"] = outcome
        if outcome in _OUTCOMES:
            fields["event.outcome"] = _OUTCOMES[outcome]
    if resource.get("id"):
        fields["event.id"] = str(resource["id"])

    agents = [a for a in resource.get("agent") or [] if isinstance(a, dict)]
    requestor = (
        next((a for a in agents if a.get("requestor") is True), None)
        or next((a for a in agents if _is_human(a)), None)
        or next((a for a in agents if a.get("who")), None)
    )
    if requestor is not None:
        user_id, user_name = _who(requestor)
        if user_id:
            fields["user.id"] = user_id
        if user_name:
            fields["user.name"] = user_name
        roles = [r.get("text") or (_codes(r) or [None])[0] for r in requestor.get("role") or [] if isinstance(r, dict)]
        if roles := [str(r) for r in roles if r]:
            fields["user.roles"] = roles
    source_agent = next((a for a in agents if _SOURCE_ROLE in _codes(a.get("type"))), None)
    destination_agent = next((a for a in agents if _DESTINATION_ROLE in _codes(a.get("type"))), None)
    _network(fields, "source", requestor if requestor and requestor.get("network") else source_agent)
    if destination_agent is not None and destination_agent is not requestor:
        _network(fields, "destination", destination_agent)

    purposes = [c for concept in resource.get("purposeOfEvent") or [] for c in _codes(concept)]
    for agent in agents:
        purposes += [c for concept in agent.get("purposeOfUse") or [] for c in _codes(concept)]
    if purposes:
        fields["fhir.purpose_of_use"] = sorted(set(purposes))
        if _BREAK_THE_GLASS & set(purposes):
            fields["fhir.break_the_glass"] = True

    src = resource.get("source") if isinstance(resource.get("source"), dict) else {}
    observer = src.get("observer") if isinstance(src.get("observer"), dict) else {}
    observer_identifier = observer.get("identifier") if isinstance(observer.get("identifier"), dict) else {}
    if name := observer.get("display") or observer_identifier.get("value") or observer.get("reference"):
        fields["observer.name"] = str(name)
    if src.get("site"):
        fields["fhir.source.site"] = str(src["site"])

    _entities(resource, fields)
    summary = f"FHIR AuditEvent {fields.get('fhir.type.display', fields.get('fhir.type.code', ''))}".rstrip()
    if "event.action" in fields:
        summary += f" {fields['event.action']}"
    if "user.id" in fields:
        summary += f" by {fields['user.id']}"
    if "event.outcome" in fields:
        summary += f": {fields['event.outcome']}"
    fields["message"] = summary
    return fields


def care_fields(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    """Fields of an Encounter or CareTeam; see the module docstring. Who treats whom stays in `original`."""
    fields: dict[str, Any] = {"event.kind": "event", "event.module": "fhir", "observer.type": "fhir",
                              "fhir.resource_type": kind, "event.action": _CARE[kind]}  # fmt: skip
    if resource.get("id"):
        fields["event.id"] = str(resource["id"])
    if isinstance(resource.get("status"), str):
        fields["fhir.status"] = resource["status"]
    participants = resource.get("participant")
    fields["fhir.participants"] = len(participants) if isinstance(participants, list) else 0
    subject = resource.get("subject") if isinstance(resource.get("subject"), dict) else {}
    reference = str(subject.get("reference") or "")
    if match := _PATIENT_REFERENCE.match(reference):
        fields["patient.id"] = match.group(1)
        fields["patient.reference"] = reference
    status = f" ({fields['fhir.status']})" if "fhir.status" in fields else ""
    # no resource id: it may be made of the patient's
    fields["message"] = f"FHIR {kind}{status}, {counted(fields['fhir.participants'], 'participant')}"
    return fields


def _entities(resource: dict[str, Any], fields: dict[str, Any]) -> None:
    identifiers: list[str] = []
    references: list[str] = []
    others: list[str] = []
    url: str | None = None
    for entity in resource.get("entity") or []:
        if not isinstance(entity, dict):
            continue
        what = entity.get("what") if isinstance(entity.get("what"), dict) else {}
        reference = str(what.get("reference") or "")
        identifier = what.get("identifier") if isinstance(what.get("identifier"), dict) else {}
        is_patient_role = "1" in _codes(entity.get("type")) and "1" in _codes(entity.get("role"))
        if match := _PATIENT_REFERENCE.match(reference):
            identifiers.append(match.group(1))
            references.append(reference)
            if entity.get("name"):
                fields.setdefault("patient.name", str(entity["name"]))
        elif is_patient_role and (identifier.get("value") or reference):
            identifiers.append(str(identifier.get("value") or reference))
            if entity.get("name"):
                fields.setdefault("patient.name", str(entity["name"]))
        elif reference and not reference.startswith("#"):
            others.append(reference)
        if url is None:
            url = _decode_query(entity.get("query"))
            if url is None and reference.startswith(("http://", "https://")):
                url = reference
    if url:
        masked, found = _mask_url(url, identifiers)
        identifiers += [f for f in found if f not in identifiers]
        fields["url.original"] = masked
    if identifiers:
        fields["patient.id"] = identifiers[0]
        fields["patient.identifiers"] = list(dict.fromkeys(identifiers))
    if references:
        fields["patient.reference"] = references[0]
    if others:
        fields["fhir.entity.references"] = others


FORMAT = FhirFormat()
