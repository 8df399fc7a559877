"""Repository of alerts and incidents: stored whole as JSON documents, indexed by what lists filter on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from healthswarm.model import Alert
from healthswarm.model.incident import CLOSED_STATES, Incident
from healthswarm.store.tables import alerts, incidents


def save_alerts(conn: Connection, items: Iterable[Alert], incident_of: dict[str, str] | None = None) -> int:
    """Store alerts not stored yet (an alert's id is deterministic); returns how many were new."""
    batch = list(items)
    if not batch:
        return 0
    known = set(conn.execute(select(alerts.c.id).where(alerts.c.id.in_([a.id for a in batch]))).scalars())
    rows = []
    for a in batch:
        if a.id in known:
            continue
        known.add(a.id)
        rows.append({"id": a.id, "detector": a.detector, "rule_id": a.rule_id, "title": a.title, "level": a.level,
                     "timestamp": a.timestamp, "incident_id": (incident_of or {}).get(a.id),
                     "document": a.as_dict()})
    if rows:
        conn.execute(insert(alerts), rows)
    return len(rows)


def load_alerts(conn: Connection, since: datetime | None = None, rule_id: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts as stored documents (with `incident_id`), newest first."""
    query = select(alerts.c.document, alerts.c.incident_id).order_by(alerts.c.timestamp.desc(), alerts.c.id)
    if since is not None:
        query = query.where(alerts.c.timestamp >= since)
    if rule_id is not None:
        query = query.where(alerts.c.rule_id == rule_id)
    if limit is not None:
        query = query.limit(limit)
    return [{**row.document, "incident_id": row.incident_id} for row in conn.execute(query)]


def save_incidents(conn: Connection, items: Iterable[Incident]) -> int:
    """Insert or replace incidents, and point their alerts at them."""
    count = 0
    for incident in items:
        row = {"title": incident.title, "state": str(incident.state), "stage": str(incident.stage),
               "severity": incident.severity, "first_seen": incident.first_seen, "last_seen": incident.last_seen,
               "document": incident.as_dict()}
        done = conn.execute(update(incidents).where(incidents.c.id == incident.id).values(**row)).rowcount
        if not done:
            conn.execute(insert(incidents).values(id=incident.id, **row))
        for merged in incident.merged_from:
            conn.execute(delete(incidents).where(incidents.c.id == merged))
        conn.execute(update(alerts).where(alerts.c.id.in_(incident.alert_ids)).values(incident_id=incident.id))
        count += 1
    return count


def load_incidents(conn: Connection, state: str | None = None) -> list[dict[str, Any]]:
    """Incidents as stored documents, most severe and most recent first."""
    query = select(incidents.c.document).order_by(incidents.c.severity.desc(), incidents.c.last_seen.desc())
    if state is not None:
        query = query.where(incidents.c.state == state)
    return [row.document for row in conn.execute(query)]


def update_incident_document(conn: Connection, incident_id: str, fields: dict[str, Any]) -> bool:
    """Merge `fields` into one stored incident document (its indexed columns stay as they are);
    False when no incident has that id."""
    document = conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id)).scalar_one_or_none()
    if document is None:
        return False
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(document={**document, **fields}))
    return True


def alert_totals(conn: Connection) -> dict[str, int]:
    """The one definition of the alert and incident figures every face prints: `alerts` stored (each once),
    `in_incidents` of them placed in an incident (the rest were suppressed), `incidents` stored, `open_incidents`
    of them not closed. An incident's own count is the stored alerts it holds."""
    n_alerts, n_placed = conn.execute(select(func.count(), func.count(alerts.c.incident_id))).one()
    n_incidents = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
    n_open = conn.execute(select(func.count()).select_from(incidents)
                          .where(incidents.c.state.not_in([str(s) for s in CLOSED_STATES]))).scalar_one()
    return {"alerts": n_alerts, "in_incidents": n_placed, "incidents": n_incidents, "open_incidents": n_open}
