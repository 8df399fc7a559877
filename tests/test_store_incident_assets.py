"""Table incident_assets (migration 0011): one row per asset of each incident, with the incident's state,
severity, stage rank and last_seen. The migration fills it from the stored incident documents; every incident
write keeps it in step (save_incidents, state changes, the correlate stage and its merges); the ecosystem view
reads it and shows what the documents say, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, select

from conftest import postgres_database
from healthswarm.demo import ECOSYSTEM
from healthswarm.detect.correlate_stage import CorrelateStage
from healthswarm.inventory import load_inventory
from healthswarm.inventory.service import ecosystem, get_asset
from healthswarm.model import Alert, EventRef
from healthswarm.model.incident import CLOSED_STATES, STAGE_NAMES, Incident, IncidentState, Stage
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents, save_alerts, save_incidents, set_incident_state
from healthswarm.store.db import MIGRATIONS, create_store_engine
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.tables import incident_assets, incidents, metadata

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
INVENTORY = load_inventory([ECOSYSTEM])
ASSETS = [a.id for a in INVENTORY.assets]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database without any schema, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_database("healthswarm_migration") as url:
        yield url


def incident(n: int, assets: list[str], severity: int, stage: Stage, state: IncidentState = IncidentState.NEW,
             merged_from: tuple[str, ...] = ()) -> Incident:
    return Incident(id=f"inc-{n}", title=f"incident {n}", first_seen=T0, last_seen=T0 + timedelta(minutes=n % 7),
                    state=state, stage=stage, severity=severity, assets=set(assets), merged_from=list(merged_from))


def varied_incidents() -> list[Incident]:
    """Forty incidents over nine assets: one to three assets each, every severity and stage, equal severities and
    last_seen times (ties broken by id), some closed or false positives."""
    states = list(IncidentState)
    stages = list(Stage)
    return [incident(n, [ASSETS[(n * k) % 9] for k in range(1, 2 + n % 3)], n % 5, stages[(n * 3) % len(stages)],
                     states[n % len(states)]) for n in range(40)]


def rows_from_documents(conn: Connection) -> set[tuple[str, str, str, str, int, datetime]]:
    """(incident, asset, state, stage, severity, last_seen) for every asset of every stored incident, as its
    document says."""
    return {(i.id, a, str(i.state), str(i.stage), i.severity, i.last_seen)
            for i in load_incidents(conn) for a in i.assets}


def table_rows(conn: Connection) -> set[tuple[str, str, str, str, int, datetime]]:
    c = incident_assets.c
    found = [(*r[:3], STAGE_NAMES[r.stage_rank], r.severity, aware(r.last_seen))
             for r in conn.execute(select(c.incident_id, c.asset_id, c.state, c.stage_rank, c.severity, c.last_seen))]
    assert len(found) == len(set(found))
    return set(found)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back UTC without its zone


def view_from_documents(conn: Connection) -> dict[str, tuple[dict[str, Any] | None, list[str]]]:
    """Per inventory asset, its worst open incident and its open incidents in board order, worked out from the
    incident documents alone: what the ecosystem view must show."""
    board = sorted((i for i in load_incidents(conn) if i.state not in CLOSED_STATES),
                   key=lambda i: (-i.severity, -i.last_seen.timestamp(), i.id))
    out: dict[str, tuple[dict[str, Any] | None, list[str]]] = {}
    for asset in ASSETS:
        on = [i for i in board if asset in i.assets]
        worst = max(on, key=lambda i: (i.severity, STAGE_NAMES.index(str(i.stage))), default=None)
        out[asset] = (None if worst is None else {"id": worst.id, "severity": worst.severity,
                                                  "stage": str(worst.stage), "state": str(worst.state)},
                      [i.id for i in on])
    return out


def view(conn: Connection) -> dict[str, tuple[dict[str, Any] | None, list[str]]]:
    return {a["id"]: (a["incident"], a["incidents"]) for a in ecosystem(conn)["assets"]}


def assert_asset_pages_match_the_documents(conn: Connection) -> None:
    """An asset's page lists every incident on it (open or not) in board order, as the documents say."""
    board = sorted(load_incidents(conn), key=lambda i: (-i.severity, -i.last_seen.timestamp(), i.id))
    for asset in ASSETS[:10] + ASSETS[20:21]:
        page = get_asset(conn, asset)
        assert page is not None
        assert [i["id"] for i in page["incidents"]] == [i.id for i in board if asset in i.assets]


