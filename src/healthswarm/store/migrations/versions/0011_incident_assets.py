"""incident assets: one row per asset of each incident, with the incident's state, severity, stage (as its rank
in the kill chain) and last_seen copied beside it, so the views that ask which assets have incidents (the
ecosystem view, an asset's incidents) read one narrow indexed table instead of every incident's JSON document;
filled here from the stored documents

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 22:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# the incidents table as this revision knows it: only the columns the fill reads
_incidents = sa.table("incidents", sa.column("id", sa.String()), sa.column("state", sa.String()),
                      sa.column("stage", sa.String()), sa.column("severity", sa.Integer()),
                      sa.column("last_seen", sa.DateTime(timezone=True)), sa.column("document", sa.JSON()))
_FILL_BATCH = 5_000
# model.incident.Stage as this revision knows it: the stage names in kill-chain order
_STAGE_RANK = {name: rank for rank, name in enumerate(
    ("reconnaissance", "initial-access", "execution", "lateral-movement", "objectives"))}


def upgrade() -> None:
    incident_assets = op.create_table(
        "incident_assets",
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("stage_rank", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name=op.f("fk_incident_assets_incident_id_incidents")),
        sa.PrimaryKeyConstraint("incident_id", "asset_id", name=op.f("pk_incident_assets")),
    )
    # each asset's incidents in the incident board's order (covering: the ecosystem view reads the index alone)
    op.create_index("ix_incident_assets_asset_id", "incident_assets",
                    ["asset_id", sa.text("severity DESC"), sa.text("last_seen DESC"), "incident_id", "state"])
    # each asset's worst incident first: the most severe, then the furthest stage, then the board's order
    op.create_index("ix_incident_assets_worst", "incident_assets",
                    ["asset_id", sa.text("severity DESC"), sa.text("stage_rank DESC"), sa.text("last_seen DESC"),
                     "incident_id", "state"])
    conn = op.get_bind()
    rows = []
    for r in conn.execute(sa.select(_incidents.c.id, _incidents.c.state, _incidents.c.stage, _incidents.c.severity,
                                    _incidents.c.last_seen, _incidents.c.document["assets"].label("assets"))):
        rows += [{"incident_id": r.id, "asset_id": asset_id, "state": r.state, "severity": r.severity,
                  "stage_rank": _STAGE_RANK[r.stage], "last_seen": r.last_seen}
                 for asset_id in dict.fromkeys(r.assets or ())]
        if len(rows) >= _FILL_BATCH:
            conn.execute(sa.insert(incident_assets), rows)
            rows = []
    if rows:
        conn.execute(sa.insert(incident_assets), rows)


def downgrade() -> None:
    op.drop_index("ix_incident_assets_worst", table_name="incident_assets")
    op.drop_index("ix_incident_assets_asset_id", table_name="incident_assets")
    op.drop_table("incident_assets")
