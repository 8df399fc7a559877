"""Repository of the audit log: who changed what, when, with the state before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from healthswarm.store.api_tables import audit_log


def record_change(conn: Connection, actor: str, role: str, action: str, target_type: str, target_id: str,
                  before: Any, after: Any, note: str = "") -> None:
    """Record one state change (inside the change's own transaction, so both commit or neither)."""
    conn.execute(insert(audit_log).values(timestamp=datetime.now(UTC), actor=actor, role=role, action=action,
                                          target_type=target_type, target_id=target_id, before=before,
                                          after=after, note=note))


def load_audit(conn: Connection, target_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Audit entries, newest first, of one target or of all."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target_id is not None:
        query = query.where(audit_log.c.target_id == target_id)
    return [{"id": r.id, "timestamp": _iso(r.timestamp), "actor": r.actor, "role": r.role, "action": r.action,
             "target_type": r.target_type, "target_id": r.target_id, "before": r.before, "after": r.after,
             "note": r.note} for r in conn.execute(query)]


def latest_change(conn: Connection) -> int | None:
    """The id of the newest entry (None for an empty log): it moves with every audited change."""
    return conn.execute(select(func.max(audit_log.c.id))).scalar_one()


def _iso(value: datetime) -> str:
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
