"""Retro-hunt: the first stored event that contains an indicator — when the threat was first present here —
and, for ATT&CK techniques, the first of our stored alerts that shows the technique on one of our assets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from healthswarm.detect.entities import event_assets
from healthswarm.model import Alert, EventRef
from healthswarm.store import Store
from healthswarm.store.alerts import alerts_mentioning
from healthswarm.store.events import iter_events
from healthswarm.store.tables import assets

if TYPE_CHECKING:
    from healthswarm.detect.watchlist import Watch


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


def retro_alerts(store: Store, watches: list[Watch]) -> list[Alert]:
    """One pass over the stored events for values newly on a watchlist: an alert for each value found, at the
    first event that shows it, saying it was here before the warning. The embedded agent (agent/runtime.py) and
    the scale-out respond role (worker/roles.py) both raise these; the id is deterministic (the value's rule, the
    first event), so hunting a value again over the same events gives the same alert."""
    by_value = {w.value: w for w in watches}
    # a store of one organisation's events (the embedded agent's, a deployment's): no organisation filter
    traces = retro_hunt(store, list(by_value))
    alerts = []
    for value, trace in traces.items():
        watch = by_value[value]
        alerts.append(Alert(
            detector="watchlist", rule_id=retro_rule(watch),
            title=f"Retro-hunt: {watch.type} {watch.value} ({watch.origin}) was seen here before the warning",
            level="high" if watch.confidence >= 80 else "medium", timestamp=trace.first_seen,
            events=(EventRef(trace.source, trace.record or 0, "", trace.first_seen),),
            # the hosts of the first event: what the peer warned of, found twice (an address and its name in
            # the same beacon), is one incident on that host, not one per value
            assets=trace.assets, tags=("watchlist", "retro-hunt"),
            description=f"first seen {trace.seen()} in {trace.where()} ({trace.events} events)",
            details={"entities": {_entity(watch): [watch.value]}, "field": trace.field, "events": trace.events,
                     "indicator": {"type": watch.type, "value": watch.value, "origin": watch.origin,
                                   "confidence": watch.confidence}}))
    return alerts


def retro_rule(watch: Watch) -> str:
    """The rule id of a value's retro-hunt alert."""
    return f"watchlist-retro:{watch.type}:{watch.value}"


def _entity(watch: Watch) -> str:
    return {"ip": "ip", "domain": "domain", "url": "url", "hash": "sha256", "email": "email"}.get(watch.kind, "value")


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
