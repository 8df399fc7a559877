"""taxii keyset indexes: a page is an index seek for every filter (version flags, type, version, id)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:40:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("taxii_objects", schema=None) as batch_op:
        # (collection_id, object_id) is the prefix of the unique (collection_id, object_id, version) index;
        # (collection_id, date_added, pk) and (collection_id, is_latest, date_added, pk) give way to the
        # per-(is_latest, is_first) ranges that storage.query_objects merges
        batch_op.drop_index("ix_taxii_objects_object")
        batch_op.drop_index("ix_taxii_objects_latest")
        batch_op.drop_index("ix_taxii_objects_added")
        batch_op.create_index("ix_taxii_objects_page", ["collection_id", "is_latest", "is_first", "date_added", "pk"],
                              unique=False)
        batch_op.create_index("ix_taxii_objects_type",
                              ["collection_id", "type", "is_latest", "is_first", "date_added", "pk"], unique=False)
        batch_op.create_index("ix_taxii_objects_version", ["collection_id", "version", "date_added", "pk"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("taxii_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_taxii_objects_version")
        batch_op.drop_index("ix_taxii_objects_type")
        batch_op.drop_index("ix_taxii_objects_page")
        batch_op.create_index("ix_taxii_objects_added", ["collection_id", "date_added", "pk"], unique=False)
        batch_op.create_index("ix_taxii_objects_latest", ["collection_id", "is_latest", "date_added", "pk"],
                              unique=False)
        batch_op.create_index("ix_taxii_objects_object", ["collection_id", "object_id"], unique=False)
