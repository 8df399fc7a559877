"""Synthetic hospital access logs with labelled snooping, written in the real formats.

One hospital (facility code `STA`), wards with nurses on fixed shifts (early 06–14, late 14–22, night
22–06), ward physicians (08–17), admission clerks (07–15, ward ADMIN) and consultants (09–17) who see
patients on other wards. Patients are admitted, transferred and discharged: HL7 v2.5.1 ADT A01/A02/A03/A08
messages laid out like the demo and HL7 samples (MSH/EVN/PID/PV1, XCN `id^family^given`). Consults are
recorded as FHIR CareTeam resources in the care feed 70 % of the time (the rest are legitimate reads no
feed explains, as in real hospitals). Reads are FHIR R4 AuditEvents shaped like the demo's
`ehr-audit.ndjson`; a few legitimate emergency reads declare break-the-glass.

Snooping patterns (ground truth, one label per AuditEvent id), each at `rates[pattern]` incidents per day:
- `curiosity`: 1–3 patients on another ward, read during the user's shift;
- `coworker`: the record of a colleague who is a patient (directory `patient_ids`);
- `family`: a patient with the user's surname, admitted to another ward;
- `vip`: a patient on the directory's VIP list, from another ward;
- `after-hours`: 10–20 records in a quarter of an hour, hours away from the user's shift;
- `bulk`: 30–50 extra records spread over the user's shift.
Seeded: the same config gives byte-identical output. The directory the generator writes declares no working
hours: the monitor must learn them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

PATTERNS = ("curiosity", "coworker", "family", "vip", "after-hours", "bulk")
FACILITY = "STA"
SURNAMES = (
    "Abel", "Albrecht", "Arnold", "Bauer", "Baumann", "Beck", "Berger", "Bergmann", "Brandt", "Braun", "Busch",
    "Dietrich", "Engel", "Frank", "Franke", "Friedrich", "Fuchs", "Graf", "Groß", "Günther", "Haas", "Hahn",
    "Hartmann", "Heinrich", "Herrmann", "Hoffmann", "Horn", "Huber", "Jäger", "Jung", "Kaiser", "Keller", "Klein",
    "Koch", "Köhler", "König", "Krause", "Krüger", "Kuhn", "Kühn", "Lang", "Lange", "Lehmann", "Lorenz", "Ludwig",
    "Maier", "Martin", "Mayer", "Meier", "Möller", "Moser", "Neumann", "Otto", "Peters", "Pohl", "Richter", "Roth",
    "Sauer", "Schäfer", "Scholz", "Schubert", "Schulte", "Schulz", "Schumacher", "Schuster", "Schwarz", "Seidel",
    "Simon", "Sommer", "Stein", "Thomas", "Vogel", "Vogt", "Voigt", "Walter", "Weiß", "Werner", "Winkler", "Winter",
    "Wolf", "Ziegler", "Zimmermann", "Okafor", "Kowalski", "Nowak", "Yilmaz", "Demir", "Rossi", "Ferrari", "Petrov",
    "Ivanova", "Novak", "Horvat", "Popescu", "Costa", "Silva", "Jansen", "Dubois",
)
GIVEN = (
    "Anna", "Lena", "Marie", "Sophie", "Laura", "Julia", "Sarah", "Lisa", "Katharina", "Nina", "Jana", "Eva", "Paula",
    "Clara", "Emma", "Leonie", "Karin", "Petra", "Jonas", "Lukas", "Felix", "Paul", "Leon", "Max", "Tim", "Jan",
    "David", "Simon", "Tobias", "Niklas", "Ben", "Elias", "Karl", "Peter", "Stefan", "Michael",
)
WARDS = ("ICU", "CARD", "SURG", "MED", "PED", "NEURO")
SHIFTS = {"early": (6, 14), "late": (14, 22), "night": (22, 30)}


@dataclass
class GeneratorConfig:
    seed: int = 0
    days: int = 7
    wards: int = 5
    nurses_per_shift: int = 2
    physicians_per_ward: int = 3
    clerks: int = 3
    consultants: int = 3
    admissions_per_ward_day: float = 2.5
    staff_patients: int = 6
    vip_patients: int = 3
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)
    rates: dict[str, float] = field(default_factory=lambda: {
        "curiosity": 1.0, "coworker": 0.4, "family": 0.4, "vip": 0.4, "after-hours": 0.3, "bulk": 0.2})
    btg_rate: float = 0.5  # legitimate emergency reads per day


@dataclass
class Staff:
    id: str
    login: str
    family: str
    given: str
    role: str
    ward: str
    shift: tuple[int, int]
    address: str
    patient_id: str = ""


@dataclass
class Patient:
    id: str
    family: str
    given: str
    stays: list[tuple[str, datetime, datetime, Staff]] = field(default_factory=list)  # ward, start, end, attending


@dataclass
class GeneratedLog:
    hl7: str
    audit: list[str]  # NDJSON lines, time order
    care: list[dict[str, Any]]
    directory: str  # YAML
    labels: list[dict[str, str]]  # id, line, pattern ("legit" or one of PATTERNS), user, patient

    def write(self, out: Path) -> dict[str, Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in ("adt.hl7", "audit.ndjson", "care.ndjson", "staff.yaml", "labels.csv")}
        paths["adt.hl7"].write_text(self.hl7, encoding="utf-8", newline="")
        paths["audit.ndjson"].write_text("".join(line + "\n" for line in self.audit), encoding="utf-8")
        paths["care.ndjson"].write_text("".join(json.dumps(r) + "\n" for r in self.care), encoding="utf-8")
        paths["staff.yaml"].write_text(self.directory, encoding="utf-8")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["id", "line", "pattern", "user", "patient"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.labels)
        paths["labels.csv"].write_text(buffer.getvalue(), encoding="utf-8")
        return paths


def _ts(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S")


def _xcn(s: Staff) -> str:
    return f"{s.id}^{s.family}^{s.given}^^^Dr." if s.role == "physician" else f"{s.id}^{s.family}^{s.given}"


class _World:
    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg, self.rng = cfg, random.Random(cfg.seed)
        self.end = cfg.start + timedelta(days=cfg.days)
        self.staff: list[Staff] = []
        self.patients: dict[str, Patient] = {}
        self.messages: list[tuple[datetime, str]] = []
        self.reads: list[tuple[datetime, Staff, str, bool, str]] = []  # at, user, patient, btg, label
        self.care: list[dict[str, Any]] = []
        self.vip: list[str] = []
        self._names: set[tuple[str, str]] = set()
        self._control = 100000

    # --- people ------------------------------------------------------------------------------------------------
    def _name(self, family: str | None = None) -> tuple[str, str]:
        for attempt in range(10_000):  # full names unique, so name matching never confuses two people
            given = self.rng.choice(GIVEN) + ("" if attempt < 50 else f"-{self.rng.choice(GIVEN)}")
            name = (family or self.rng.choice(SURNAMES), given)
            if name not in self._names:
                self._names.add(name)
                return name
        raise RuntimeError("name space exhausted")  # needs ~10^5 people of one surname; never reached

    def _add_staff(self, role: str, ward: str, shift: tuple[int, int]) -> Staff:
        family, given = self._name()
        n = len(self.staff)
        member = Staff(str(3000 + n), f"{given[0].lower()}.{family.lower()}{n}", family, given, role, ward, shift,
                       f"10.20.{n // 200}.{n % 200 + 10}")
        self.staff.append(member)
        return member

    def build_staff(self) -> None:
        cfg = self.cfg
        for ward in WARDS[: cfg.wards]:
            for shift in SHIFTS.values():
                for _ in range(cfg.nurses_per_shift + 1):  # one more than a shift needs: days off
                    self._add_staff("nurse", ward, shift)
            for _ in range(cfg.physicians_per_ward):
                self._add_staff("physician", ward, (8, 17))
        for _ in range(cfg.clerks):
            self._add_staff("clerk", "ADMIN", (7, 15))
        for _ in range(cfg.consultants):
            self._add_staff("consultant", "CONSULT", (9, 17))

    def new_patient(self, family: str | None = None) -> Patient:
        family, given = self._name(family)
        patient = Patient(f"sta-p{10000 + len(self.patients)}", family, given)
        self.patients[patient.id] = patient
        return patient

    # --- ADT ---------------------------------------------------------------------------------------------------
    def _adt(self, trigger: str, at: datetime, patient: Patient, ward: str, attending: Staff, admit: datetime,
             discharge: datetime | None = None) -> None:
        self._control += 1
        pv1 = [""] * 46
        pv1[0], pv1[1], pv1[2] = "PV1", "1", "I"
        pv1[3] = f"{ward}^{self.rng.randint(1, 20):02d}^{self.rng.choice('AB')}^{FACILITY}"
        pv1[7], pv1[8], pv1[17] = _xcn(attending), f"9{self.rng.randint(100, 999)}^Hausarzt^Praxis", _xcn(attending)
        pv1[10], pv1[18], pv1[19] = "MED", "IN", f"V{patient.id[5:]}{admit:%m%d}"
        pv1[44] = _ts(admit)
        if discharge is not None:
            pv1[45] = _ts(discharge)
        segments = [
            f"MSH|^~\\&|ORBIS|{FACILITY}|EPIC|{FACILITY}|{_ts(at)}+0000||ADT^{trigger}^ADT_A01|STA{self._control}|P|2.5.1",
            f"EVN|{trigger}|{_ts(at)}",
            f"PID|1||{patient.id}^^^{FACILITY}^MR||{patient.family}^{patient.given}||19{self.rng.randint(30, 99)}0"
            f"{self.rng.randint(1, 9)}1{self.rng.randint(0, 9)}|{self.rng.choice('FM')}|||"
            "Hauptstr. 5^^Aurelia^^10115^DE",
            "|".join(pv1),
        ]
        self.messages.append((at, "\r".join(segments) + "\r"))

    def admit(self, patient: Patient, at: datetime, ward: str | None = None) -> None:
        rng = self.rng
        wards = WARDS[: self.cfg.wards]
        ward = ward or rng.choice(wards)
        end = at + timedelta(hours=rng.uniform(20, 140))
        attending = rng.choice(self.ward_staff(ward, "physician"))
        self._adt("A01", at, patient, ward, attending, at)
        if rng.random() < 0.2 and end - at > timedelta(hours=48):  # transfer half way
            moved = at + (end - at) / 2
            other = rng.choice([w for w in wards if w != ward])
            patient.stays.append((ward, at, moved, attending))
            new_attending = rng.choice(self.ward_staff(other, "physician"))
            self._adt("A02", moved, patient, other, new_attending, at)
            ward, at, attending = other, moved, new_attending
        if rng.random() < 0.3:
            self._adt("A08", at + (end - at) / 3, patient, ward, attending, at)
        patient.stays.append((ward, at, end, attending))
        if end < self.end + timedelta(days=2):
            self._adt("A03", end, patient, ward, attending, patient.stays[0][1], end)

    def ward_staff(self, ward: str, role: str | None = None) -> list[Staff]:
        return [s for s in self.staff if s.ward == ward and (role is None or s.role == role)]

    def on_ward(self, ward: str, at: datetime) -> list[Patient]:
        return [p for p in self.patients.values() if any(w == ward and a <= at < b for w, a, b, _ in p.stays)]

    def build_patients(self) -> None:
        cfg, rng = self.cfg, self.rng
        for ward in WARDS[: cfg.wards]:  # the house is not empty on day one
            for _ in range(6):
                self.admit(self.new_patient(), cfg.start - timedelta(hours=rng.uniform(2, 60)), ward)
        hours = cfg.days * 24
        for _ in range(int(cfg.admissions_per_ward_day * cfg.wards * cfg.days)):
            self.admit(self.new_patient(), cfg.start + timedelta(hours=rng.uniform(0, hours)))
        for member in rng.sample([s for s in self.staff if s.role == "nurse"], cfg.staff_patients):
            patient = self.new_patient(member.family)
            self._names.discard((patient.family, patient.given))
            patient.given = member.given  # the staff member's own record: same person
            member.patient_id = patient.id
            self.admit(patient, cfg.start + timedelta(hours=rng.uniform(0, hours - 24)),
                       rng.choice([w for w in WARDS[: cfg.wards] if w != member.ward]))
        for _ in range(cfg.vip_patients):
            patient = self.new_patient()
            self.vip.append(patient.id)
            self.admit(patient, cfg.start + timedelta(hours=rng.uniform(0, hours - 24)))

    # --- legitimate reads --------------------------------------------------------------------------------------
    def shifts(self, member: Staff) -> list[tuple[datetime, datetime]]:
        out = []
        for day in range(self.cfg.days):
            if (day + int(member.id)) % 7 in (5, 6) and member.role == "nurse":
                continue  # two days off a week
            start = self.cfg.start + timedelta(days=day, hours=member.shift[0])
            end = self.cfg.start + timedelta(days=day, hours=member.shift[1])
            out.append((start, min(end, self.end)))
        return out

    def _in(self, start: datetime, end: datetime) -> datetime:
        return start + timedelta(seconds=self.rng.uniform(0, (end - start).total_seconds()))

    def legit(self) -> None:
        rng = self.rng
        for member in self.staff:
            for start, end in self.shifts(member):
                if member.role in ("nurse", "physician"):
                    for patient in self.on_ward(member.ward, start + (end - start) / 2):
                        for _ in range(rng.choice((1, 1, 2)) if member.role == "nurse" else 1):
                            self.reads.append((self._in(start, end), member, patient.id, False, "legit"))
                elif member.role == "consultant":
                    others = [p for w in WARDS[: self.cfg.wards] for p in self.on_ward(w, start + timedelta(hours=2))]
                    for patient in rng.sample(others, min(len(others), rng.randint(2, 5))):
                        at = self._in(start + timedelta(hours=1), end)
                        if rng.random() < 0.7:
                            self.care.append(self._careteam(patient, member, at - timedelta(hours=1)))
                        self.reads.append((at, member, patient.id, False, "legit"))
        clerks = [s for s in self.staff if s.role == "clerk"]
        for patient in self.patients.values():
            for _ward, admitted, _, _ in patient.stays[:1]:
                if 7 <= admitted.hour < 15 and self.cfg.start <= admitted < self.end:
                    self.reads.append((admitted + timedelta(minutes=rng.uniform(1, 40)), rng.choice(clerks),
                                       patient.id, False, "legit"))
        physicians = [s for s in self.staff if s.role == "physician"]
        for _ in range(int(self.cfg.btg_rate * self.cfg.days)):  # emergencies: a physician from another ward
            member = rng.choice(physicians)
            start, end = rng.choice(self.shifts(member))
            at = self._in(start, end)
            others = [p for w in WARDS[: self.cfg.wards] if w != member.ward for p in self.on_ward(w, at)]
            if others:
                self.reads.append((at, member, rng.choice(others).id, True, "legit"))

    def _careteam(self, patient: Patient, member: Staff, at: datetime) -> dict[str, Any]:
        return {"resourceType": "CareTeam", "id": f"ct-{len(self.care) + 1}", "status": "active",
                "subject": {"reference": f"Patient/{patient.id}"},
                "period": {"start": at.isoformat().replace("+00:00", "Z"),
                           "end": (at + timedelta(days=2)).isoformat().replace("+00:00", "Z")},
                "participant": [{"role": [{"text": "consultant"}],
                                 "member": {"reference": f"Practitioner/{member.id}", "display": member.login}}]}

    # --- snooping ----------------------------------------------------------------------------------------------
    def _strangers(self, member: Staff, at: datetime) -> list[Patient]:
        """Patients with no relationship to `member` at `at`: not on their ward, not theirs to attend."""
        return [p for p in self.patients.values()
                if p.stays and p.id not in self.vip and p.family != member.family
                and not any(w == member.ward or att is member for w, a, b, att in p.stays
                            if a - timedelta(hours=6) <= at <= b + timedelta(days=4))]

    def snoop(self) -> None:
        rng, cfg = self.rng, self.cfg
        people = [s for s in self.staff if s.role in ("nurse", "physician", "clerk") and self.shifts(s)]
        staff_patients = [s for s in self.staff if s.patient_id]
        for pattern in PATTERNS:
            for _ in range(round(cfg.rates.get(pattern, 0.0) * cfg.days)):
                member = rng.choice(people)
                start, end = rng.choice(self.shifts(member))
                at = self._in(start, end)
                if pattern == "curiosity":
                    pool = self._strangers(member, at)
                    for patient in rng.sample(pool, min(len(pool), rng.randint(1, 3))):
                        self.reads.append((at + timedelta(minutes=rng.uniform(0, 20)), member, patient.id, False,
                                           pattern))
                elif pattern == "coworker":
                    target = rng.choice([s for s in staff_patients if s is not member])
                    if member.ward != self.patients[target.patient_id].stays[0][0]:
                        self.reads.append((at, member, target.patient_id, False, pattern))
                elif pattern == "family":
                    relative = self.new_patient(member.family)
                    self.admit(relative, at - timedelta(hours=rng.uniform(2, 30)),
                               rng.choice([w for w in WARDS[: cfg.wards] if w != member.ward]))
                    self.reads.append((at, member, relative.id, False, pattern))
                elif pattern == "vip":
                    vip = self.patients[rng.choice(self.vip)]
                    if all(w != member.ward for w, _, _, _ in vip.stays):
                        self.reads.append((at, member, vip.id, False, pattern))
                elif pattern == "after-hours":
                    at = start - timedelta(hours=rng.uniform(5, 8))  # hours before the shift starts
                    pool = self._strangers(member, at)
                    for patient in rng.sample(pool, min(len(pool), rng.randint(10, 20))):
                        self.reads.append((at + timedelta(minutes=rng.uniform(0, 15)), member, patient.id, False,
                                           pattern))
                else:  # bulk
                    pool = self._strangers(member, at)
                    for patient in rng.sample(pool, min(len(pool), rng.randint(30, 50))):
                        self.reads.append((self._in(start, end), member, patient.id, False, pattern))

    # --- output ------------------------------------------------------------------------------------------------
    def audit_event(self, n: int, at: datetime, member: Staff, patient: str, btg: bool) -> dict[str, Any]:
        agent: dict[str, Any] = {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                                 "code": "humanuser", "display": "human user"}]},
            "who": {"identifier": {"system": "https://st-aurelia.example/staff", "value": member.login},
                    "display": f"{member.given} {member.family}"},
            "requestor": True, "network": {"address": member.address, "type": "2"}}
        if btg:
            agent["purposeOfUse"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                  "code": "BTG"}]}]
        return {
            "resourceType": "AuditEvent", "id": f"ae-{self.cfg.seed}-{n:06d}",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                     "display": "RESTful Operation"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}],
            "action": "R", "recorded": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "outcome": "0",
            "agent": [agent, {"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                                   "code": "110153", "display": "Source Role ID"}]},
                              "who": {"display": "sta-fhir-01"}, "requestor": False}],
            "source": {"site": "St. Aurelia EHR", "observer": {"display": "sta-fhir-01"},
                       "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3",
                                 "display": "Web Server"}]},
            "entity": [{"what": {"reference": f"Patient/{patient}"},
                        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                                 "display": "Person"},
                        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
                                 "display": "Patient"}}]}

    def directory(self) -> str:
        staff = [{"id": s.id, "logins": [s.login], "family": s.family, "given": s.given, "role": s.role,
                  "wards": [s.ward], **({"patient_ids": [s.patient_id]} if s.patient_id else {})} for s in self.staff]
        return yaml.safe_dump({"facilities": [FACILITY], "vip": self.vip, "staff": staff}, allow_unicode=True,
                              sort_keys=False)


def generate(cfg: GeneratorConfig | None = None) -> GeneratedLog:
    cfg = cfg or GeneratorConfig()
    world = _World(cfg)
    world.build_staff()
    world.build_patients()
    world.legit()
    world.snoop()
    reads = sorted((r for r in world.reads if cfg.start <= r[0] < world.end), key=lambda r: (r[0], r[1].id, r[2]))
    audit, labels = [], []
    for n, (at, member, patient, btg, label) in enumerate(reads, start=1):
        event = world.audit_event(n, at, member, patient, btg)
        audit.append(json.dumps(event, ensure_ascii=False))
        labels.append({"id": event["id"], "line": str(n), "pattern": label, "user": member.login, "patient": patient})
    hl7 = "\n".join(text for _, text in sorted(world.messages, key=lambda m: m[0]))
    care = sorted(world.care, key=lambda r: r["period"]["start"])
    return GeneratedLog(hl7, audit, care, world.directory(), labels)


def main(argv: list[str] | None = None) -> int:
    """`python -m healthswarm.detect.privacy.generator OUT [--seed N] [--days D]`: writes the five files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    log = generate(GeneratorConfig(seed=args.seed, days=args.days))
    for name, path in log.write(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
