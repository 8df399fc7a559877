"""Persistence: SQLAlchemy tables, Alembic migrations and one repository module per stage."""

from healthswarm.store.store import Store

__all__ = ["Store"]
