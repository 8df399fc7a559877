"""What a detector raises: the rule or model that fired, its ATT&CK context, and the events it rests on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Sigma levels, lowest first; `Alert.severity` is the position in this tuple.
LEVELS: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class AttackRef:
    """One ATT&CK technique or tactic: its id (`T1059.001`, `TA0002`) and, where the data is known, its name.

    `shortname` is the tactic's short name as Sigma tags use it (`execution`); empty for techniques.
    """

    id: str
    name: str = ""
    shortname: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"id": self.id, "name": self.name}
        if self.shortname:
            out["shortname"] = self.shortname
        return out


@dataclass(frozen=True, slots=True)
class EventRef:
    """Where an event came from, enough to find it again: source (file path, topic), record number, key."""

    source: str
    record: int = 0
    key: str = ""
    timestamp: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "record": self.record, "key": self.key}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.isoformat()
        return out


#: Events an alert names at most, its last ones: a correlation's window or an insider's work session may hold
#: thousands, and the alert is stored, read for each case and shared (the count is kept in its details).
MAX_ALERT_EVENTS = 100


@dataclass(slots=True)
class Alert:
    """One detection.

    `detector` names the engine (`sigma`, `sigma-correlation`, a model name); `rule_id` and `title` the rule
    or model; `level` is one of `LEVELS`. `techniques` and `tactics` are ATT&CK references from the rule's
    tags, `events` the events the alert rests on (one for a single-event rule, several for a correlation),
    `assets` the inventory asset ids involved. `timestamp` is when the (last) event happened, in UTC.
    """

    detector: str
    rule_id: str
    title: str
    level: str
    timestamp: datetime
    events: tuple[EventRef, ...] = ()
    techniques: tuple[AttackRef, ...] = ()
    tactics: tuple[AttackRef, ...] = ()
    assets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str = ""
    rule_source: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("alert timestamps must be timezone-aware (UTC)")
        if self.timestamp.utcoffset():
            self.timestamp = self.timestamp.astimezone(UTC)
        if self.level not in LEVELS:
            raise ValueError(f"alert level {self.level!r} is not one of {', '.join(LEVELS)}")

    @property
    def severity(self) -> int:
        """The level as a number, 0 (informational) to 4 (critical)."""
        return LEVELS.index(self.level)

    @property
    def id(self) -> str:
        """Deterministic id: the same rule firing on the same events gives the same id."""
        refs = (f"{e.source}\x01{e.record}\x01{e.key}" for e in self.events)
        basis = "\x00".join([self.detector, self.rule_id, *refs])
        return hashlib.blake2b(basis.encode(), digest_size=16).hexdigest()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        """The alert `as_dict` wrote (a stored document, a peer's JSON); its id follows from its content."""
        def refs(items: Any) -> tuple[AttackRef, ...]:
            return tuple(AttackRef(str(i["id"]), str(i.get("name", "")), str(i.get("shortname", "")))
                         for i in items or () if isinstance(i, dict) and i.get("id"))

        events = tuple(
            EventRef(str(e.get("source", "")), int(e.get("record", 0)), str(e.get("key", "")),
                     datetime.fromisoformat(e["timestamp"]) if e.get("timestamp") else None)
            for e in d.get("events", ()) or () if isinstance(e, dict))
        return cls(
            detector=str(d["detector"]), rule_id=str(d["rule_id"]), title=str(d.get("title", "")),
            level=str(d["level"]), timestamp=datetime.fromisoformat(str(d["timestamp"]).replace("Z", "+00:00")),
            events=events, techniques=refs(d.get("techniques")), tactics=refs(d.get("tactics")),
            assets=tuple(d.get("assets", ())), tags=tuple(d.get("tags", ())), description=str(d.get("description", "")),
            rule_source=str(d.get("rule_source", "")), details=dict(d.get("details") or {}))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ids and names, ISO timestamps)."""
        return {
            "id": self.id,
            "detector": self.detector,
            "rule_id": self.rule_id,
            "title": self.title,
            "level": self.level,
            "timestamp": self.timestamp.isoformat(),
            "techniques": [t.as_dict() for t in self.techniques],
            "tactics": [t.as_dict() for t in self.tactics],
            "events": [e.as_dict() for e in self.events],
            "assets": list(self.assets),
            "tags": list(self.tags),
            "description": self.description,
            "rule_source": self.rule_source,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the store holds it: the alert, and the incident it was placed in (None: not placed, e.g.
    suppressed, or not correlated yet)."""

    alert: Alert
    incident_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.alert.as_dict(), "incident_id": self.incident_id}
