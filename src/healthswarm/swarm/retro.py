"""Retro-hunt: the first stored event that contains an indicator — when the threat was first present here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from healthswarm.store import Store
from healthswarm.store.events import iter_events


@dataclass(frozen=True)
class Trace:
    value: str
    first_seen: datetime
    source: str
    record: int | None
    field: str
    events: int

    def where(self) -> str:
        name = Path(self.source).name if self.source else "?"
        return f"{name} record {self.record}" if self.record is not None else name


def _matches(value: str, fields: dict[str, Any]) -> str | None:
    needle = value.lower()
    for name, found in fields.items():
        if isinstance(found, str) and (found.lower() == needle or (len(needle) > 6 and needle in found.lower())):
            return name
        if isinstance(found, list) and any(isinstance(f, str) and f.lower() == needle for f in found):
            return name
    return None


def retro_hunt(store: Store, values: list[str], organisation: str | None = None) -> dict[str, Trace]:
    """For each value, the earliest stored event naming it (one pass over the events, page by page).

    With `organisation`, only that organisation's events count (a store shared by several agents).
    """
    first: dict[str, Trace] = {}
    with store.read() as conn:
        for stored in iter_events(conn):
            event = stored.event
            if organisation is not None and event.fields.get("organization.id") != organisation:
                continue
            for value in values:
                name = _matches(value, event.fields)
                if name is None:
                    continue
                seen = first.get(value)
                if seen is None or event.timestamp < seen.first_seen:
                    first[value] = Trace(value, event.timestamp, event.source, event.record, name,
                                         (seen.events if seen else 0) + 1)
                else:
                    first[value] = Trace(seen.value, seen.first_seen, seen.source, seen.record, seen.field,
                                         seen.events + 1)
    return first
