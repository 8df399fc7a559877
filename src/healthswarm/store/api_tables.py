"""Tables of the REST API: its tokens (only their SHA-256 is stored) and the audit log of state changes.

Defined on the store's `metadata`, so the store's Alembic migrations pick them up.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, String, Table, Text

from healthswarm.store.tables import metadata

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # hex SHA-256 of the token; the token itself is shown once and never stored
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
    # who: the token's name and role ("cli" for the command line)
    Column("actor", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    # what: e.g. incident.state, token.create, token.revoke
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(200), nullable=False, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("note", Text, nullable=False, default=""),
)

API_TABLES = (api_tokens, audit_log)
