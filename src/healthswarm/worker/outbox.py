"""The transactional outbox: messages written with the effect they announce, published later by the relay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from healthswarm.store.worker_tables import outbox


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    msg_id: str
    subject: str
    payload: bytes
    born: float


@dataclass(frozen=True, slots=True)
class Pending:
    row_id: int
    message: OutboxMessage


def add(conn: Connection, messages: Sequence[OutboxMessage]) -> set[str]:
    """Queue messages in the caller's transaction; a `msg_id` already queued is skipped. Returns the new ids."""
    if not messages:
        return set()
    now = datetime.now(UTC)
    rows = [{"msg_id": m.msg_id, "subject": m.subject, "payload": m.payload, "born": m.born, "created": now}
            for m in {m.msg_id: m for m in messages}.values()]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(outbox).on_conflict_do_nothing(index_elements=["msg_id"]).returning(outbox.c.msg_id)
    return set(conn.execute(stmt, rows).scalars().all())


def claim(conn: Connection, limit: int) -> list[Pending]:
    """The oldest unsent messages. On PostgreSQL the rows stay locked (SKIP LOCKED) until the caller's
    transaction ends, so relays of several workers publish disjoint rows; SQLite has one writer anyway."""
    query = (select(outbox.c.id, outbox.c.msg_id, outbox.c.subject, outbox.c.payload, outbox.c.born)
             .where(outbox.c.sent.is_(None)).order_by(outbox.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [Pending(r.id, OutboxMessage(r.msg_id, r.subject, bytes(r.payload), r.born)) for r in conn.execute(query)]


def mark_sent(conn: Connection, row_ids: Sequence[int]) -> None:
    if row_ids:
        conn.execute(update(outbox).where(outbox.c.id.in_(list(row_ids))).values(sent=datetime.now(UTC)))


def prune(conn: Connection, older_than: timedelta) -> int:
    """Forget messages sent longer ago than JetStream's duplicate window (nothing can re-send them)."""
    cutoff = datetime.now(UTC) - older_than
    return conn.execute(delete(outbox).where(outbox.c.sent.is_not(None), outbox.c.sent < cutoff)).rowcount


def backlog(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent.is_(None))).scalar_one()
