"""Alembic environment: runs on the engine the store hands over (no alembic.ini needed)."""

from alembic import context

from healthswarm.store import (  # noqa: F401 - register their tables
    api_tables,
    respond_tables,
    taxii_tables,
    worker_tables,
)
from healthswarm.store.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