def test_migration_0011_fills_the_table_from_the_stored_incident_documents(empty_url: str) -> None:
    engine = create_store_engine(empty_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "0010")
    stored = varied_incidents()
    with engine.begin() as conn:  # a store of revision 0010: incidents as documents only
        replace_inventory(conn, INVENTORY)
        conn.execute(insert(incidents), [
            {"id": i.id, "title": i.title, "state": str(i.state), "stage": str(i.stage), "severity": i.severity,
             "first_seen": i.first_seen, "last_seen": i.last_seen, "document": i.as_dict()} for i in stored])
    with engine.connect() as conn:
        before = view_from_documents(conn)
        expected = rows_from_documents(conn)
    engine.dispose()
    store = Store.open(empty_url)  # migrates to the newest revision
    try:
        with store.read() as conn:
            assert table_rows(conn) == expected
            assert len(expected) == sum(len(i.assets) for i in stored) == 79
            assert view(conn) == before
            assert sum(len(ids) for _, ids in before.values()) == 60  # the open incidents' assets only
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert not [d for d in diff if "incident_assets" in repr(d)], diff
    finally:
        store.close()


def test_every_incident_write_keeps_the_table_in_step(store: Store) -> None:
    with store.transaction() as conn:
        replace_inventory(conn, INVENTORY)
        save_incidents(conn, varied_incidents())
    with store.read() as conn:
        assert table_rows(conn) == rows_from_documents(conn) and len(table_rows(conn)) == 79
        assert view(conn) == view_from_documents(conn)
        assert_asset_pages_match_the_documents(conn)
        worst_on_first = view(conn)[ASSETS[0]][0]
    assert worst_on_first is not None
    with store.transaction() as conn:  # closing the worst incident of an asset takes it off the view
        assert set_incident_state(conn, worst_on_first["id"], IncidentState.CLOSED) == worst_on_first["state"]
    with store.read() as conn:
        assert table_rows(conn) == rows_from_documents(conn)
        assert view(conn) == view_from_documents(conn)
        assert worst_on_first["id"] not in view(conn)[ASSETS[0]][1]
    # rewritten with other assets, a higher severity and a new stage; inc-2 and inc-3 merged into inc-1 go
    grown = incident(1, [ASSETS[0], ASSETS[20]], 4, Stage.OBJECTIVES, merged_from=("inc-2", "inc-3"))
    with store.transaction() as conn:
        save_incidents(conn, [grown])
    with store.read() as conn:
        rows = table_rows(conn)
        assert rows == rows_from_documents(conn)
        assert {r[:5] for r in rows if r[0] == "inc-1"} == {("inc-1", ASSETS[0], "new", "objectives", 4),
                                                           ("inc-1", ASSETS[20], "new", "objectives", 4)}
        assert not {r for r in rows if r[0] in ("inc-2", "inc-3")}
        assert view(conn) == view_from_documents(conn)
        assert_asset_pages_match_the_documents(conn)
        assert view(conn)[ASSETS[20]] == ({"id": "inc-1", "severity": 4, "stage": "objectives", "state": "new"},
                                          ["inc-1"])
    store.clear()
    with store.read() as conn:
        assert table_rows(conn) == set()


def _alert(minutes: int, ip: str, asset: str) -> Alert:
    return Alert(detector="sigma", rule_id=f"r{minutes}", title="rule", level="high",
                 timestamp=T0 + timedelta(minutes=minutes), events=(EventRef("t", minutes, f"k{minutes}{ip}"),),
                 assets=(asset,), details={"entities": {"ip": [ip]}})


def test_the_correlate_stage_keeps_the_table_in_step_through_merges(store: Store) -> None:
    with store.transaction() as conn:
        replace_inventory(conn, INVENTORY)
    stage = CorrelateStage(store, f"hsia{uuid.uuid4().hex[:8]}")
    try:
        first = [_alert(0, "10.0.0.1", ASSETS[0]), _alert(1, "10.0.0.2", ASSETS[1]), _alert(2, "10.0.0.3", ASSETS[2])]
        bridge = _alert(3, "10.0.0.1", ASSETS[3])
        bridge.details["entities"]["ip"].append("10.0.0.2")  # joins the first two incidents: one is merged
        for batch in (first, [bridge]):
            with store.transaction() as conn:
                save_alerts(conn, batch)
            assert stage.active()
            stage.correlate(batch)
            with store.read() as conn:
                assert table_rows(conn) == rows_from_documents(conn)
                assert view(conn) == view_from_documents(conn)
        with store.read() as conn:
            stored = load_incidents(conn)
        assert len(stored) == 2
        assert sorted(sorted(i.assets) for i in stored) == sorted([sorted([*ASSETS[:2], ASSETS[3]]), [ASSETS[2]]])
    finally:
        stage.close()
