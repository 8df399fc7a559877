"""Keeping cases: insert, read, change under optimistic locking, each change appended to the audit chain
in the same transaction (a change whose audit entry cannot be written is not made)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import MAX_ALERT_EVENTS
from healthswarm.model.words import counted
from healthswarm.respond.audit import GENESIS, AuditEntry, chain
from healthswarm.respond.cases import Case, Evidence, Observable, check_not_future, utc
from healthswarm.respond.errors import ConflictError, NotFoundError
from healthswarm.store.respond_tables import respond_audit, respond_cases
from healthswarm.store.tables import alerts, assets, dependencies, events, incidents

#: Entity kinds of an incident that become case observables, and their indicator type.
_OBSERVABLE_KINDS = {"ip": "ipv4", "host": "domain", "domain": "domain", "url": "url", "email": "email",
                     "sha256": "sha256", "md5": "md5", "file": "filename", "process": "filename"}
MAX_EVENT_EVIDENCE = 200
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_case_id() -> str:
    return f"CASE-{uuid.uuid4().hex[:10]}"


def _row(case: Case, now: datetime) -> dict[str, Any]:
    return {"title": case.title, "phase": str(case.phase), "severity": case.severity,
            "incident_id": case.incident_id, "version": case.version, "opened": case.opened,
            "aware_at": case.aware_at, "updated": now, "document": case.as_dict()}


def _append_audit(conn: Connection, case_id: str, actor: str, action: str, data: dict[str, Any],
                  now: datetime) -> AuditEntry:
    last = conn.execute(select(respond_audit.c.seq, respond_audit.c.hash).where(respond_audit.c.case_id == case_id)
                        .order_by(respond_audit.c.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    entry = chain(case_id, seq, now, actor, action, data, prev)
    conn.execute(insert(respond_audit).values(case_id=case_id, seq=seq, at=now, actor=actor, action=action,
                                              data=data, prev_hash=prev, hash=entry.hash))
    return entry


def create_case(conn: Connection, case: Case, actor: str, now: datetime | None = None) -> Case:
    now = utc(now or datetime.now(UTC), "now")
    case.opened, case.aware_at = utc(case.opened, "opened"), utc(case.aware_at, "aware_at")
    check_not_future(case.aware_at, now, "aware_at")
    if not case.title.strip():
        raise InputError(Problem(Location("case", field="title"), "empty title", "a short description"))
    case.version = 1
    conn.execute(insert(respond_cases).values(id=case.id, **_row(case, now)))
    _append_audit(conn, case.id, actor, "open", case.as_dict(), now)
    return case


def open_from_incident(conn: Connection, incident_id: str, actor: str, now: datetime | None = None,
                       aware_at: datetime | None = None) -> Case:
    """A case from a stored incident: its title, severity, assets, observables and events as evidence."""
    now = utc(now or datetime.now(UTC), "now")
    row = conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise InputError(Problem(Location("--incident"), f"no incident {incident_id!r}",
                                 "an id from `healthswarm hunt` / the incidents list"))
    existing = conn.execute(select(respond_cases.c.id).where(respond_cases.c.incident_id == incident_id)).first()
    if existing is not None:
        raise InputError(Problem(Location("--incident"), f"incident {incident_id} already has case {existing.id}"))
    return create_case(conn, case_from_incident(conn, row.document, now, aware_at), actor, now)


def case_from_incident(conn: Connection, doc: dict[str, Any], now: datetime, aware_at: datetime | None = None) -> Case:
    """The case `open_from_incident` opens for the stored incident `doc`, not stored yet (it only reads)."""
    incident_id = doc["id"]
    observables = incident_observables(doc)
    patients = {v for k, _, v in (e.partition(":") for e in doc.get("entities", [])) if k == "patient"}
    users = sorted(v for k, _, v in (e.partition(":") for e in doc.get("entities", [])) if k == "user")
    accounts = [u for u in users if ACCOUNT_NAME.match(u.split("\\")[-1].split("@")[0])]
    people = [u for u in users if u not in accounts]
    case = Case(
        id=new_case_id(), title=doc["title"], opened=now, aware_at=utc(aware_at or now, "aware_at"),
        severity=int(doc.get("severity", 2)), incident_id=incident_id,
        description=f"Opened from incident {incident_id} ({doc.get('alerts', 0)} alerts, stage {doc.get('stage')}).",
        assets=list(doc.get("assets", [])), organisations=list(doc.get("organisations", [])),
        techniques=list(doc.get("techniques", [])), accounts=accounts, patients=len(patients),
        observables=observables,
    )
    if people:
        case.description += " Named in the events (map to accounts): " + ", ".join(people) + "."
    documents = _alert_documents(conn, incident_id)
    touched = touched_patients(conn, documents)
    if touched.patients or not patients:
        case.patients, case.patients_basis = touched.patients, touched.basis
    else:  # alerts that name patients whose events are no longer stored
        case.patients_basis = "distinct patients named in the incident's alerts (their events are not stored)"
    case.controllers = touched.controllers or controllers_among(conn, case.organisations)
    case.evidence = _event_evidence(documents)
    return case


def incident_observables(doc: dict[str, Any]) -> list[Observable]:
    """The observables among a stored incident's entities (`ip:…`, `domain:…`, …), once each. A host named by
    its address (`host:198.51.100.77`) is an address, not a domain: a domain action (sinkhole) would refuse it."""
    observables: dict[tuple[str, str], Observable] = {}
    for entity in doc.get("entities", []):
        kind, _, value = entity.partition(":")
        if kind in _OBSERVABLE_KINDS and value:
            type_ = "ipv6" if kind == "ip" and ":" in value else _OBSERVABLE_KINDS[kind]
            if kind in ("ip", "host", "domain"):
                with contextlib.suppress(ValueError):
                    type_ = f"ipv{ipaddress.ip_address(value).version}"
            observables.setdefault((type_, value), Observable(type_, value))
    return list(observables.values())


@dataclass(frozen=True)
class Touched:
    patients: int  # distinct patient ids
    basis: str  # what they were counted from
    controllers: list[str]  # the organisations whose patients they are, most patients first


def _alert_documents(conn: Connection, incident_id: str) -> list[dict[str, Any]]:
    """The stored documents of the incident's alerts, newest first (read once, for the patients and the
    evidence, and not decoded into alerts: those were a tenth of the agent's time per case opened by policy)."""
    return [doc for (doc,) in conn.execute(select(alerts.c.document).where(alerts.c.incident_id == incident_id)
                                           .order_by(alerts.c.timestamp.desc(), alerts.c.id))]


