"""Tables of the sharing layer: indicators received or raised, and the TAXII 2.1 server's collections,
objects, status resources, tokens and rights. Same `metadata` as `tables.py` (the lead adds the Alembic
migration); `SHARE_TABLES` lists them in creation order.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from healthswarm.store.tables import metadata

share_indicators = Table(
    "share_indicators",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Indicator.key: (source, type, value); the same indicator from the same source is stored once
    Column("key", String(64), nullable=False, unique=True),
    Column("value", Text, nullable=False),
    Column("type", String(32), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("confidence", Integer, nullable=False),
    # "" for our own, else the peer's pseudonymous STIX identity id
    Column("source", String(200), nullable=False, default=""),
    Column("tlp", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("techniques", JSON, nullable=False),
    Column("stix_id", String(200), nullable=False, default=""),
    Column("labels", JSON, nullable=False),
    Column("extra", JSON, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)
Index("ix_share_indicators_value", share_indicators.c.type, share_indicators.c.value)

taxii_collections = Table(
    "taxii_collections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("api_root", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("alias", String(100), nullable=True),
    Column("media_types", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

taxii_objects = Table(
    "taxii_objects",
    metadata,
    # insertion order; with date_added, the paging order and the `next` cursor
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("collection_id", String(64), ForeignKey("taxii_collections.id", ondelete="CASCADE"), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("type", String(100), nullable=False),
    # `modified`, else `created`, else the date added (SCOs and marking definitions)
    Column("version", String(40), nullable=False),
    Column("spec_version", String(8), nullable=False),
    Column("date_added", DateTime(timezone=True), nullable=False),
    # the newest / oldest version of its object in its collection (match[version]=last, the default / first)
    Column("is_latest", Boolean, nullable=False),
    Column("is_first", Boolean, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    UniqueConstraint("collection_id", "object_id", "version", name="uq_taxii_objects_collection_object_version"),
)
# A page is the first `limit` rows in (date_added, pk) order that match the filters. Each index below
# serves one kind of filter as an equality prefix followed by that order, so a page is an index seek
# that stops after `limit` rows (keyset pagination; `next` is a row-value seek past the cursor):
# - no match[type]: one range per (is_latest, is_first) pair that match[version] admits
#   (last: (1, 0) and (1, 1); first: (0, 1) and (1, 1); all: the four), merged by storage.query_objects;
# - match[type]: the same, per listed type;
# - match[version]=<timestamp>: one range per timestamp;
# - match[id] and single objects: the unique (collection_id, object_id, version) index.
Index("ix_taxii_objects_page", taxii_objects.c.collection_id, taxii_objects.c.is_latest, taxii_objects.c.is_first,
      taxii_objects.c.date_added, taxii_objects.c.pk)
Index("ix_taxii_objects_type", taxii_objects.c.collection_id, taxii_objects.c.type, taxii_objects.c.is_latest,
      taxii_objects.c.is_first, taxii_objects.c.date_added, taxii_objects.c.pk)
Index("ix_taxii_objects_version", taxii_objects.c.collection_id, taxii_objects.c.version, taxii_objects.c.date_added,
      taxii_objects.c.pk)

taxii_status = Table(
    "taxii_status",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("api_root", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request_timestamp", DateTime(timezone=True), nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("success_count", Integer, nullable=False),
    Column("failure_count", Integer, nullable=False),
    Column("pending_count", Integer, nullable=False),
    # {"successes": [...], "failures": [...], "pendings": [...]} as TAXII status details
    Column("details", JSON, nullable=False),
)

taxii_tokens = Table(
    "taxii_tokens",
    metadata,
    # SHA-256 of the bearer token, hex; the token itself is shown once and never stored
    Column("token_hash", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # "admin" (every collection) or "peer" (rights below)
    Column("created", DateTime(timezone=True), nullable=False),
)

taxii_rights = Table(
    "taxii_rights",
    metadata,
    Column("token_hash", String(64), ForeignKey("taxii_tokens.token_hash", ondelete="CASCADE"), primary_key=True),
    Column("collection_id", String(64), ForeignKey("taxii_collections.id", ondelete="CASCADE"), primary_key=True),
    Column("can_read", Boolean, nullable=False),
    Column("can_write", Boolean, nullable=False),
)

SHARE_TABLES = (share_indicators, taxii_collections, taxii_objects, taxii_status, taxii_tokens, taxii_rights)
