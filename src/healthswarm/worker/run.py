"""Entry point of a scale-out role process (`healthswarm agent run --role …`, alias `healthswarm worker`): logging,
the store, the worker; returns the exit status."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from sqlalchemy import text

from healthswarm.agent import logs
from healthswarm.store import Store
from healthswarm.store.db import create_store_engine, migrate
from healthswarm.worker.config import WorkerConfig
from healthswarm.worker.service import Worker

_MIGRATION_LOCK = int.from_bytes(hashlib.blake2b(b"healthswarm-migrate", digest_size=8).digest(), "big", signed=True)


def open_store(url: str) -> Store:
    """The store, migrated; on PostgreSQL under an advisory lock, since workers started together on a new
    database would otherwise all try to create the schema at once."""
    engine = create_store_engine(url)
    if engine.dialect.name != "postgresql":
        migrate(engine)
        return Store(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        conn.commit()
        try:
            migrate(engine)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
    return Store(engine)


def run_worker(config: WorkerConfig, workspace: Path, level: int = logging.INFO) -> int:
    logs.setup({"role": config.role.value, "pid": os.getpid()}, level)
    store = open_store(config.db)
    try:
        return Worker(config, store, workspace).run()
    finally:
        store.close()
