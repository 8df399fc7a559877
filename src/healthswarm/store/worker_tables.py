"""Tables of the scaled-out workers: the transactional outbox.

A worker writes an outbox row in the same transaction as the effect it announces (stored events, a stored
alert); a relay publishes the rows to JetStream and deletes them once acknowledged (worker/relay.py). A crash
can therefore never leave an effect without its message, nor a message without its effect. `msg_id` is the
effect's idempotency key (the event key, the alert id): it is the row's unique key here and the `Nats-Msg-Id`
on the bus, so a row published twice (crash between publish and delete) is dropped by JetStream. The relay
reads the oldest rows first, in the primary key's order.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, LargeBinary, String, Table, Text

from healthswarm.store.tables import metadata

outbox = Table(
    "outbox",
    metadata,
    # BIGINT on PostgreSQL (rows come and go forever); INTEGER on SQLite, where only that is the rowid
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("msg_id", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # when the record this message descends from entered the system (epoch seconds): end-to-end latency
    Column("born", Float, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

WORKER_TABLES = (outbox,)
