"""Repository of API tokens: only a token's SHA-256 is stored, with its name, role and whether it was revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from healthswarm.store.api_tables import api_tokens


@dataclass(frozen=True, slots=True)
class StoredToken:
    id: int
    token_hash: str
    name: str
    role: str
    created: datetime
    revoked: bool


def _stored_token(row: Any) -> StoredToken:
    # SQLite hands DateTime back without its zone; everything stored is UTC
    created = row.created.replace(tzinfo=UTC) if row.created.tzinfo is None else row.created
    return StoredToken(row.id, row.token_hash, row.name, row.role, created, row.revoked)


def save_token(conn: Connection, token_hash: str, name: str, role: str) -> None:
    conn.execute(insert(api_tokens).values(token_hash=token_hash, name=name, role=role, created=datetime.now(UTC),
                                           revoked=False))


def load_token(conn: Connection, token_id: int) -> StoredToken | None:
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    return None if row is None else _stored_token(row)


def find_token(conn: Connection, token_hash: str) -> StoredToken | None:
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == token_hash)).first()
    return None if row is None else _stored_token(row)


def revoke_token(conn: Connection, token_id: int) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked=True))


def load_tokens(conn: Connection) -> list[StoredToken]:
    return [_stored_token(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.id))]
