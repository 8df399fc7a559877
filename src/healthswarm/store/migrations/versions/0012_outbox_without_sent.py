"""outbox without `sent`: the relay deletes a row once the bus acknowledged it, so no row is ever marked sent;
the column and its index (the relay's old "oldest unsent" query, now the primary key's order) go

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite drops a column by copying the table
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsent")
        batch_op.drop_column("sent")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_outbox_unsent", ["sent", "id"], unique=False)
