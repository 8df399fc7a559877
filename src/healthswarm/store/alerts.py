"""Repository of alerts and incidents: stored whole as JSON documents, indexed by what lists filter on."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Text, cast, delete, func, insert, literal, or_, select, update

from healthswarm.model import Alert, StoredAlert
from healthswarm.model.incident import CLOSED_STATES, OPEN_STATES, Incident, IncidentState
from healthswarm.store.tables import alerts, incident_assets, incidents

ID_CHUNK = 10_000


def save_alerts(conn: Connection, items: Iterable[Alert], incident_of: dict[str, str] | None = None) -> int:
    """Store alerts not stored yet (an alert's id is deterministic); returns how many were new."""
    batch = list(items)
    if not batch:
        return 0
    ids = [a.id for a in batch]
    known: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):  # PostgreSQL takes at most 65,535 parameters a statement
        known.update(conn.execute(select(alerts.c.id).where(alerts.c.id.in_(ids[start:start + ID_CHUNK]))).scalars())
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


def _stored_alert(row: Any) -> StoredAlert:
    return StoredAlert(Alert.from_dict(row.document), row.incident_id)


def _alert_filters(since: datetime | None, rule_id: str | None, incident: str | None,
                   level: str | None) -> list[Any]:
    wanted = {"rule_id": rule_id, "incident_id": incident, "level": level}
    where = [alerts.c[name] == value for name, value in wanted.items() if value is not None]
    return where if since is None else [*where, alerts.c.timestamp >= since]


