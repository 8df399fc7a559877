"""Incidents: alerts that belong together, with where the attack stands and what is at stake."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from healthswarm.model.alert import LEVELS


class IncidentState(StrEnum):
    """Life cycle (NIST SP 800-61 phases as states an analyst moves the incident through)."""

    NEW = "new"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    ERADICATED = "eradicated"
    RECOVERED = "recovered"
    CLOSED = "closed"
    FALSE_POSITIVE = "false-positive"


#: the states of an incident that is over (a StrEnum compares equal to its text, so both forms match)
CLOSED_STATES = frozenset({IncidentState.CLOSED, IncidentState.FALSE_POSITIVE})
#: the states of an incident still being worked, in life-cycle order
OPEN_STATES = tuple(s for s in IncidentState if s not in CLOSED_STATES)


class Stage(IntEnum):
    """How far an attack has got, in the order an intrusion usually progresses."""

    RECONNAISSANCE = 0
    INITIAL_ACCESS = 1
    EXECUTION = 2  # foothold: execution, persistence, privilege escalation, evasion, credentials, discovery, C2
    LATERAL_MOVEMENT = 3
    OBJECTIVES = 4  # collection, exfiltration, impact

    def __str__(self) -> str:
        return self.name.lower().replace("_", "-")


#: the stages as incidents and the API write them, in kill-chain order
STAGE_NAMES = tuple(str(s) for s in Stage)


# ATT&CK tactic short names (as Sigma tags write them) and ids → stage.
TACTIC_STAGES: dict[str, Stage] = {
    "reconnaissance": Stage.RECONNAISSANCE, "TA0043": Stage.RECONNAISSANCE,
    "resource-development": Stage.RECONNAISSANCE, "TA0042": Stage.RECONNAISSANCE,
    "initial-access": Stage.INITIAL_ACCESS, "TA0001": Stage.INITIAL_ACCESS,
    "execution": Stage.EXECUTION, "TA0002": Stage.EXECUTION,
    "persistence": Stage.EXECUTION, "TA0003": Stage.EXECUTION,
    "privilege-escalation": Stage.EXECUTION, "TA0004": Stage.EXECUTION,
    "defense-evasion": Stage.EXECUTION, "stealth": Stage.EXECUTION, "TA0005": Stage.EXECUTION,
    "credential-access": Stage.EXECUTION, "TA0006": Stage.EXECUTION,
    "discovery": Stage.EXECUTION, "TA0007": Stage.EXECUTION,
    "command-and-control": Stage.EXECUTION, "TA0011": Stage.EXECUTION,
    "lateral-movement": Stage.LATERAL_MOVEMENT, "TA0008": Stage.LATERAL_MOVEMENT,
    "collection": Stage.OBJECTIVES, "TA0009": Stage.OBJECTIVES,
    "exfiltration": Stage.OBJECTIVES, "TA0010": Stage.OBJECTIVES,
    "impact": Stage.OBJECTIVES, "TA0040": Stage.OBJECTIVES,
    "defense-impairment": Stage.EXECUTION,  # ATT&CK v18's split of defense evasion
    # ATT&CK for ICS (its tactics have ids of their own; short names shared with Enterprise map as above)
    "TA0108": Stage.INITIAL_ACCESS, "TA0104": Stage.EXECUTION, "TA0110": Stage.EXECUTION,
    "TA0111": Stage.EXECUTION, "evasion": Stage.EXECUTION, "TA0103": Stage.EXECUTION,
    "TA0102": Stage.EXECUTION, "TA0101": Stage.EXECUTION, "TA0109": Stage.LATERAL_MOVEMENT,
    "TA0100": Stage.OBJECTIVES, "TA0105": Stage.OBJECTIVES,
    "inhibit-response-function": Stage.OBJECTIVES, "TA0107": Stage.OBJECTIVES,
    "impair-process-control": Stage.OBJECTIVES, "TA0106": Stage.OBJECTIVES,
}


@dataclass(frozen=True, slots=True)
class StageStep:
    """When an incident first reached a kill-chain stage, and by which alert."""

    stage: Stage
    first_seen: datetime
    alert_id: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    timestamp: datetime
    alert_id: str
    title: str
    level: str
    tactics: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    note: str = ""  # why the alert joined (the correlation rule that applied)


@dataclass
class Incident:
    id: str
    title: str
    first_seen: datetime
    last_seen: datetime
    state: IncidentState = IncidentState.NEW
    stage: Stage = Stage.RECONNAISSANCE
    severity: int = 0  # 0 informational … 4 critical, after asset criticality is taken into account
    alert_severity: int = 0  # the worst alert's level, before asset criticality and spread
    alert_ids: list[str] = field(default_factory=list)
    assets: set[str] = field(default_factory=set)
    organisations: set[str] = field(default_factory=set)
    techniques: set[str] = field(default_factory=set)
    tactics: set[str] = field(default_factory=set)
    entities: set[tuple[str, str]] = field(default_factory=set)  # (kind, value): asset, user, host, ip, …
    timeline: list[TimelineEntry] = field(default_factory=list)
    merged_from: list[str] = field(default_factory=list)
    # the stages its alerts reached, each with the first alert that reached it; `stage` is the furthest
    reached: dict[Stage, StageStep] = field(default_factory=dict)
    # what later stages stored with the incident (live risk's `predicted_next`, `predicted_from`,
    # `predicted_basis`), kept as they wrote it
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> list[StageStep]:
        """The kill-chain stages the incident went through, in kill-chain order, each with when it got there."""
        return [self.reached[s] for s in sorted(self.reached)]

    def reach(self, stage: Stage, when: datetime, alert_id: str) -> None:
        """Record that an alert at `when` reached `stage` (the earliest alert per stage is kept)."""
        known = self.reached.get(stage)
        if known is None or (when, alert_id) < (known.first_seen, known.alert_id):
            self.reached[stage] = StageStep(stage, when, alert_id)
        self.stage = max(self.stage, stage)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Incident:
        """The incident `as_dict` wrote (a stored document), with what other stages added to it as `annotations`."""
        moment = datetime.fromisoformat
        timeline = [TimelineEntry(moment(e["timestamp"]), e["alert_id"], e["title"], e["level"], tuple(e["tactics"]),
                                  tuple(e["assets"]), e.get("note", "")) for e in d.get("timeline", ())]
        reached = {step.stage: step for step in (
            StageStep(_STAGE_OF[p["stage"]], moment(p["first_seen"]), p["alert_id"]) for p in d.get("path", ()))}
        return cls(
            id=d["id"], title=d["title"], first_seen=moment(d["first_seen"]), last_seen=moment(d["last_seen"]),
            state=IncidentState(d["state"]), stage=_STAGE_OF[d["stage"]], severity=int(d["severity"]),
            # every alert of an incident has its entry in the timeline, so the worst alert is the worst entry
            alert_severity=max((_LEVEL_OF.get(e.level, 0) for e in timeline), default=0),
            alert_ids=list(d.get("alert_ids", ())), assets=set(d.get("assets", ())),
            organisations=set(d.get("organisations", ())), techniques=set(d.get("techniques", ())),
            tactics=set(d.get("tactics", ())),
            entities={tuple(e.split(":", 1)) for e in d.get("entities", ())},  # type: ignore[misc]
            timeline=timeline, merged_from=list(d.get("merged_from", ())), reached=reached,
            annotations={k: v for k, v in d.items() if k not in _DOCUMENT_FIELDS})

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id, "title": self.title, "state": str(self.state), "stage": str(self.stage),
            "severity": self.severity, "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(), "alerts": len(self.alert_ids), "alert_ids": list(self.alert_ids),
            "assets": sorted(self.assets), "organisations": sorted(self.organisations),
            "techniques": sorted(self.techniques), "tactics": sorted(self.tactics),
            "entities": sorted(f"{k}:{v}" for k, v in self.entities), "merged_from": list(self.merged_from),
            "path": [{"stage": str(p.stage), "first_seen": p.first_seen.isoformat(), "alert_id": p.alert_id}
                     for p in self.path],
            "timeline": [
                {"timestamp": e.timestamp.isoformat(), "alert_id": e.alert_id, "title": e.title, "level": e.level,
                 "tactics": list(e.tactics), "assets": list(e.assets), "note": e.note}
                for e in self.timeline
            ],
        }
        out.update((k, v) for k, v in self.annotations.items() if k not in out)
        return out


_STAGE_OF = {str(s): s for s in Stage}
_LEVEL_OF = {name: n for n, name in enumerate(LEVELS)}
#: the fields `Incident.as_dict` writes itself; anything else in a stored document is an annotation
_DOCUMENT_FIELDS = frozenset({"id", "title", "state", "stage", "severity", "first_seen", "last_seen", "alerts",
                              "alert_ids", "assets", "organisations", "techniques", "tactics", "entities",
                              "merged_from", "path", "timeline"})
