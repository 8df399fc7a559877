"""The store's tables (SQLAlchemy Core). Alembic migrations under `migrations/` create them.

Core rather than the ORM: the hot paths are bulk inserts of events and assets, where Core
`executemany` is several times faster, and records are plain `model` dataclasses anyway.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("country", String(64), nullable=False, default=""),
)

zones = Table(
    "zones",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("organisation", String(200), ForeignKey("organisations.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("exposure", String(32), nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("organisation", String(200), ForeignKey("organisations.id"), nullable=False, index=True),
    Column("zone", String(200), ForeignKey("zones.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("vendor", Text, nullable=False, default=""),
    Column("product", Text, nullable=False, default=""),
    Column("version", Text, nullable=False, default=""),
    Column("cpe", Text, nullable=False, default=""),
    Column("addresses", JSON, nullable=False),
    Column("hostnames", JSON, nullable=False),
    Column("safety", Integer, nullable=False),
    Column("confidentiality", Integer, nullable=False),
    Column("availability", Integer, nullable=False),
    Column("records", BigInteger, nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("hl7", JSON, nullable=True),  # {"applications": [...], "facility": ...} (model.inventory.Hl7Identity)
)

flows = Table(
    "flows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), ForeignKey("assets.id"), nullable=False),
    Column("target", String(200), ForeignKey("assets.id"), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("port", Integer, nullable=True),
)

dependencies = Table(
    "dependencies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), ForeignKey("assets.id"), nullable=False),
    Column("target", String(200), ForeignKey("assets.id"), nullable=False),
    Column("kind", String(32), nullable=False),
)

advisories = Table(
    "advisories",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("title", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("published", String(40), nullable=False, default=""),
    # the whole typed advisory, serialised; advisories are read whole for matching
    Column("document", JSON, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", String(200), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("advisory_id", String(200), ForeignKey("advisories.id", ondelete="CASCADE"), nullable=False),
    Column("cve", String(40), nullable=False),
    Column("status", String(32), nullable=False),
    Column("cvss_score", Float, nullable=True),
    Column("cvss_vector", Text, nullable=False, default=""),
    Column("cvss_version", String(8), nullable=False, default=""),
    Column("severity", String(16), nullable=False, default=""),
    Column("cwe", JSON, nullable=False),
    Column("remediation", Text, nullable=False, default=""),
    Column("explanation", JSON, nullable=False),
    UniqueConstraint("asset_id", "advisory_id", "cve", name="uq_findings_asset_advisory_cve"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # idempotency key: the same record ingested twice is stored once
    Column("key", String(64), nullable=False, unique=True),
    Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
    Column("observer_type", String(32), nullable=False),
    Column("organization_id", String(200), nullable=True),
    Column("asset_id", String(200), nullable=True, index=True),
    Column("source", Text, nullable=False),
    # the record's line or record number in its source, for people (hunt output, the API)
    Column("record", BigInteger, nullable=False, server_default="0"),
    Column("position", BigInteger, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("original", JSON, nullable=True),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("format", String(32), nullable=False, default=""),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("received", DateTime(timezone=True), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    # a source's stable name (path, mqtt topic, nats stream/consumer)
    Column("source", Text, primary_key=True),
    # what identifies the source's current content (device+inode+first bytes for a file)
    Column("identity", Text, nullable=False, default=""),
    Column("position", BigInteger, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    # Alert.id: deterministic from detector, rule and events, so a re-run stores an alert once
    Column("id", String(64), primary_key=True),
    Column("detector", String(64), nullable=False),
    Column("rule_id", String(200), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("level", String(16), nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
    Column("incident_id", String(64), nullable=True, index=True),
    # the whole alert as Alert.as_dict(): techniques, tactics, events, assets, details
    Column("document", JSON, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False, index=True),
    # the whole incident as Incident.as_dict(): assets, organisations, techniques, timeline
    Column("document", JSON, nullable=False),
)

# the incident board lists the most severe, most recent first
Index("ix_incidents_severity_last_seen", incidents.c.severity, incidents.c.last_seen)

ALL_TABLES = (
    organisations, zones, assets, flows, dependencies, advisories, findings, events, quarantine, checkpoints,
    alerts, incidents,
)

risk_history = Table(
    "risk_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # one row per organisation per assessment (risk.history): the figures `risk assess` shows for it
    Column("assessed_at", DateTime(timezone=True), nullable=False),
    Column("organisation", String(200), nullable=False),
    # the worst attacker profile's expected harm on the organisation, that profile, and its assets at risk
    Column("expected_harm", Float, nullable=False),
    Column("profile", String(64), nullable=False),
    Column("assets_at_risk", Integer, nullable=False),
    # every profile's {"expected_harm", "assets_at_risk"}
    Column("profiles", JSON, nullable=False),
    Column("source", String(32), nullable=False),  # "risk assess" or "agent"
    UniqueConstraint("assessed_at", "organisation"),
)
Index("ix_risk_history_organisation_assessed_at", risk_history.c.organisation, risk_history.c.assessed_at)

ALL_TABLES += (risk_history,)  # appended here: `Store.clear` empties it with the rest

incident_assets = Table(
    "incident_assets",
    metadata,
    # one row per asset of each incident, kept in step by every incident write (store.alerts): which assets have
    # incidents is read here, not out of every incident's JSON document; state, severity, stage and last_seen
    # are the incident's own columns copied, so the ecosystem view finds each asset's incidents, in the board's
    # order, and its worst one in the indexes below alone
    Column("incident_id", String(64), ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", String(200), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("stage_rank", Integer, nullable=False),  # the stage's place in the kill chain (int(Stage)): SQL orders by it
    Column("last_seen", DateTime(timezone=True), nullable=False),
)
# each asset's incidents in the incident board's order (covering: the ecosystem view reads the index alone)
Index("ix_incident_assets_asset_id", incident_assets.c.asset_id, incident_assets.c.severity.desc(),
      incident_assets.c.last_seen.desc(), incident_assets.c.incident_id, incident_assets.c.state)
# each asset's worst incident first: the most severe, then the furthest stage, then the board's order
Index("ix_incident_assets_worst", incident_assets.c.asset_id, incident_assets.c.severity.desc(),
      incident_assets.c.stage_rank.desc(), incident_assets.c.last_seen.desc(), incident_assets.c.incident_id,
      incident_assets.c.state)

ALL_TABLES += (incident_assets,)  # appended here: `Store.clear` empties it with the rest