def load_alerts(conn: Connection, since: datetime | None = None, rule_id: str | None = None,
                limit: int | None = None, *, incident: str | None = None, level: str | None = None,
                offset: int = 0) -> list[StoredAlert]:
    """Stored alerts matching every filter given, newest first."""
    query = (select(alerts.c.document, alerts.c.incident_id)
             .where(*_alert_filters(since, rule_id, incident, level))
             .order_by(alerts.c.timestamp.desc(), alerts.c.id).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    return [_stored_alert(row) for row in conn.execute(query)]


def alerts_mentioning(conn: Connection, needles: Iterable[str]) -> Iterator[Alert]:
    """Stored alerts whose document holds any of `needles` as text, oldest first (ties: the greater id first),
    streamed: the database does the coarse search (a technique id, a value), the caller checks what it wants of
    each alert, and only those are decoded."""
    document = cast(alerts.c.document, Text)
    query = (select(alerts.c.document, alerts.c.incident_id)
             .where(or_(*(document.contains(n, autoescape=True) for n in dict.fromkeys(needles))))
             .order_by(alerts.c.timestamp, alerts.c.id.desc()))
    for row in conn.execution_options(yield_per=500).execute(query):
        yield Alert.from_dict(row.document)


def alerts_by_id(conn: Connection, ids: Iterable[str]) -> dict[str, Alert]:
    """The stored alerts among `ids`, by id (ids not stored are left out)."""
    wanted = sorted(set(ids))
    out: dict[str, Alert] = {}
    for start in range(0, len(wanted), 500):  # bounded IN lists
        rows = conn.execute(select(alerts.c.document, alerts.c.incident_id)
                            .where(alerts.c.id.in_(wanted[start:start + 500])))
        out.update((s.alert.id, s.alert) for s in map(_stored_alert, rows))
    return out


def count_alerts(conn: Connection, *, since: datetime | None = None, rule_id: str | None = None,
                 incident: str | None = None, level: str | None = None) -> int:
    where = _alert_filters(since, rule_id, incident, level)
    return conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()


def load_alert(conn: Connection, alert_id: str) -> StoredAlert | None:
    row = conn.execute(select(alerts.c.document, alerts.c.incident_id).where(alerts.c.id == alert_id)).first()
    return None if row is None else _stored_alert(row)


def open_incident_alerts(conn: Connection, seen_since: datetime | None = None) -> list[StoredAlert]:
    """The alerts of every open incident (of those last seen from `seen_since`, if given), oldest first: what
    a correlator replays to continue the stored incidents."""
    open_ids = select(incidents.c.id).where(_is_open(), *_seen_since(seen_since))
    query = (select(alerts.c.document, alerts.c.incident_id).where(alerts.c.incident_id.in_(open_ids))
             .order_by(alerts.c.timestamp, alerts.c.id))
    return [_stored_alert(row) for row in conn.execute(query)]


def incident_alerts(conn: Connection, incident_ids: Collection[str]) -> list[StoredAlert]:
    """The stored alerts of the incidents `incident_ids`, newest first (as `load_alerts` orders them): read by
    the incident index, not by loading every alert."""
    ids = sorted(set(incident_ids))
    out: list[StoredAlert] = []
    for start in range(0, len(ids), ID_CHUNK):
        query = (select(alerts.c.document, alerts.c.incident_id)
                 .where(alerts.c.incident_id.in_(ids[start:start + ID_CHUNK])))
        out += map(_stored_alert, conn.execute(query))
    out.sort(key=lambda s: s.alert.id)   # the order of load_alerts (newest first, then by id) across chunks
    out.sort(key=lambda s: s.alert.timestamp, reverse=True)
    return out


def open_incident_states(conn: Connection) -> dict[str, str]:
    """Open incident id → its state."""
    return dict(conn.execute(select(incidents.c.id, incidents.c.state).where(_is_open())).all())


def _is_open() -> Any:
    return incidents.c.state.not_in([str(s) for s in CLOSED_STATES])


def _seen_since(moment: datetime | None) -> list[Any]:
    return [] if moment is None else [incidents.c.last_seen >= moment]


def alert_span(conn: Connection) -> tuple[int, int] | None:
    """The first and the last stored alert's time, in whole seconds since the epoch (None: no alerts)."""
    epoch = _epoch()
    first, last = conn.execute(select(func.min(epoch), func.max(epoch))).one()
    return None if first is None else (int(first), int(last))


def alert_counts(conn: Connection, start: int, size: int) -> list[tuple[str, int, int]]:
    """(detector, bucket, alerts) for buckets of `size` seconds from `start` (epoch seconds), counted in the
    database."""
    slot = ((_epoch() - literal(start, BigInteger)) / literal(size, BigInteger)).label("slot")
    rows = conn.execute(select(alerts.c.detector, slot, func.count()).group_by(alerts.c.detector, slot))
    return [(detector, int(at), int(n)) for detector, at, n in rows]


def _epoch() -> Any:
    return func.cast(func.extract("epoch", alerts.c.timestamp), BigInteger)


def save_incidents(conn: Connection, items: Iterable[Incident]) -> int:
    """Insert or replace incidents, and point their alerts at them."""
    written: dict[str, Incident] = {}
    count = 0
    for incident in items:
        _upsert_incident(conn, incident)
        written[incident.id] = incident
        for merged in incident.merged_from:
            # its incident_assets rows go with it (ON DELETE CASCADE)
            conn.execute(delete(incidents).where(incidents.c.id == merged))
            written.pop(merged, None)
        ids = list(incident.alert_ids)
        for start in range(0, len(ids), ID_CHUNK):
            conn.execute(update(alerts).where(alerts.c.id.in_(ids[start:start + ID_CHUNK]))
                         .values(incident_id=incident.id))
        count += 1
    _replace_incident_assets(conn, list(written.values()))
    return count


def write_incident_rows(conn: Connection, items: Sequence[Incident]) -> None:
    """Insert or replace the rows of `items`: each incident's and its incident_assets rows (the correlator stage
    writes its batches through here; it moves alerts and deletes merged incidents itself)."""
    for incident in items:
        _upsert_incident(conn, incident)
    _replace_incident_assets(conn, items)


def _upsert_incident(conn: Connection, incident: Incident) -> None:
    row = {"title": incident.title, "state": str(incident.state), "stage": str(incident.stage),
           "severity": incident.severity, "first_seen": incident.first_seen, "last_seen": incident.last_seen,
           "document": incident.as_dict()}
    if not conn.execute(update(incidents).where(incidents.c.id == incident.id).values(**row)).rowcount:
        conn.execute(insert(incidents).values(id=incident.id, **row))


def _replace_incident_assets(conn: Connection, items: Sequence[Incident]) -> None:
    """One incident_assets row per asset of each incident in `items`, replacing the rows they had."""
    ids = [i.id for i in items]
    for start in range(0, len(ids), ID_CHUNK):
        conn.execute(delete(incident_assets).where(incident_assets.c.incident_id.in_(ids[start:start + ID_CHUNK])))
    rows = [{"incident_id": i.id, "asset_id": asset_id, "state": str(i.state), "severity": i.severity,
             "stage_rank": int(i.stage), "last_seen": i.last_seen} for i in items for asset_id in sorted(i.assets)]
    if rows:
        conn.execute(insert(incident_assets), rows)


def _incident(row: Any) -> Incident:
    return Incident.from_dict({**row.document, "state": row.state})


def load_incidents(conn: Connection, state: str | None = None) -> list[Incident]:
    """Stored incidents, most severe and most recent first."""
    query = (select(incidents.c.document, incidents.c.state)
             .order_by(incidents.c.severity.desc(), incidents.c.last_seen.desc()))
    if state is not None:
        query = query.where(incidents.c.state == state)
    return [_incident(row) for row in conn.execute(query)]


def load_incident(conn: Connection, incident_id: str) -> Incident | None:
    """One stored incident; None when no incident has that id."""
    row = conn.execute(select(incidents.c.document, incidents.c.state)
                       .where(incidents.c.id == incident_id)).first()
    return None if row is None else _incident(row)


# the fields of an incident's summary read out of its JSON document in the database, not by decoding whole
# documents (timelines and alert ids are most of a document's size)
_SUMMARY_FIELDS = ("alerts", "assets", "organisations", "techniques", "tactics", "path")
# the incident board lists the most severe, most recent first
_BOARD_ORDER = (incidents.c.severity.desc(), incidents.c.last_seen.desc(), incidents.c.id)


def incident_summaries(conn: Connection, *, state: str | None = None, stage: str | None = None,
                       min_severity: int = 0, open_only: bool = False, offset: int = 0,
                       limit: int | None = None, asset: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of incident summaries (no timeline, no alert ids), most severe and most recent first, and how
    many match in all; `asset`: only the incidents on that asset."""
    where = [incidents.c.severity >= min_severity]
    if asset is not None:
        where.append(incidents.c.id.in_(select(incident_assets.c.incident_id)
                                        .where(incident_assets.c.asset_id == asset)))
    if state is not None:
        where.append(incidents.c.state == state)
    if stage is not None:
        where.append(incidents.c.stage == stage)
    if open_only:
        where.append(incidents.c.state.in_([str(s) for s in OPEN_STATES]))
    total = conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one()
    # the page's ids first (sorting narrow rows), then the JSON fields of those rows only
    page = select(incidents.c.id).where(*where).order_by(*_BOARD_ORDER).offset(offset)
    if limit is not None:
        page = page.limit(limit)
    query = (select(incidents.c.id, incidents.c.title, incidents.c.state, incidents.c.stage, incidents.c.severity,
                    incidents.c.first_seen, incidents.c.last_seen,
                    *(incidents.c.document[name].label(name) for name in _SUMMARY_FIELDS))
             .where(incidents.c.id.in_(page.scalar_subquery())).order_by(*_BOARD_ORDER))
    items = [{"id": r.id, "title": r.title, "state": r.state, "stage": r.stage, "severity": r.severity,
              "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen),
              **{name: getattr(r, name) for name in _SUMMARY_FIELDS}} for r in conn.execute(query)]
    return items, total


def incident_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(state, stage, severity) of every stored incident."""
    rows = conn.execute(select(incidents.c.state, incidents.c.stage, incidents.c.severity))
    return [(r.state, r.stage, r.severity) for r in rows]


def latest_incident_seen(conn: Connection, open_only: bool = False) -> datetime | None:
    """The newest `last_seen` of any incident (or of any open one): it moves when an incident grows."""
    last = conn.execute(select(func.max(incidents.c.last_seen)).where(*([_is_open()] if open_only else []))
                        ).scalar_one()
    return None if last is None else _utc(last)


def set_incident_state(conn: Connection, incident_id: str, state: IncidentState) -> str | None:
    """Move one stored incident to `state`; returns the state it was in (None when no incident has that id)."""
    row = conn.execute(select(incidents.c.document, incidents.c.state)
                       .where(incidents.c.id == incident_id)).first()
    if row is None:
        return None
    conn.execute(update(incidents).where(incidents.c.id == incident_id)
                 .values(state=str(state), document={**row.document, "state": str(state)}))
    conn.execute(update(incident_assets).where(incident_assets.c.incident_id == incident_id).values(state=str(state)))
    return str(row.state)


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
    n_open = conn.execute(select(func.count()).select_from(incidents).where(_is_open())).scalar_one()
    return {"alerts": n_alerts, "in_incidents": n_placed, "incidents": n_incidents, "open_incidents": n_open}


def _utc(value: datetime) -> datetime:
    # SQLite hands DateTime back without its zone; everything stored is UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat()
