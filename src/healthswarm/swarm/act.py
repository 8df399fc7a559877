"""Acting on the threat field: above the threshold a node raises the watchlist priority of the key,
retro-hunts its stored events for indicators (and its alerts for techniques), credits the reporters
whose warning its own data confirms, raises the risk of its own assets (`exposure.py`), and writes down
why — one explanation line per action.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from healthswarm.swarm.exposure import Raise, RiskRaiser, per_asset
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.retro import Trace

#: values → their first local trace (a retro-hunt over the node's store)
Hunter = Callable[[list[str]], dict[str, Trace]]
#: asset → (factor, why): where raised risk is kept (exposure_store.store_raises on the node's store)
RaiseSink = Callable[[dict[str, tuple[float, str]]], object]


@dataclass
class Action:
    key: str
    level: float
    threshold: float
    reporters: list[str]
    priority: str
    at: str
    first_seen_here: str | None = None
    where: str | None = None
    explanation: str = ""


def corroborations(actions: list[Action]) -> list[tuple[str, dict[str, object]]]:
    """(kind, data) to publish for the peers' warnings our own data confirms: our own, independent report
    of each, which is what reinforces the field (one organisation's report counts once, however relayed)."""
    out: list[tuple[str, dict[str, object]]] = []
    for a in actions:
        if a.first_seen_here is None or not a.reporters:
            continue
        if a.key.startswith("indicator:"):
            _, kind, value = a.key.split(":", 2)
            out.append(("sighting", {"type": kind, "value": value, "confidence": 70}))
        elif a.key.startswith("technique:"):
            out.append(("technique", {"technique": _value(a.key), "confidence": 60}))
    return out


def _raise_id(r: Raise) -> tuple[str, tuple[str, ...], tuple[str, ...], float]:
    """What makes a raise the same raise: the level drifting with evaporation does not."""
    return r.reason, r.keys, r.assets, r.factor


def _value(key: str) -> str:
    return key.split(":", 2)[2] if key.startswith("indicator:") else key.split(":", 1)[1]


@dataclass
class Actor:
    node: SwarmNode
    hunter: Hunter | None = None
    folder: Path | None = None            # where watchlist.json and actions.jsonl go; None keeps them in memory
    actions: dict[str, Action] = field(default_factory=dict)
    technique_hunter: Hunter | None = None   # technique ids → the first of our alerts showing them
    raiser: RiskRaiser | None = None
    sink: RaiseSink | None = None
    raised: list[Raise] = field(default_factory=list)

    def review(self, now: float) -> list[Action]:
        """New actions for keys whose level reached a threshold since the last review.

        At the threshold the key's watchlist priority becomes "high"; at half of it, "elevated" (one
        trusted peer's report): both retro-hunt. A key acts again only when its priority rises.
        """
        self._raise_risk(now)
        threshold = self.node.params.threshold
        due = []
        for k, lvl, _ in self.node.top(now, n=10_000):
            priority = "high" if lvl >= threshold else "elevated" if lvl >= threshold / 2 else None
            done = self.actions.get(k)
            if priority is not None and (done is None or (done.priority, priority) == ("elevated", "high")):
                due.append((k, lvl, priority))
        if not due:
            return []
        indicators = [_value(k) for k, _, _ in due if k.startswith("indicator:")]
        techniques = [_value(k) for k, _, _ in due if k.startswith("technique:")]
        traces = self.hunter(indicators) if self.hunter and indicators else {}
        if self.technique_hunter and techniques:
            traces |= self.technique_hunter(techniques)
        new = []
        for key, level, priority in due:
            bar = threshold if priority == "high" else threshold / 2
            contributions = self.node.field.contributions(key, now, self.node.weight)
            reporters = [org for org, c in contributions if c > 0 and org != self.node.name]
            trace = traces.get(_value(key))
            action = Action(key, round(level, 3), bar, reporters, priority,
                            datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"))
            text = (f"{_value(key)} reported by {len(reporters)} trusted peer{'s' if len(reporters) != 1 else ''}"
                    f" ({', '.join(reporters)}), level {level:.2f} ≥ {bar:.2f}: priority {priority}")
            if trace is not None and priority == "high":
                for entry in self.node.field.state.get(key, {}).values():
                    if entry.key_id != self.node.key_id:
                        self.node.trust.confirm(entry.key_id)
            if trace is not None:
                action.first_seen_here, action.where = trace.first_seen.isoformat(), trace.where()
                text += f"; first seen here {trace.seen()} in {trace.where()}"
            elif key.startswith("indicator:"):
                text += "; not in our stored events — watching for it"
            action.explanation = text
            self.actions[key] = action
            new.append(action)
        self._save(new)
        return new

    def _raise_risk(self, now: float) -> None:
        """Recompute the raises from the field; log the new ones and the lifted ones, keep the current set."""
        if self.raiser is None:
            return
        current = self.raiser.raises(self.node, now)
        before, after = {_raise_id(r) for r in self.raised}, {_raise_id(r) for r in current}
        if before == after:
            return
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        lines = [{"kind": "risk-raised", "at": at, **asdict(r)} for r in current if _raise_id(r) not in before]
        lines += [{"kind": "risk-lifted", "at": at, **asdict(r),
                   "explanation": f"below the threshold again: {r.explanation}"}
                  for r in self.raised if _raise_id(r) not in after]
        self.raised = current
        if self.sink is not None:
            self.sink(per_asset(current))
        self._log(lines)

    def _save(self, new: list[Action]) -> None:
        if self.folder is None:
            return
        self._log([asdict(action) for action in new])
        watch = {a.key: {"priority": a.priority, "level": a.level, "why": a.explanation} for a in self.actions.values()}
        tmp = self.folder / "watchlist.tmp"
        tmp.write_text(json.dumps(watch, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / "watchlist.json")

    def _log(self, lines: list[dict[str, object]]) -> None:
        if self.folder is None or not lines:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "actions.jsonl", "a", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")
