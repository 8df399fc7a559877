"""Care relationships: who may be expected to read a patient's record, and when, from the feeds hospitals have.

- HL7 v2 ADT: PV1-3 assigned location (point of care = ward), PV1-7 attending, PV1-8 referring and PV1-17
  admitting clinician (XCN, the id in component 1). A01 admit and A04 register open a stay, A02 transfer
  closes it and opens one on the new ward, A03 discharge closes it, A08 updates the open stay (or opens
  one: an update for a patient we never saw admitted means they are in the house), A11/A12/A13 cancel.
- FHIR Encounter (participant.individual, location, period) and CareTeam (participant.member, subject,
  period): explicit relationships, each with its own period.

A stay or relationship is valid from `lead` before its start (ED work-up precedes the A01) until `grace`
after its end (letters, results and coding follow a discharge). Staff on the stay's ward (per the
directory) see its patients. Staff with a registration role see patients around their ADT events.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from healthswarm.detect.privacy.directory import Directory, StaffMember, fold

_DTM = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")
_FHIR_REF = re.compile(r"^(?:.*/)?(Patient|Practitioner|PractitionerRole|Location)/([^/]+)")
_OPENING, _CLOSING = {"A01", "A04", "A08", "A13"}, {"A03"}


def hl7_time(text: str) -> datetime | None:
    """HL7 DTM (to the day at least) in UTC; a time without offset is taken as UTC, as the HL7 parser does."""
    match = _DTM.match(text.strip()) if text else None
    if not match:
        return None
    y, mo, d, h, mi, s, zone = match.groups()
    tz = UTC
    if zone:
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        tz = timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))
    try:
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


def fhir_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Stay:
    """A patient on a ward, with the clinicians PV1 names for the visit."""

    ward: str
    start: datetime
    end: datetime | None = None
    clinicians: dict[str, str] = field(default_factory=dict)  # staff id → attending/referring/admitting
    source: str = ""


@dataclass(frozen=True)
class Link:
    """An explicit relationship: a FHIR Encounter participant or CareTeam member."""

    staff: str
    start: datetime | None
    end: datetime | None
    kind: str  # "Encounter participant", "CareTeam member"


@dataclass(frozen=True)
class Explanation:
    kind: str  # attending, referring, admitting, ward, encounter, careteam, registration
    text: str


@dataclass(frozen=True)
class Adt:
    """What the care relationships need of one ADT message, from the parser's fields or from its text."""

    message_type: str  # MSH-9.1
    trigger: str  # MSH-9.2, else EVN-1
    facility: str  # MSH-4
    control_id: str  # MSH-10
    patient: str  # PID-3 (first identifier)
    family: str
    given: str
    when: datetime  # EVN-6, else the message time
    visit: bool  # a PV1 segment was there
    ward: str  # PV1-3.1
    clinicians: dict[str, str]  # staff id → admitting / referring / attending (PV1-17, -8, -7)
    admitted: datetime | None = None  # PV1-44
    discharged: datetime | None = None  # PV1-45


# the parser's PV1 fields (ingest/formats/hl7v2.py): any of them means the message had a visit segment
_VISIT_FIELDS = ("hl7.patient_class", "hl7.location", "hl7.hospital_service", "hl7.attending_doctor",
                 "hl7.referring_doctor", "hl7.admitting_doctor", "hl7.admit_time", "hl7.discharge_time")


def _hl7_fields(text: str) -> dict[str, list[str]]:
    """First occurrence of each segment, split into fields (MSH shifted so MSH-n is index n)."""
    out: dict[str, list[str]] = {}
    for segment in re.split(r"\r\n|\r|\n", text):
        if len(segment) < 4 or segment[:3] in out:
            continue
        sep = segment[3] if segment.startswith("MSH") else out.get("MSH", ["", "|"])[1]
        parts = segment.split(sep)
        out[segment[:3]] = ["MSH", sep, *parts[1:]] if segment.startswith("MSH") else parts
    return out


def _get(fields: list[str] | None, index: int) -> str:
    return fields[index] if fields and len(fields) > index else ""


def _component(value: str, index: int) -> str:
    parts = value.split("~")[0].split("^")
    return parts[index].split("&")[0].strip() if len(parts) > index else ""


