"""Tables of the response stage: cases (with an optimistic-locking version), their hash-chained audit
log, and the indicators a case asked detection to watch. Same `metadata` as `tables.py` (the lead adds
the Alembic migration); `RESPOND_TABLES` lists them in creation order.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, String, Table, Text, UniqueConstraint

from healthswarm.store.tables import metadata

respond_cases = Table(
    "respond_cases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("phase", String(32), nullable=False, index=True),
    Column("severity", Integer, nullable=False),
    Column("incident_id", String(64), nullable=True, index=True),
    # optimistic locking: every change sets version = version + 1 WHERE version = the version read
    Column("version", Integer, nullable=False),
    Column("opened", DateTime(timezone=True), nullable=False),
    Column("aware_at", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    # the whole case as Case.as_dict(): owners, tasks, notes, evidence, observables, assets
    Column("document", JSON, nullable=False),
)

respond_audit = Table(
    "respond_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("seq", Integer, nullable=False),  # 1, 2, … within one case
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("case_id", "seq", name="uq_respond_audit_case_seq"),
)

respond_watchlist = Table(
    "respond_watchlist",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(32), nullable=False),
    Column("value", Text, nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("added", DateTime(timezone=True), nullable=False),
    UniqueConstraint("type", "value", name="uq_respond_watchlist_type_value"),
)

RESPOND_TABLES = (respond_cases, respond_audit, respond_watchlist)
