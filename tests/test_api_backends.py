"""The incident and ecosystem services behind the API, and its endpoints, on SQLite and on PostgreSQL (JSON
fields read in the database, paging subqueries, the audit trail), over the demo ecosystem with a few correlated
alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from healthswarm.api import create_app
from healthswarm.api.auth import create_token
from healthswarm.config import Settings
from healthswarm.demo import ECOSYSTEM
from healthswarm.detect import service as detect_service
from healthswarm.detect.correlate import Correlator
from healthswarm.inventory import load_inventory
from healthswarm.inventory.service import ecosystem
from healthswarm.model import Alert, AttackRef, Event, EventRef
from healthswarm.model.event import event_key
from healthswarm.model.incident import IncidentState
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents
from healthswarm.store.api_tables import api_tokens, audit_log
from healthswarm.store.events import insert_events
from healthswarm.store.inventory import replace_inventory

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def fill(store: Store) -> list[str]:
    """The demo inventory, 30 events, and alerts on two pumps and a workstation; returns the incident ids."""
    with store.transaction() as conn:
        conn.execute(audit_log.delete())
        conn.execute(api_tokens.delete())
    inventory = load_inventory([ECOSYSTEM])
    pumps = [a.id for a in inventory.assets if a.kind == "infusion-pump"][:2]
    workstation = next(a.id for a in inventory.assets if a.kind in ("workstation", "clinical-workstation"))
    alerts = [
        Alert("sigma", f"r{n}", f"rule {n}", "high", T0 + timedelta(minutes=n), (EventRef("f", n, f"k{n}"),),
              (AttackRef("T1021.002", "SMB"),), (AttackRef("TA0008", "Lateral Movement", "lateral-movement"),),
              (asset,))
        for n, asset in enumerate([pumps[0], pumps[0], pumps[1], workstation])
    ]
    incidents = Correlator(inventory.assets).add_all(alerts)
    events = [Event(T0 + timedelta(seconds=n), {"observer.type": "hl7" if n % 2 else "dicom", "asset.id": pumps[0]},
                    None, "t", n + 1, n + 1, event_key("t", n)) for n in range(30)]
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
        save_alerts(conn, alerts, {a: i.id for i in incidents for a in i.alert_ids})
        save_incidents(conn, incidents)
        insert_events(conn, events)
    return [i.id for i in incidents]


def test_services_on_every_backend(store: Store) -> None:
    ids = fill(store)
    with store.read() as conn:
        items, total = detect_service.list_incidents(conn, limit=1)
        assert total == len(ids) == 3 and len(items) == 1
        assert isinstance(items[0]["assets"], list) and items[0]["alerts"] >= 1
        second, _ = detect_service.list_incidents(conn, offset=1, limit=5)
        assert {i["id"] for i in items + second} == set(ids)
        eco = ecosystem(conn)
        marked = {a["id"] for a in eco["assets"] if a["incident"]}
        assert len(marked) == 3
        assert detect_service.attack_matrix(conn)["tactics"][0]["techniques"][0]["id"] == "T1021.002"
        assert detect_service.summary(conn)["open_by_stage"]["lateral-movement"] == 3
        # four alerts a minute apart: minute buckets, or one five-minute bucket when only two bars are wanted
        volume = detect_service.alert_volume(conn, buckets=48)
        assert volume["bucket_seconds"] == 60 and volume["start"] == T0.isoformat()
        assert volume["detectors"] == [{"detector": "sigma", "total": 4, "counts": [1, 1, 1, 1]}]
        assert detect_service.alert_volume(conn, buckets=2)["detectors"][0]["counts"] == [4]
        page, total = detect_service.list_alerts(conn, level="high", limit=2)
        assert total == 4 and [a["rule_id"] for a in page] == ["r3", "r2"]  # newest first
        assert detect_service.get_alert(conn, page[0]["id"])["incident_id"] in ids
        before = detect_service.change_marker(conn)
    with store.transaction() as conn:
        done = detect_service.set_incident_state(conn, ids[0], IncidentState.CLOSED, "ana", "analyst", "done")
    assert done is not None and done["state"] == "closed" and done["history"][0]["after"] == {"state": "closed"}
    with store.read() as conn:
        assert detect_service.change_marker(conn) != before
        assert len([a for a in ecosystem(conn)["assets"] if a["incident"]]) < 3
        assert detect_service.summary(conn)["by_state"] == {"closed": 1, "new": 2}


def test_endpoints_on_every_backend(store: Store, tmp_path: Path) -> None:
    fill(store)
    with store.transaction() as conn:
        token = create_token(conn, "t", "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(workspace=tmp_path), engine=store.engine)) as client:
        page = client.get("/api/v1/events?limit=10&observer_type=hl7", headers=headers).json()
        assert len(page["items"]) == 10 and page["next_cursor"]
        rest = client.get(f"/api/v1/events?limit=10&observer_type=hl7&cursor={page['next_cursor']}",
                          headers=headers).json()
        assert len(rest["items"]) == 5 and rest["next_cursor"] is None
        assert client.get("/api/v1/incidents", headers=headers).json()["total"] == 3
        assert client.get("/api/v1/incidents/INC-x", headers=headers).status_code == 404


def test_the_attack_map_counts_alerts_without_a_tactic_apart(store: Store) -> None:
    # a baseline deviation names a technique but no tactic: no "unknown" column, counted apart
    fill(store)
    deviation = Alert("baseline", "b1", "deviation", "medium", T0 + timedelta(minutes=9), (EventRef("f", 9, "k9"),),
                      (AttackRef("T1571", "Non-Standard Port"),), ())
    no_technique = Alert("baseline", "b2", "volume", "low", T0 + timedelta(minutes=10), (EventRef("f", 10, "k10"),))
    with store.transaction() as conn:
        save_alerts(conn, [deviation, no_technique], {})
    with store.read() as conn:
        matrix = detect_service.attack_matrix(conn)
    assert [t["tactic"] for t in matrix["tactics"]] == ["lateral-movement"]
    assert matrix["tactics"][0]["techniques"] == [{"id": "T1021.002", "name": "SMB", "count": 4}]
    assert matrix["without_tactic"] == 1 and matrix["max"] == 4
