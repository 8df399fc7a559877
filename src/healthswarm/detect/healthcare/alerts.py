"""Alerts of the protocol analytics, built on the same contract as Sigma alerts (detector, rule id, title,
level, ATT&CK, events, assets, entities), with a description that says why, and an alert budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from healthswarm.detect.attack import AttackCatalog, catalog
from healthswarm.detect.entities import event_assets, event_entities
from healthswarm.detect.healthcare.windows import Budget
from healthswarm.model import Alert, Event, EventRef

#: Events an alert names at most (the last ones of a window): enough to find the activity again.
MAX_EVIDENCE = 20


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    level: str
    techniques: tuple[str, ...]


class AlertSink:
    """Turns a rule hit into an Alert, within the detector's budget; `stats` counts what was raised,
    suppressed and skipped, so a quiet detector can show it looked."""

    def __init__(self, detector: str, budget_per_hour: int, attack: AttackCatalog | None = None) -> None:
        self.detector = detector
        self.budget = Budget(budget_per_hour)
        self.attack = attack or catalog()
        self.stats: Counter[str] = Counter()

    def emit(self, rule: Rule, events: Sequence[Event], why: str, details: dict[str, Any],
             level: str | None = None) -> list[Alert]:
        last = events[-1]
        if not self.budget.allow(last.timestamp.timestamp()):
            self.stats[f"suppressed:{rule.id}"] += 1
            return []
        self.stats[f"alert:{rule.id}"] += 1
        evidence = list(events[-MAX_EVIDENCE:])
        techniques = tuple(self.attack.technique(t) for t in rule.techniques)
        shortnames = dict.fromkeys(s for t in techniques for s in self.attack.technique_tactics.get(t.id, ()))
        return [Alert(
            detector=self.detector,
            rule_id=rule.id,
            title=rule.title,
            level=level or rule.level,
            timestamp=last.timestamp,
            events=tuple(EventRef(e.source, e.record, e.key, e.timestamp) for e in evidence),
            techniques=techniques,
            tactics=tuple(self.attack.tactic(s) for s in shortnames),
            assets=event_assets(evidence),
            tags=tuple(f"attack.{t.lower()}" for t in rule.techniques),
            description=why,
            details={"entities": event_entities(evidence), "explanation": why, **details},
        )]


def text(fields: dict[str, Any], name: str) -> str:
    """A field as stripped text; '' when absent or not a scalar (lists, dicts, booleans are not names)."""
    value = fields.get(name)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def listing(values: Sequence[str] | set[str], limit: int = 8) -> str:
    """'a, b, c' (sorted, at most `limit`, '… (+n)' beyond), or 'nothing yet'."""
    ordered = sorted(values)
    if not ordered:
        return "nothing yet"
    shown = ", ".join(ordered[:limit])
    return shown + (f" … (+{len(ordered) - limit})" if len(ordered) > limit else "")