def touched_patients(conn: Connection, documents: list[dict[str, Any]]) -> Touched:
    """The patients the alerts (`documents`, an incident's) touched: distinct `patient.id` in the stored events
    they rest on, each assigned to an organisation by its identifier's assigning authority (an HL7 facility the
    inventory declares under `hl7:`), else by the organisation the event was logged for; and the patients an
    alert names in `details["patients"]` (a privacy alert names every record of the session, its events only the
    last MAX_ALERT_EVENTS), assigned to the organisation of that alert's events."""
    key_alerts: dict[str, list[int]] = {}  # event key → the alerts (their index) resting on it
    for n, doc in enumerate(documents):
        for e in doc.get("events", ()):
            if isinstance(e, dict) and e.get("key"):
                key_alerts.setdefault(e["key"], []).append(n)
    facility_org: dict[str, str] = {}  # assigning authority (lower case) → the organisation whose facility it is
    owner: dict[str, str] = {}
    alert_orgs: list[Counter[str]] = [Counter() for _ in documents]  # organisations of each alert's events
    ordered = sorted(key_alerts)
    # the two fields only, not each event's whole fields document (decoding those was most of the time)
    patient_of, identifiers_of = events.c.fields["patient.id"], events.c.fields["patient.identifiers"]
    for start in range(0, len(ordered), 500):
        query = (select(events.c.key, patient_of, identifiers_of, events.c.organization_id)
                 .where(events.c.key.in_(ordered[start:start + 500])))
        for key, patient, identifiers, organisation in conn.execute(query):
            for n in key_alerts[key]:
                alert_orgs[n][organisation or ""] += 1
            if not patient:
                continue
            authority = next((str(i.get("authority") or "") for i in identifiers or ()
                              if isinstance(i, dict) and i.get("id") == patient), "")
            if (facility := authority.lower()) and facility not in facility_org:
                facility_org[facility] = _facility_organisation(conn, facility)
            owner.setdefault(str(patient), facility_org.get(facility) or organisation or "")
    named = 0
    for doc, orgs in zip(documents, alert_orgs, strict=True):
        patients = (doc.get("details") or {}).get("patients")
        if isinstance(patients, list) and patients:
            named += 1
            organisation = next((o for o, _ in orgs.most_common() if o), "")
            for patient in patients:
                owner.setdefault(str(patient), organisation)
    basis = (f"distinct patient ids in the {counted(len(key_alerts), 'stored event')} of the incident's "
             f"{counted(len(documents), 'alert')}{f' and named by {named} of them' if named else ''} (an "
             f"alert keeps at most its last {MAX_ALERT_EVENTS} events, so the true number may be higher)")
    return Touched(len(owner), basis, [o for o, _ in Counter(o for o in owner.values() if o).most_common()])