class CareRelationships:
    """(staff, patient, time) → the relationship that explains an access, or None; built from ADT and FHIR."""

    def __init__(self, directory: Directory, lead: timedelta = timedelta(hours=4),
                 grace: timedelta = timedelta(hours=72), registration_window: timedelta = timedelta(hours=2)) -> None:
        self.directory = directory
        self.lead, self.grace, self.registration_window = lead, grace, registration_window
        self.stays: dict[str, list[Stay]] = {}
        self.links: dict[tuple[str, str], list[Link]] = {}
        self.adt_times: dict[str, list[datetime]] = {}
        self.patients: set[str] = set()  # every patient a feed named, pruned or not: see `known`
        self.names: dict[str, tuple[str, str]] = {}  # patient → (family, given)
        self.surnames: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    # --- feeding -----------------------------------------------------------------------------------------------
    def set_name(self, patient: str, family: str, given: str = "") -> None:
        if not family:
            return
        old = self.names.get(patient)
        if old and fold(old[0]) == fold(family):
            return
        if old:
            self.surnames[fold(old[0])] -= 1
        self.names[patient] = (family, given)
        self.surnames[fold(family)] += 1

    def add_hl7(self, text: str, fallback_time: datetime, patient_id: str = "", source: str = "") -> bool:
        """One ADT message as text (a message not read by the HL7 parser). False when it carries no stay."""
        seg = _hl7_fields(text)
        msh, pid, pv1 = seg.get("MSH"), seg.get("PID"), seg.get("PV1")
        clinicians: dict[str, str] = {}
        for index, kind in ((17, "admitting"), (8, "referring"), (7, "attending")):
            for rep in _get(pv1, index).split("~"):
                if ident := _component(rep, 0):
                    clinicians[ident] = kind
        return self.add_adt(Adt(
            message_type=_component(_get(msh, 9), 0),
            trigger=_component(_get(msh, 9), 1) or _component(_get(seg.get("EVN"), 1), 0),
            facility=_component(_get(msh, 4), 0), control_id=_get(msh, 10),
            patient=patient_id or _component(_get(pid, 3), 0),
            family=_component(_get(pid, 5), 0), given=_component(_get(pid, 5), 1),
            when=hl7_time(_component(_get(seg.get("EVN"), 6), 0)) or fallback_time,
            visit=pv1 is not None, ward=_component(_get(pv1, 3), 0), clinicians=clinicians,
            admitted=hl7_time(_component(_get(pv1, 44), 0)), discharged=hl7_time(_component(_get(pv1, 45), 0))))

    def add_hl7_event(self, fields: dict[str, Any], timestamp: datetime) -> bool:
        """One ADT message as the HL7 parser gave it (`hl7.*` MSH/EVN/PV1 fields, `patient.*`): the message text
        is not read again. False when it carries no stay."""
        def text(name: str) -> str:
            value = fields.get(name)
            return value.strip() if isinstance(value, str) else ""

        def when(name: str) -> datetime | None:
            try:
                return datetime.fromisoformat(text(name)) if text(name) else None
            except ValueError:
                return None

        clinicians: dict[str, str] = {}
        for role, kind in (("admitting_doctor", "admitting"), ("referring_doctor", "referring"),
                           ("attending_doctor", "attending")):
            ids = fields.get(f"hl7.{role}.ids") or [text(f"hl7.{role}.id")]
            clinicians.update({str(i): kind for i in ids if i})
        family, _, given = text("patient.name").partition(", ")
        return self.add_adt(Adt(
            message_type=text("hl7.message_type").split("^")[0], trigger=text("hl7.trigger_event"),
            facility=text("hl7.sending_facility"), control_id=text("hl7.control_id"), patient=text("patient.id"),
            family=family, given=given.split(" ")[0], when=when("hl7.event_occurred") or timestamp,
            visit=any(k.startswith(_VISIT_FIELDS) for k in fields), ward=text("hl7.location.ward"),
            clinicians=clinicians, admitted=when("hl7.admit_time"), discharged=when("hl7.discharge_time")))

    def add_adt(self, adt: Adt) -> bool:
        """One ADT message: the stay (ward, clinicians, from … to) it opens, moves, updates or closes."""
        if adt.message_type != "ADT" or not adt.trigger:
            self.skipped["not ADT"] += 1
            return False
        if self.directory.facilities and adt.facility not in self.directory.facilities:
            self.skipped["untrusted sending facility"] += 1
            return False
        patient, trigger, when, ward, clinicians = adt.patient, adt.trigger, adt.when, adt.ward, adt.clinicians
        if not patient:
            self.skipped["no PID-3"] += 1
            return False
        self.set_name(patient, adt.family, adt.given)
        self.patients.add(patient)
        self.adt_times.setdefault(patient, []).append(when)
        if not adt.visit:
            self.skipped["no PV1"] += 1
            return False
        stays = self.stays.setdefault(patient, [])
        current = stays[-1] if stays and stays[-1].end is None else None
        label = f"HL7 ADT^{trigger} {adt.control_id}".strip()
        if trigger in ("A01", "A04"):
            if current is not None:
                current.end = when
            start = adt.admitted or when
            stays.append(Stay(ward, min(start, when), None, clinicians, label))
        elif trigger == "A02" or (trigger == "A08" and current is not None and ward and ward != current.ward):
            if current is not None:
                current.end = when
            stays.append(Stay(ward or (current.ward if current else ""), when, None, clinicians, label))
        elif trigger == "A08":
            if current is None:
                stays.append(Stay(ward, when, None, clinicians, label))
            else:
                current.clinicians.update(clinicians)
        elif trigger in _CLOSING:
            end = adt.discharged or when
            if current is None:
                stays.append(Stay(ward, end, end, clinicians, label))
            else:
                current.end = end
        elif trigger == "A11" and current is not None:  # cancel admit
            stays.pop()
        elif trigger == "A12" and current is not None and len(stays) > 1:  # cancel transfer: back to the old ward
            stays.pop()
            stays[-1].end = None
        elif trigger == "A13" and stays and current is None:  # cancel discharge
            stays[-1].end = None
        else:
            self.skipped[f"ADT^{trigger} carries no stay change"] += 1
            return False
        return True

    def add_fhir(self, resource: Any) -> bool:
        """A FHIR Encounter, CareTeam or Patient (for names). False when it is none or lacks what is needed."""
        if not isinstance(resource, dict):
            self.skipped["not a FHIR resource"] += 1
            return False
        kind = resource.get("resourceType")
        if kind == "Patient":
            return self._fhir_patient(resource)
        if kind not in ("Encounter", "CareTeam"):
            self.skipped[f"FHIR {kind}"] += 1
            return False
        subject = _ref_id(resource.get("subject"), "Patient")
        if not subject:
            self.skipped[f"FHIR {kind} without a Patient subject"] += 1
            return False
        period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
        start, end = fhir_time(period.get("start")), fhir_time(period.get("end"))
        members = []
        for participant in resource.get("participant") or []:
            if not isinstance(participant, dict):
                continue
            who = participant.get("individual" if kind == "Encounter" else "member")
            ppd = participant.get("period") if isinstance(participant.get("period"), dict) else {}
            staff = _staff_key(who, self.directory)
            if staff:
                members.append(Link(staff, fhir_time(ppd.get("start")) or start, fhir_time(ppd.get("end")) or end,
                                    "Encounter participant" if kind == "Encounter" else "CareTeam member"))
        for link in members:
            self.links.setdefault((link.staff, subject), []).append(link)
            self.patients.add(subject)
        if kind == "Encounter" and start is not None:
            for loc in resource.get("location") or []:
                ward = _ref_id(loc.get("location") if isinstance(loc, dict) else None, "Location")
                if ward:
                    lp = loc.get("period") if isinstance(loc.get("period"), dict) else {}
                    self.stays.setdefault(subject, []).append(
                        Stay(ward, fhir_time(lp.get("start")) or start, fhir_time(lp.get("end")) or end, {},
                             f"FHIR Encounter {resource.get('id', '')}".strip()))
                    self.patients.add(subject)
        return bool(members) or kind == "Encounter"

    def _fhir_patient(self, resource: dict[str, Any]) -> bool:
        names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
        pid = str(resource.get("id") or "")
        if not pid or not names:
            self.skipped["FHIR Patient without id or name"] += 1
            return False
        given = names[0].get("given") or [""]
        self.set_name(pid, str(names[0].get("family") or ""), str(given[0]) if isinstance(given, list) else "")
        return True

    # --- asking ------------------------------------------------------------------------------------------------
    def _valid(self, start: datetime | None, end: datetime | None, at: datetime) -> bool:
        return (start is None or at >= start - self.lead) and (end is None or at <= end + self.grace)

    def known(self, patient: str) -> bool:
        """Whether any feed ever named the patient (a read of one no feed knows may be a gap in the feeds)."""
        return patient in self.patients

    def prune(self, before: datetime) -> int:
        """Forget what can explain no read at `before` or later: stays and links that ended more than `grace`
        before it, ADT times more than `registration_window` before it. Without this every ADT message and
        Encounter of the agent's life stayed in memory, and a patient's stays were walked at each of their reads.
        The patients stay known. Returns how many were forgotten."""
        cut = before - self.grace

        def ended(item: Stay | Link) -> bool:
            return item.end is None or item.end >= cut

        return (_keep(self.stays, ended) + _keep(self.links, ended)
                + _keep(self.adt_times, lambda when: when >= before - self.registration_window))

    def explain(self, member: StaffMember, patient: str, at: datetime) -> Explanation | None:
        for stay in reversed(self.stays.get(patient, [])):
            if not self._valid(stay.start, stay.end, at):
                continue
            role = stay.clinicians.get(member.id)
            if role:
                return Explanation(role, f"{role} clinician of the visit ({stay.source})")
            if stay.ward and stay.ward in member.wards:
                return Explanation("ward", f"patient on ward {stay.ward}, where the user works ({stay.source})")
        for link in self.links.get((member.id, patient), []):
            if self._valid(link.start, link.end, at):
                return Explanation("careteam" if link.kind.startswith("CareTeam") else "encounter", link.kind)
        if member.role in self.directory.registration_roles:
            for when in self.adt_times.get(patient, []):
                if abs(when - at) <= self.registration_window:
                    return Explanation("registration", "admission/transfer/discharge paperwork within "
                                       f"{self.registration_window.total_seconds() / 3600:g} h of an ADT event")
        return None

    def why_not(self, member: StaffMember, patient: str, at: datetime) -> str:
        """The relationships that were checked and failed, for the alert text (no patient data beyond the ward)."""
        stays = self.stays.get(patient, [])
        if not stays and patient not in self.adt_times:
            return "patient not in the ADT/Encounter feed, no CareTeam link"
        valid = [s for s in stays if self._valid(s.start, s.end, at)]
        if not valid:
            last = max((s.end for s in stays if s.end), default=None)
            where = f"discharged {last:%Y-%m-%d %H:%M}, beyond the {self.grace.total_seconds() / 3600:g} h grace" \
                if last else "no stay at that time"
            return f"no current stay ({where}); not attending/referring/admitting"
        wards = ", ".join(sorted({s.ward for s in valid if s.ward})) or "unknown ward"
        return f"patient on {wards}, not a ward the user works on; not attending/referring/admitting, no CareTeam link"


