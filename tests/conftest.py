"""Shared fixtures: the real third-party data, and a store on every backend the suite must pass on.

Service-backed tests skip when the service is absent on a developer's machine, but with
`HEALTHSWARM_REQUIRE_SERVICES=1` (set by `.ci/run`, and whenever CI=true) an absent service fails
the test instead: a skipped service test must not pass CI.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Table, create_engine, func, select, text

from healthswarm.store import Store
from healthswarm.store.tables import events

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HEALTHSWARM_SHARED_DATA", ROOT.parent / "shared" / "data"))
POSTGRES_ADMIN_URL = os.environ.get("HEALTHSWARM_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment (execnet sets them), and the CLI's
# console takes its width from COLUMNS when it is built: the CLI's output would wrap at 80 columns in one worker and
# not in another. The suite runs as a user's pipe would, with no COLUMNS unless a test sets it.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def services_required() -> bool:
    return os.environ.get("HEALTHSWARM_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


def service_unavailable(reason: str) -> None:
    """Skip on a developer machine; fail where services are required (CI)."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def shared(*parts: str) -> Path:
    """A path under ../shared/data; the test skips cleanly when the data is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (tests read ../shared/data beside the checkout)")
    return path


def wait_until(what: str, check: Callable[[], bool], seconds: float) -> None:
    """Poll `check` until it holds; fail naming `what` after `seconds` (bounded, unlike a bare loop)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


@contextmanager
def uvicorn_in_thread(config: uvicorn.Config) -> Iterator[uvicorn.Server]:
    """A real uvicorn server for `config` in a daemon thread, started before the body runs, stopped after."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def rows_in(url: str, table: Table = events) -> int:
    """Rows of a table in the database at `url`, read by a connection of its own (another process may be
    writing it); 0 while the schema does not exist yet."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    except Exception:  # the ingesting process has not created the schema yet
        return 0
    finally:
        engine.dispose()


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database named `<prefix>_<random>`, dropped on exit."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means the service is not there
        admin.dispose()
        service_unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL}: {type(exc).__name__}: {exc}".splitlines()[0])
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session, dropped at the end."""
    with postgres_database("healthswarm_test") as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_store(postgres_url: str) -> Iterator[Store]:
    store = Store.open(postgres_url)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path / 'test.db'}")
        yield s
        s.close()
    else:
        s = request.getfixturevalue("_postgres_store")
        s.clear()
        yield s
        s.clear()
