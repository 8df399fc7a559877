"""The inventory round-trips through the store on SQLite and PostgreSQL; a failed load changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from healthswarm.inventory import load_inventory
from healthswarm.model import Inventory
from healthswarm.store import Store
from healthswarm.store.db import MIGRATIONS, current_revision, migrate
from healthswarm.store.inventory import count_assets, replace_inventory
from healthswarm.store.inventory import load_inventory as stored

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo" / "ecosystem.yaml"


def test_round_trip(store: Store) -> None:
    inv = load_inventory([DEMO])
    with store.transaction() as conn:
        replace_inventory(conn, inv)
    with store.read() as conn:
        back = stored(conn)
    assert {a.id: a for a in back.assets} == {a.id: a for a in inv.assets}
    assert sorted(back.organisations, key=lambda o: o.id) == sorted(inv.organisations, key=lambda o: o.id)
    assert set(back.flows) == set(inv.flows) and set(back.dependencies) == set(inv.dependencies)


def test_replacing_is_whole_and_a_failed_load_leaves_the_old_inventory(store: Store) -> None:
    inv = load_inventory([DEMO])
    with store.transaction() as conn:
        replace_inventory(conn, inv)
    # an inventory whose flow names an unknown asset violates a foreign key in the middle of the load
    broken = Inventory(
        organisations=inv.organisations, zones=inv.zones, assets=inv.assets[:10],
        flows=inv.flows, dependencies=(),
    )
    with pytest.raises(Exception), store.transaction() as conn:  # noqa: B017 - any DB error will do
        replace_inventory(conn, broken)
    with store.read() as conn:
        assert count_assets(conn) == len(inv.assets)


def test_migrations_are_at_head_and_idempotent(store: Store) -> None:
    head = sorted(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))[-1].split("_")[0]
    assert current_revision(store.engine) == head
    migrate(store.engine)
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM assets")).scalar_one() == 0
