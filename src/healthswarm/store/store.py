"""The Store: one engine, migrated, shared by the repositories of each stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, delete

from healthswarm.store.api_tables import API_TABLES
from healthswarm.store.db import create_store_engine, migrate
from healthswarm.store.respond_tables import RESPOND_TABLES
from healthswarm.store.tables import ALL_TABLES
from healthswarm.store.taxii_tables import SHARE_TABLES
from healthswarm.store.worker_tables import WORKER_TABLES


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = create_store_engine(url)
        migrate(engine)
        return cls(engine)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back whole on any error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def clear(self) -> None:
        """Delete every row (tests and `demo --reset`); the schema stays."""
        with self.transaction() as conn:
            for table in reversed(ALL_TABLES + SHARE_TABLES + RESPOND_TABLES + API_TABLES + WORKER_TABLES):
                conn.execute(delete(table))

    def close(self) -> None:
        self.engine.dispose()
