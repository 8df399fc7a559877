"""Fixtures of the API tests: the demo workspace built once per session, with API tables and tokens."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from healthswarm.api import create_app
from healthswarm.api.auth import create_token
from healthswarm.config import Settings
from healthswarm.demo.run import STEPS, DemoRun
from healthswarm.store import Store

ROLES = ("viewer", "analyst", "admin", "peer")


@dataclass
class DemoApi:
    workspace: Path
    store: Store
    app: FastAPI
    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_demo_workspace(workspace: Path) -> Store:
    """Run every demo step into `workspace` through the library."""
    store = Store.open(f"sqlite:///{workspace / 'healthswarm.db'}")
    run = DemoRun(store=store, workspace=workspace)
    for step in STEPS:
        step.run(run)
    return store


@functools.cache
def _built(base: Path) -> Path:
    workspace = base / "demo-ws"
    workspace.mkdir()
    build_demo_workspace(workspace).close()
    return workspace


@pytest.fixture
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, built once per session (cached by the session's temporary folder); tests copy it."""
    return _built(tmp_path_factory.getbasetemp())


def open_demo_api(source: Path, target: Path, stream_poll: float | None = None) -> DemoApi:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "healthswarm.db", target / "healthswarm.db")
    store = Store.open(f"sqlite:///{target / 'healthswarm.db'}")
    with store.transaction() as conn:
        tokens = {role: create_token(conn, f"test-{role}", role) for role in ROLES}
    app = create_app(Settings(workspace=target), engine=store.engine, stream_poll=stream_poll)
    return DemoApi(target, store, app, tokens)


@pytest.fixture
def demo_api(demo_workspace: Path, tmp_path: Path) -> Iterator[DemoApi]:
    api = open_demo_api(demo_workspace, tmp_path / "api-ws")
    yield api
    api.store.close()


@pytest.fixture
def client(demo_api: DemoApi) -> Iterator[TestClient]:
    with TestClient(demo_api.app, raise_server_exceptions=False) as c:
        yield c
