"""Alerts and incidents round-trip through the store on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from healthswarm.detect.correlate import Correlator
from healthswarm.model import Alert, AttackRef, EventRef
from healthswarm.store import Store
from healthswarm.store.alerts import load_alert, load_alerts, load_incidents, save_alerts, save_incidents

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def alert(minutes: int, rule: str, asset: str) -> Alert:
    return Alert(detector="sigma", rule_id=rule, title=f"rule {rule}", level="high",
                 timestamp=T0 + timedelta(minutes=minutes), events=(EventRef("f.json", minutes, f"k{minutes}"),),
                 tactics=(AttackRef("TA0002", "Execution", "execution"),), assets=(asset,))


def test_alerts_and_incidents_round_trip(store: Store) -> None:
    alerts = [alert(0, "a", "ws-1"), alert(5, "b", "ws-1"), alert(9, "c", "ws-2")]
    correlator = Correlator()
    incidents = correlator.add_all(alerts)
    incident_of = {a: i.id for i in incidents for a in i.alert_ids}
    with store.transaction() as conn:
        assert save_alerts(conn, alerts, incident_of) == 3
        assert save_alerts(conn, alerts) == 0  # stored once, whatever the re-runs
        save_incidents(conn, incidents)
    with store.read() as conn:
        stored = load_alerts(conn)
        assert [s.alert for s in stored] == alerts[::-1]  # typed records, equal to what was saved, newest first
        assert {s.incident_id for s in stored} == {i.id for i in incidents}
        placed = incident_of[alerts[0].id]
        assert [s.alert.rule_id for s in load_alerts(conn, incident=placed)] == [
            a.rule_id for a in alerts[::-1] if incident_of[a.id] == placed]
        assert load_alert(conn, alerts[2].id) == stored[0] and load_alert(conn, "nope") is None
        loaded = load_incidents(conn)
    # typed records equal to what was saved: timeline, path, entities, the worst alert's level and all
    assert sorted(loaded, key=lambda i: i.id) == sorted(incidents, key=lambda i: i.id)
    assert max(len(i.alert_ids) for i in loaded) == 2


def test_more_alerts_in_one_call_than_a_statement_takes_parameters(store: Store) -> None:
    """PostgreSQL takes at most 65,535 parameters a statement: 70,000 alerts saved in one call, and placed in one
    incident, are looked up and updated in slices."""
    moment = datetime(2026, 11, 27, 8, tzinfo=UTC)
    many = [Alert("sigma", f"r{i}", "t", "low", moment, events=(EventRef("f", i, f"k{i}", moment),))
            for i in range(70_000)]
    incident = Correlator([]).add(many[0])
    assert incident is not None
    incident.alert_ids.extend(a.id for a in many[1:])
    with store.transaction() as conn:
        assert save_alerts(conn, many) == 70_000
        assert save_alerts(conn, many[:10]) == 0
        save_incidents(conn, [incident])
    with store.read() as conn:
        assert {s.incident_id for s in load_alerts(conn)} == {incident.id}