def _facility_organisation(conn: Connection, facility: str) -> str:
    """The organisation of the asset that declares `facility` (lower case) as its HL7 facility ('' for none):
    one targeted query, not the whole inventory (the agent opens a case per incident it covers)."""
    declared = func.lower(assets.c.hl7["facility"].as_string())
    row = conn.execute(select(assets.c.organisation).where(declared == facility).order_by(assets.c.id).limit(1)).first()
    return row.organisation if row is not None else ""


def controllers_among(conn: Connection, organisations: list[str]) -> list[str]:
    """Without patients to go by: the organisations involved, less those that only serve another one of them
    (a PACS or laboratory provider an organisation's systems depend on is its processor, not a controller).
    Only the dependencies between the involved organisations' assets are read (the agent opens a case per
    incident it covers; the whole inventory was most of that)."""
    involved = set(organisations)
    if len(involved) < 2:
        return list(organisations)
    client, provider = assets.alias("client"), assets.alias("provider")
    serves = set(conn.execute(
        select(provider.c.organisation, client.c.organisation)
        .join_from(dependencies, client, dependencies.c.source == client.c.id)
        .join(provider, dependencies.c.target == provider.c.id)
        .where(client.c.organisation.in_(involved), provider.c.organisation.in_(involved),
               client.c.organisation != provider.c.organisation).distinct()))
    controllers = [o for o in organisations if not any((o, other) in serves for other in involved - {o})]
    return controllers or list(organisations)


def _event_evidence(documents: list[dict[str, Any]]) -> list[Evidence]:
    """The events the alerts (`documents`, newest first) rest on, once each, at most MAX_EVENT_EVIDENCE."""
    seen: dict[str, Evidence] = {}
    for doc in documents:
        for event in doc.get("events", ()) or ():
            if not isinstance(event, dict):
                continue
            source = str(event.get("source", ""))
            key = str(event.get("key", "")) or f"{source}#{int(event.get('record', 0))}"
            if key not in seen and len(seen) < MAX_EVENT_EVIDENCE:
                seen[key] = Evidence("event", key, description=f"{doc.get('title', '')} ({source})")
    return list(seen.values())


def load_case(conn: Connection, case_id: str) -> Case:
    row = conn.execute(select(respond_cases.c.document, respond_cases.c.version)
                       .where(respond_cases.c.id == case_id)).first()
    if row is None:
        raise NotFoundError(f"no case {case_id!r}")  # the CLI adds where to look, with the user's --workspace
    return Case.from_dict(row.document, version=row.version)


def list_cases(conn: Connection, phase: str | None = None) -> list[Case]:
    query = select(respond_cases.c.document, respond_cases.c.version).order_by(
        respond_cases.c.severity.desc(), respond_cases.c.opened.desc())
    if phase is not None:
        query = query.where(respond_cases.c.phase == phase)
    return [Case.from_dict(r.document, version=r.version) for r in conn.execute(query)]


def change_case(conn: Connection, case_id: str, actor: str, action: str, mutate: Callable[[Case], dict[str, Any]],
                expected_version: int | None = None, now: datetime | None = None,
                case: Case | None = None) -> Case:
    """Apply `mutate` (which returns what the audit entry records) and store it with version + 1.

    The version checked is `expected_version` when given (the version the analyst looked at), else the
    version of `case` when given (read earlier), else the one read now. A mismatch raises ConflictError.
    """
    now = utc(now or datetime.now(UTC), "now")
    current = load_case(conn, case_id)
    base = expected_version if expected_version is not None else (case.version if case else current.version)
    if base != current.version:
        raise ConflictError(case_id, base, current.version)
    data = mutate(current)
    current.version = base + 1
    done = conn.execute(update(respond_cases).where(respond_cases.c.id == case_id)
                        .where(respond_cases.c.version == base).values(**_row(current, now))).rowcount
    if done != 1:  # someone wrote between our read and our write
        raise ConflictError(case_id, base, None)
    _append_audit(conn, case_id, actor, action, {**data, "version": current.version}, now)
    return current


def load_audit(conn: Connection, case_id: str) -> list[AuditEntry]:
    rows = conn.execute(select(respond_audit).where(respond_audit.c.case_id == case_id)
                        .order_by(respond_audit.c.seq))
    return [AuditEntry(r.case_id, r.seq, r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC), r.actor, r.action,
                       r.data, r.prev_hash, r.hash) for r in rows]
