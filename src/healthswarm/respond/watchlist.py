"""Indicators a case asks detection to watch (and block): the `respond_watchlist` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from healthswarm.store.respond_tables import respond_watchlist


def add_to_watchlist(conn: Connection, type_: str, value: str, case_id: str, reason: str, now: datetime) -> bool:
    """True when added, False when it was on the list already."""
    exists = conn.execute(select(respond_watchlist.c.id).where(respond_watchlist.c.type == type_)
                          .where(respond_watchlist.c.value == value)).first()
    if exists:
        return False
    conn.execute(insert(respond_watchlist).values(type=type_, value=value, case_id=case_id, reason=reason, added=now))
    return True


def load_watchlist(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(respond_watchlist).order_by(respond_watchlist.c.id))]
