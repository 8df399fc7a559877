"""Storing and reading Indicator records (`share_indicators`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from healthswarm.model import Indicator
from healthswarm.store.taxii_tables import share_indicators


def _row(ind: Indicator, now: datetime) -> dict[str, object]:
    return {
        "key": ind.key, "value": ind.value, "type": ind.type, "first_seen": ind.first_seen,
        "last_seen": ind.last_seen, "confidence": ind.confidence, "source": ind.source, "tlp": ind.tlp,
        "description": ind.description, "techniques": list(ind.techniques), "stix_id": ind.stix_id,
        "labels": list(ind.labels), "extra": ind.extra, "updated": now,
    }


def save_indicators(conn: Connection, items: Iterable[Indicator]) -> tuple[int, int]:
    """Insert new indicators, widen the seen window and refresh the others; (inserted, updated)."""
    now = datetime.now(UTC)
    inserted = updated = 0
    for ind in items:
        row = _row(ind, now)
        existing = conn.execute(select(share_indicators.c.id, share_indicators.c.first_seen,
                                       share_indicators.c.last_seen).where(share_indicators.c.key == ind.key)).first()
        if existing is None:
            conn.execute(share_indicators.insert().values(**row))
            inserted += 1
        else:
            first = min(_utc(existing.first_seen), ind.first_seen)
            last = max(_utc(existing.last_seen), ind.last_seen)
            conn.execute(share_indicators.update().where(share_indicators.c.id == existing.id)
                         .values(**{**row, "first_seen": first, "last_seen": last}))
            updated += 1
    return inserted, updated


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load_indicators(conn: Connection, own_only: bool = False, source: str | None = None) -> list[Indicator]:
    query = select(share_indicators).order_by(share_indicators.c.id)
    if own_only:
        query = query.where(share_indicators.c.source == "")
    elif source is not None:
        query = query.where(share_indicators.c.source == source)
    return [
        Indicator(value=r.value, type=r.type, first_seen=_utc(r.first_seen), last_seen=_utc(r.last_seen),
                  confidence=r.confidence, source=r.source, tlp=r.tlp, description=r.description,
                  techniques=tuple(r.techniques), stix_id=r.stix_id, labels=tuple(r.labels), extra=dict(r.extra))
        for r in conn.execute(query)
    ]


def count_indicators(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(share_indicators)).scalar_one())
