"""The transactional outbox: messages written with the effect they announce, published later by the relay.

A row lives from the commit of its effect until the bus acknowledged it; then it is deleted. The table holds
only what is still to be published, so the relay's queries stay as cheap after a week as after a minute (rows
kept after publishing, then pruned, left PostgreSQL scanning ever more dead index entries as a soak went on).
A redelivered effect queues nothing again: the roles queue only what they newly stored (events, alerts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, select
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


def add(conn: Connection, messages: Sequence[OutboxMessage]) -> list[Pending]:
    """Queue messages in the caller's transaction; a `msg_id` still queued is skipped. Returns the rows added,
    for the relay to publish without reading them back once the transaction committed."""
    if not messages:
        return []
    now = datetime.now(UTC)
    unique = {m.msg_id: m for m in messages}
    rows = [{"msg_id": m.msg_id, "subject": m.subject, "payload": m.payload, "born": m.born, "created": now}
            for m in unique.values()]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(outbox).on_conflict_do_nothing(index_elements=["msg_id"]).returning(outbox.c.id, outbox.c.msg_id)
    return sorted((Pending(row_id, unique[msg_id]) for row_id, msg_id in conn.execute(stmt, rows)),
                  key=lambda p: p.row_id)


def claim(conn: Connection, limit: int, older_than: timedelta = timedelta(0)) -> list[Pending]:
    """The oldest messages queued at least `older_than` ago (younger ones are their own relay's to publish). On
    PostgreSQL the rows stay locked (SKIP LOCKED) until the caller's transaction ends, so relays of several
    workers publish disjoint rows; SQLite has one writer anyway."""
    query = (select(outbox.c.id, outbox.c.msg_id, outbox.c.subject, outbox.c.payload, outbox.c.born)
             .order_by(outbox.c.id).limit(limit))
    if older_than:
        query = query.where(outbox.c.created < datetime.now(UTC) - older_than)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [Pending(r.id, OutboxMessage(r.msg_id, r.subject, bytes(r.payload), r.born)) for r in conn.execute(query)]


def remove(conn: Connection, row_ids: Sequence[int]) -> None:
    """Forget messages the bus acknowledged."""
    if row_ids:
        conn.execute(delete(outbox).where(outbox.c.id.in_(list(row_ids))))


def backlog(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(outbox)).scalar_one()
