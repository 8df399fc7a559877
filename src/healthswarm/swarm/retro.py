"""Retro-hunt: the first stored event that contains an indicator — when the threat was first present here —
and, for ATT&CK techniques, the first of our stored alerts that shows the technique on one of our assets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from healthswarm.detect.entities import event_assets
from healthswarm.store import Store
from healthswarm.store.alerts import alerts_mentioning
from healthswarm.store.events import iter_events
from healthswarm.store.tables import assets


@dataclass(frozen=True)
class Trace:
    value: str
    first_seen: datetime
    source: str
    record: int | None
    field: str
    events: int
    label: str = ""   # says where when the trace is not a record of a log (an alert)
    assets: tuple[str, ...] = ()  # the inventory assets the first event involves (detect/entities.event_assets)

    def seen(self) -> str:
        """When, to the minute in UTC, as every narration of a retro-hunt says it."""
        return self.first_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    def where(self) -> str:
        if self.label:
            return self.label
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
                                         (seen.events if seen else 0) + 1, assets=event_assets([event]))
                else:
                    first[value] = replace(seen, events=seen.events + 1)
    return first


def technique_hunt(store: Store, techniques: list[str], organisation: str | None = None) -> dict[str, Trace]:
    """For each ATT&CK technique id, the earliest stored alert showing it (or a sub-technique of it).

    With `organisation`, only alerts on that organisation's assets count: a provider's PACS appearing in
    an alert is its own data, even when the alert was raised on a client's traffic.
    """
    wanted = set(techniques)
    first: dict[str, Trace] = {}
    if not wanted:
        return first
    with store.read() as conn:
        ours = None if organisation is None else set(conn.execute(
            select(assets.c.id).where(assets.c.organisation == organisation)).scalars())
        for alert in alerts_mentioning(conn, wanted):   # oldest first
            involved = [a for a in alert.assets if ours is None or a in ours]
            if not involved:
                continue
            shown = {t.id for t in alert.techniques}
            for technique in wanted:
                if not any(t == technique or t.startswith(technique + ".") for t in shown):
                    continue
                seen = first.get(technique)
                if seen is None:
                    first[technique] = Trace(technique, alert.timestamp, "alerts", None, "techniques", 1,
                                             f"alert '{alert.title}' on {involved[0]}")
                else:
                    first[technique] = Trace(seen.value, seen.first_seen, seen.source, seen.record, seen.field,
                                             seen.events + 1, seen.label)
    return first
