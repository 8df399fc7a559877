"""The Sigma detector: compiled rules + correlations → `Alert`s, one event at a time."""

from __future__ import annotations

from typing import Any

from healthswarm.detect.sigma.correlation import CorrelationEngine, CorrelationResult
from healthswarm.detect.sigma.engine import SigmaEngine, event_view
from healthswarm.detect.sigma.ruleset import RuleMeta, RuleSet
from healthswarm.model import LEVELS, Alert, Event, EventRef

#: Events an alert of a correlation names at most (the window may hold more).
MAX_ALERT_EVENTS = 100

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
}


def _assets(events: list[Event]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for event in events:
        value = event.fields.get("asset.id")
        for item in value if isinstance(value, list | tuple) else (value,):
            if item:
                out[str(item)] = None
    return tuple(out)


def _entities(events: list[Event]) -> dict[str, list[str]]:
    out: dict[str, dict[str, None]] = {}
    for event in events:
        original = event.original if isinstance(event.original, dict) else {}
        for kind, (ecs, vendor) in ENTITY_FIELDS.items():
            found = [event.fields.get(f) for f in ecs if event.fields.get(f) not in (None, "", "-")]
            if not found:
                found = [original.get(f) for f in vendor if original.get(f) not in (None, "", "-")]
            for value in found:
                for item in value if isinstance(value, list | tuple) else (value,):
                    out.setdefault(kind, {})[str(item)] = None
    return {kind: list(values) for kind, values in out.items()}


def make_alert(meta: RuleMeta, events: list[Event], detector: str = "sigma",
               details: dict[str, Any] | None = None) -> Alert:
    last = max(events, key=lambda e: e.timestamp)
    return Alert(
        detector=detector,
        rule_id=meta.id or meta.key,
        title=meta.title,
        level=meta.level if meta.level in LEVELS else "medium",
        timestamp=last.timestamp,
        events=tuple(EventRef(e.source, e.record, e.key, e.timestamp) for e in events[-MAX_ALERT_EVENTS:]),
        techniques=meta.techniques,
        tactics=meta.tactics,
        assets=_assets(events),
        tags=meta.tags,
        description=meta.description,
        rule_source=meta.source,
        details={"entities": _entities(events), **(details or {})},
    )


class SigmaDetector:
    """Single-event rules and correlation rules over one stream of events."""

    name = "sigma"

    def __init__(self, ruleset: RuleSet, max_groups: int = 10_000, max_window: int = 1_000) -> None:
        self.ruleset = ruleset
        self.engine = SigmaEngine(ruleset)
        self.correlations = CorrelationEngine(ruleset.correlations, max_groups, max_window)
        referenced = self.correlations.referenced
        self._referenced = {i for i, r in enumerate(self.engine.rules) if r.meta.key in referenced}
        silenced = self.correlations.silenced()
        self._silenced = {i for i, r in enumerate(self.engine.rules) if r.meta.key in silenced}

    def detect(self, event: Event) -> list[Alert]:
        view, key = event_view(event)
        matched = self.engine.match_view(view, key)
        if not matched:
            return []
        rules = self.engine.rules
        alerts = [make_alert(rules[i].meta, [event]) for i in matched if i not in self._silenced]
        for i in matched:
            if i in self._referenced:
                alerts.extend(self._correlated(r) for r in self.correlations.feed(rules[i].meta.key, event, view))
        return alerts

    def flush(self) -> list[Alert]:
        return [self._correlated(r) for r in self.correlations.flush()]

    @staticmethod
    def _correlated(result: CorrelationResult) -> Alert:
        return make_alert(result.correlation.meta, result.events, "sigma-correlation",
                          {"correlation": result.correlation.type, **result.details})
