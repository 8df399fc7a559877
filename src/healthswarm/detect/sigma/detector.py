"""The Sigma detector: compiled rules + correlations → `Alert`s, one event at a time."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Any

from healthswarm.detect.entities import event_assets, event_entities
from healthswarm.detect.sigma.correlation import CorrelationEngine, CorrelationResult
from healthswarm.detect.sigma.engine import SigmaEngine, event_view
from healthswarm.detect.sigma.ruleset import RuleMeta, RuleSet
from healthswarm.model import LEVELS, MAX_ALERT_EVENTS, Alert, Event, EventRef

_timestamp = attrgetter("timestamp")


def make_alert(meta: RuleMeta, events: list[Event], detector: str = "sigma",
               details: dict[str, Any] | None = None) -> Alert:
    last = events[0] if len(events) == 1 else max(events, key=_timestamp)  # a single-event rule: the usual alert
    return Alert(
        detector=detector,
        rule_id=meta.id or meta.key,
        title=meta.title,
        level=meta.level if meta.level in LEVELS else "medium",
        timestamp=last.timestamp,
        events=tuple([EventRef(e.source, e.record, e.key, e.timestamp) for e in events[-MAX_ALERT_EVENTS:]]),
        techniques=meta.techniques,
        tactics=meta.tactics,
        assets=event_assets(events),
        tags=meta.tags,
        description=meta.description,
        rule_source=meta.source,
        details={"entities": event_entities(events), **(details or {})},
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

    def expire(self, now: datetime) -> list[Alert]:
        """Correlation windows that closed by `now` (stream time), judged; open ones stay (see `flush`)."""
        return [self._correlated(r) for r in self.correlations.expire(now.timestamp())]

    @staticmethod
    def _correlated(result: CorrelationResult) -> Alert:
        return make_alert(result.correlation.meta, result.events, "sigma-correlation",
                          {"correlation": result.correlation.type, **result.details})
