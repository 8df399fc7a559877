"""Acting on the threat field: above the threshold a node raises the watchlist priority of the key,
retro-hunts its stored events for indicators, credits the reporters whose warning its own data confirms,
and writes down why — one explanation line per action.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.retro import Trace

#: values → their first local trace (a retro-hunt over the node's store)
Hunter = Callable[[list[str]], dict[str, Trace]]


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


def _value(key: str) -> str:
    return key.split(":", 2)[2] if key.startswith("indicator:") else key.split(":", 1)[1]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@dataclass
class Actor:
    node: SwarmNode
    hunter: Hunter | None = None
    folder: Path | None = None            # where watchlist.json and actions.jsonl go; None keeps them in memory
    actions: dict[str, Action] = field(default_factory=dict)

    def review(self, now: float) -> list[Action]:
        """New actions for keys whose level reached a threshold since the last review.

        At the threshold the key's watchlist priority becomes "high"; at half of it, "elevated" (one
        trusted peer's report): both retro-hunt. A key acts again only when its priority rises.
        """
        threshold = self.node.params.threshold
        due = []
        for k, lvl, _ in self.node.field.top(now, self.node.weight, n=10_000):
            priority = "high" if lvl >= threshold else "elevated" if lvl >= threshold / 2 else None
            done = self.actions.get(k)
            if priority is not None and (done is None or (done.priority, priority) == ("elevated", "high")):
                due.append((k, lvl, priority))
        if not due:
            return []
        indicators = [_value(k) for k, _, _ in due if k.startswith("indicator:")]
        traces = self.hunter(indicators) if self.hunter and indicators else {}
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
                text += f"; first seen here {_stamp(trace.first_seen)} in {trace.where()}"
            elif key.startswith("indicator:"):
                text += "; not in our stored events — watching for it"
            action.explanation = text
            self.actions[key] = action
            new.append(action)
        self._save(new)
        return new

    def _save(self, new: list[Action]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "actions.jsonl", "a", encoding="utf-8") as out:
            for action in new:
                out.write(json.dumps(asdict(action)) + "\n")
        watch = {a.key: {"priority": a.priority, "level": a.level, "why": a.explanation} for a in self.actions.values()}
        tmp = self.folder / "watchlist.tmp"
        tmp.write_text(json.dumps(watch, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / "watchlist.json")
