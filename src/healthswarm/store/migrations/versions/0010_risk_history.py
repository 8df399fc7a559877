"""risk history: one row per organisation per risk assessment (risk.history), for the risk-over-time plots

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("expected_harm", sa.Float(), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("assets_at_risk", sa.Integer(), nullable=False),
        sa.Column("profiles", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_history")),
        sa.UniqueConstraint("assessed_at", "organisation", name=op.f("uq_risk_history_assessed_at")),
    )
    op.create_index("ix_risk_history_organisation_assessed_at", "risk_history", ["organisation", "assessed_at"])


def downgrade() -> None:
    op.drop_index("ix_risk_history_organisation_assessed_at", table_name="risk_history")
    op.drop_table("risk_history")
