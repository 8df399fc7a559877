"""events' JSON columns compressed with lz4 on PostgreSQL: a row whose `fields` and `original` pass TOAST's
threshold (~2 KB: Suricata alerts with payloads, EVTX records) was compressed with pglz as it was stored, a
quarter of the server's CPU for a COPY of Suricata EVE rows (bench/ingest.py, postgresql_copy_profile);
lz4 costs a fraction of that. Rows stored before keep their pglz values (both are read alike). Nothing to
do on SQLite, which does not compress; nor on a PostgreSQL built without lz4, which keeps pglz.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:25:00.000000
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    # the setting and its lz4 value exist from PostgreSQL 14 on, when the server was built with lz4
    values = bind.exec_driver_sql(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").scalar()
    return values is not None and "lz4" in values


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE events ALTER COLUMN fields SET COMPRESSION lz4, "
                   "ALTER COLUMN original SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE events ALTER COLUMN fields SET COMPRESSION pglz, "
                   "ALTER COLUMN original SET COMPRESSION pglz")
