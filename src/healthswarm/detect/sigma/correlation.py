"""Sigma correlation rules in the stream: event_count, value_count, temporal, temporal_ordered.

Each correlation keeps, per group-by key, a sliding window of the matches of its referenced rules
(by event time). Memory is bounded: at most `max_groups` groups per correlation (least recently
seen dropped first) and `max_window` matches per group (oldest dropped first). `gte`/`gt`/`eq`
conditions fire as soon as they hold, then the group starts afresh; `lt`/`lte`/`neq` can only be
judged once a window has passed, so they fire when the window closes (a later event in the group or
`flush()` at the end of the stream).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from healthswarm.detect.sigma.atoms import text
from healthswarm.detect.sigma.ruleset import CompiledCorrelation
from healthswarm.model import Event

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b,
}
_AT_CLOSE = frozenset({"lt", "lte", "neq"})


@dataclass(slots=True)
class _Hit:
    time: float
    rule: str
    value: Any
    event: Event


@dataclass
class CorrelationResult:
    """A correlation that fired: the rule, its group key, and the events in the window."""

    correlation: CompiledCorrelation
    group: tuple[Any, ...]
    events: list[Event]
    value: float
    details: dict[str, Any] = field(default_factory=dict)


class CorrelationEngine:
    def __init__(self, correlations: list[CompiledCorrelation], max_groups: int = 10_000,
                 max_window: int = 1_000) -> None:
        self.correlations = correlations
        self.max_groups = max_groups
        self.max_window = max_window
        self.by_rule: dict[str, list[int]] = {}
        for index, corr in enumerate(correlations):
            for key in dict.fromkeys(corr.rules):
                self.by_rule.setdefault(key, []).append(index)
        self._state: list[OrderedDict[tuple[Any, ...], deque[_Hit]]] = [OrderedDict() for _ in correlations]

    @property
    def referenced(self) -> set[str]:
        return set(self.by_rule)

    def silenced(self) -> set[str]:
        """Rules referenced only by correlations with `generate: false`: they raise no alerts of their own."""
        loud = {k for c in self.correlations if c.generate for k in c.rules}
        return self.referenced - loud

    def feed(self, rule_key: str, event: Event, view: dict[str, Any]) -> list[CorrelationResult]:
        """A match of rule `rule_key` on `event`; returns the correlations it completes."""
        out: list[CorrelationResult] = []
        for index in self.by_rule.get(rule_key, ()):
            result = self._feed_one(index, rule_key, event, view)
            if result is not None:
                out.append(result)
                # correlations can refer to correlations
                out.extend(self.feed(result.correlation.meta.key, event, view))
        return out

    def _value(self, corr: CompiledCorrelation, rule_key: str, name: str, event: Event,
               view: dict[str, Any]) -> Any:
        mapped = corr.aliases.get(name, {}).get(rule_key, name)
        value = view.get(mapped, event.fields.get(mapped))
        if isinstance(value, list):
            value = tuple(value)
        return text(value) if not isinstance(value, tuple) else value

    def _feed_one(self, index: int, rule_key: str, event: Event, view: dict[str, Any]) -> CorrelationResult | None:
        corr = self.correlations[index]
        group = tuple(self._value(corr, rule_key, g, event, view) for g in corr.group_by)
        groups = self._state[index]
        window = groups.get(group)
        now = event.timestamp.timestamp()
        closed: CorrelationResult | None = None
        if window is None:
            window = groups[group] = deque(maxlen=self.max_window)
            while len(groups) > self.max_groups:
                groups.popitem(last=False)
        else:
            groups.move_to_end(group)
            if window and now - window[0].time > corr.timespan and corr.operator in _AT_CLOSE:
                closed = self._judge(corr, group, list(window))
                window.clear()
            while window and now - window[0].time > corr.timespan:
                window.popleft()
        value = self._value(corr, rule_key, corr.value_field, event, view) if corr.value_field else None
        window.append(_Hit(now, rule_key, value, event))
        if closed is not None:
            return closed
        if corr.operator in _AT_CLOSE:
            return None
        result = self._judge(corr, group, list(window))
        if result is not None:
            window.clear()
        return result

    def _judge(self, corr: CompiledCorrelation, group: tuple[Any, ...], hits: list[_Hit]) -> CorrelationResult | None:
        compare = _COMPARE[corr.operator]
        if corr.type == "event_count":
            measure = float(len(hits))
            ok = compare(measure, corr.count)
        elif corr.type == "value_count":
            measure = float(len({h.value for h in hits if h.value is not None}))
            ok = compare(measure, corr.count)
        elif corr.type == "temporal":
            measure = float(len({h.rule for h in hits}))
            ok = measure >= len(set(corr.rules)) and compare(measure, corr.count)
        else:  # temporal_ordered: the rules matched in the order listed
            position = 0
            for hit in sorted(hits, key=lambda h: h.time):
                if position < len(corr.rules) and hit.rule == corr.rules[position]:
                    position += 1
            measure = float(position)
            ok = position == len(corr.rules)
        if not ok:
            return None
        return CorrelationResult(corr, group, [h.event for h in hits], measure,
                                 {"group_by": dict(zip(corr.group_by, group, strict=True)), "value": measure})

    def expire(self, now: float) -> list[CorrelationResult]:
        """Judge and close the windows of close-time conditions whose timespan has passed by `now` (stream
        time, epoch seconds): what `feed` would close on the group's next event, without waiting for one.
        Windows still open stay open, so a long-running consumer can call this on a timer."""
        out: list[CorrelationResult] = []
        for index, corr in enumerate(self.correlations):
            if corr.operator not in _AT_CLOSE:
                continue
            groups = self._state[index]
            for group in [g for g, w in groups.items() if w and now - w[0].time > corr.timespan]:
                result = self._judge(corr, group, list(groups.pop(group)))
                if result is not None:
                    out.append(result)
        return out

    def flush(self) -> list[CorrelationResult]:
        """End of stream: judge the open windows of conditions that fire when a window closes."""
        out: list[CorrelationResult] = []
        for index, corr in enumerate(self.correlations):
            if corr.operator not in _AT_CLOSE:
                continue
            for group, window in self._state[index].items():
                result = self._judge(corr, group, list(window)) if window else None
                if result is not None:
                    out.append(result)
            self._state[index].clear()
        return out
