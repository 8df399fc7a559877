"""Alerts the sensors raised themselves — Suricata signatures, Zeek notices — become healthswarm alerts,
so they join incidents with Sigma and model alerts instead of staying a separate console."""

from __future__ import annotations

from typing import Any

from healthswarm.detect.attack import AttackCatalog, catalog
from healthswarm.detect.entities import event_assets, event_entities
from healthswarm.model import Alert, Event, EventRef

# Suricata severity (1 most severe) → alert level; Zeek notices carry none and count as medium.
SURICATA_LEVELS = {1: "high", 2: "medium", 3: "low", 4: "informational"}


def _mitre(original: Any, key: str) -> list[str]:
    """ATT&CK ids from a Suricata rule's metadata (ET rules write mitre_technique_id / mitre_tactic_id)."""
    alert = original.get("alert") if isinstance(original, dict) else None
    metadata = alert.get("metadata") if isinstance(alert, dict) else None
    values = metadata.get(key) if isinstance(metadata, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else []


class SensorAlertDetector:
    name = "sensor"

    def __init__(self, attack: AttackCatalog | None = None) -> None:
        self.attack = attack or catalog()

    def detect(self, event: Event) -> list[Alert]:
        fields = event.fields
        if fields.get("event.kind") != "alert":
            return []
        observer = fields.get("observer.type") or "sensor"
        title = fields.get("rule.name") or fields.get("message") or "sensor alert"
        severity = fields.get("event.severity")
        level = SURICATA_LEVELS.get(severity, "medium") if isinstance(severity, int) else "medium"
        techniques = tuple(self.attack.technique(t) for t in _mitre(event.original, "mitre_technique_id"))
        tactics = tuple(self.attack.tactic(t) for t in _mitre(event.original, "mitre_tactic_id"))
        if not tactics:  # the techniques' own tactics, as ATT&CK lists them
            names = {s for t in techniques for s in self.attack.technique_tactics.get(t.id, ())}
            tactics = tuple(self.attack.tactic(s) for s in sorted(names))
        return [Alert(
            detector=observer,
            rule_id=f"{observer}:{fields.get('rule.id') or title}",
            title=str(title),
            level=level,
            timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            techniques=techniques,
            tactics=tactics,
            assets=event_assets([event]),
            tags=tuple(f"attack.{t.id.lower()}" for t in techniques),
            details={"entities": event_entities([event]), "category": fields.get("rule.category", "")},
        )]

    def flush(self) -> list[Alert]:
        return []