def _keep(table: dict[Any, list[Any]], wanted: Callable[[Any], bool]) -> int:
    """Keep the wanted items of each list in `table`, drop the keys left empty; how many items went."""
    dropped = 0
    for key in list(table):
        kept = [item for item in table[key] if wanted(item)]
        dropped += len(table[key]) - len(kept)
        if kept:
            table[key] = kept
        else:
            del table[key]
    return dropped


def _ref_id(ref: Any, kind: str) -> str:
    if not isinstance(ref, dict):
        return ""
    match = _FHIR_REF.match(str(ref.get("reference") or ""))
    if match and match.group(1) == kind:
        return match.group(2)
    identifier = ref.get("identifier") if isinstance(ref.get("identifier"), dict) else {}
    return str(identifier.get("value") or "") if kind != "Patient" or identifier else ""


def _staff_key(ref: Any, directory: Directory) -> str:
    """Directory id of a FHIR participant: its identifier value, else the id of a Practitioner reference."""
    if not isinstance(ref, dict):
        return ""
    identifier = ref.get("identifier") if isinstance(ref.get("identifier"), dict) else {}
    candidates = [str(identifier.get("value") or "")]
    if match := _FHIR_REF.match(str(ref.get("reference") or "")):
        candidates.append(match.group(2))
    for key in candidates:
        member = directory.lookup(key)
        if member is not None:
            return member.id
    return ""
