"""Cases: one incident's handling along the NIST SP 800-61 life cycle, with owners, tasks, notes,
evidence references and observables. Plain records here; `case_store` keeps them with their audit log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.indicator import INDICATOR_TYPES

#: How far ahead of our clock a timestamp may be before it counts as clock skew.
SKEW_TOLERANCE = timedelta(minutes=5)


class Phase(StrEnum):
    """NIST SP 800-61 phases, in order."""

    DETECTION_ANALYSIS = "detection-analysis"
    CONTAINMENT = "containment"
    ERADICATION = "eradication"
    RECOVERY = "recovery"
    POST_INCIDENT = "post-incident"

    @classmethod
    def parse(cls, text: str) -> Phase:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InputError(Problem(Location("phase"), f"unknown phase {text!r}",
                                     ", ".join(p.value for p in cls))) from None


#: Allowed moves: forward one phase, or back to analysis when containment/eradication/recovery finds more
#: (the life cycle's loop back to detection & analysis).
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.DETECTION_ANALYSIS: frozenset({Phase.CONTAINMENT, Phase.POST_INCIDENT}),  # post-incident: false alarm
    Phase.CONTAINMENT: frozenset({Phase.ERADICATION, Phase.DETECTION_ANALYSIS}),
    Phase.ERADICATION: frozenset({Phase.RECOVERY, Phase.DETECTION_ANALYSIS}),
    Phase.RECOVERY: frozenset({Phase.POST_INCIDENT, Phase.DETECTION_ANALYSIS}),
    Phase.POST_INCIDENT: frozenset(),
}


def utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise InputError(Problem(Location(what), "timestamp has no time zone", "an ISO 8601 time with offset"))
    return moment.astimezone(UTC)


def check_not_future(moment: datetime, now: datetime, what: str) -> None:
    if moment - now > SKEW_TOLERANCE:
        raise InputError(Problem(Location(what), f"{moment.isoformat()} lies {moment - now} ahead of this "
                                 f"machine's clock ({now.isoformat()}): clock skew?", "a time not in the future"))


@dataclass
class Task:
    id: str
    title: str
    owner: str = ""
    status: str = "open"  # open | done
    source: str = ""  # the playbook step it came from, when it did
    created: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "owner": self.owner, "status": self.status,
                "source": self.source, "created": self.created}


@dataclass
class Note:
    at: str
    author: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "author": self.author, "text": self.text}


@dataclass
class Evidence:
    kind: str  # event | file
    ref: str  # event key, or the file's path
    sha256: str = ""
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "sha256": self.sha256, "description": self.description}

    @classmethod
    def of_file(cls, path: Path, description: str = "") -> Evidence:
        if not path.is_file():
            raise InputError(Problem(Location(str(path)), "no such file", "a readable evidence file"))
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return cls("file", str(path.resolve()), digest.hexdigest(), description)


@dataclass
class Observable:
    type: str
    value: str

    def __post_init__(self) -> None:
        if self.type not in INDICATOR_TYPES:
            raise InputError(Problem(Location("observable", field="type"), f"unknown type {self.type!r}",
                                     ", ".join(sorted(INDICATOR_TYPES))))
        self.value = self.value.strip()
        if not self.value:
            raise InputError(Problem(Location("observable", field="value"), "empty value"))

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}


@dataclass
class Case:
    id: str
    title: str
    opened: datetime
    aware_at: datetime  # the moment of awareness: regulators' clocks start here
    phase: Phase = Phase.DETECTION_ANALYSIS
    severity: int = 2
    incident_id: str | None = None
    version: int = 1
    description: str = ""
    owners: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    organisations: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    patients: int = 0  # distinct patients in the events the incident's alerts rest on (the data subjects' estimate)
    patients_basis: str = ""  # what `patients` was counted from, for the notification to say
    controllers: list[str] = field(default_factory=list)  # the organisations whose patients those are
    tasks: list[Task] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    observables: list[Observable] = field(default_factory=list)
    phase_history: list[dict[str, str]] = field(default_factory=list)
    notified: dict[str, str] = field(default_factory=dict)  # deadline id → when it was met

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise InputError(Problem(Location(f"case {self.id}", field="task"), f"no task {task_id!r}",
                                 ", ".join(t.id for t in self.tasks) or "an existing task id"))

    def next_task_id(self) -> str:
        return f"T{len(self.tasks) + 1}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "phase": str(self.phase), "severity": self.severity,
            "incident_id": self.incident_id, "version": self.version, "opened": self.opened.isoformat(),
            "aware_at": self.aware_at.isoformat(), "description": self.description, "owners": list(self.owners),
            "assets": list(self.assets), "organisations": list(self.organisations),
            "techniques": list(self.techniques), "accounts": list(self.accounts), "patients": self.patients,
            "patients_basis": self.patients_basis, "controllers": list(self.controllers),
            "tasks": [t.as_dict() for t in self.tasks], "notes": [n.as_dict() for n in self.notes],
            "evidence": [e.as_dict() for e in self.evidence],
            "observables": [o.as_dict() for o in self.observables],
            "phase_history": list(self.phase_history), "notified": dict(self.notified),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], version: int | None = None) -> Case:
        return cls(
            id=doc["id"], title=doc["title"], opened=datetime.fromisoformat(doc["opened"]),
            aware_at=datetime.fromisoformat(doc["aware_at"]), phase=Phase(doc["phase"]),
            severity=int(doc["severity"]), incident_id=doc.get("incident_id"),
            version=version if version is not None else int(doc.get("version", 1)),
            description=doc.get("description", ""), owners=list(doc.get("owners", [])),
            assets=list(doc.get("assets", [])), organisations=list(doc.get("organisations", [])),
            techniques=list(doc.get("techniques", [])), accounts=list(doc.get("accounts", [])),
            patients=int(doc.get("patients", 0)), patients_basis=str(doc.get("patients_basis", "")),
            controllers=list(doc.get("controllers", [])),
            tasks=[Task(**t) for t in doc.get("tasks", [])], notes=[Note(**n) for n in doc.get("notes", [])],
            evidence=[Evidence(**e) for e in doc.get("evidence", [])],
            observables=[Observable(**o) for o in doc.get("observables", [])],
            phase_history=list(doc.get("phase_history", [])), notified=dict(doc.get("notified", {})),
        )


def move(case: Case, target: Phase, now: datetime) -> dict[str, Any]:
    """Move the case to `target` if the life cycle allows it; returns what the audit log records."""
    if target not in TRANSITIONS[case.phase]:
        allowed = ", ".join(sorted(p.value for p in TRANSITIONS[case.phase])) or "none (the case is closed)"
        raise InputError(Problem(Location(f"case {case.id}", field="phase"),
                                 f"cannot move from {case.phase} to {target}", allowed))
    change = {"from": str(case.phase), "to": str(target), "at": now.isoformat()}
    case.phase = target
    case.phase_history.append(change)
    return change
