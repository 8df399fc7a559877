"""What an incident offers peers is selected once (`share.service.select_incidents`): a report for peers and the
swarm's items about the same incident offer the same indicators, and only that incident's alerts are read.

The demo's phishing incident is used as the batch demo stores it (its alerts name the C2 address only) and as
the live agent stores it: there the responder's block put the C2 address on the watchlist while the logs were
still coming, and the watchlist alerts on the later TLS connections name the C2 domain (their server name)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api_support import demo_workspace  # noqa: F401
from healthswarm.demo.run import DEMO_FOOTHOLD, DEMO_SENDER
from healthswarm.model import Alert, StoredAlert
from healthswarm.share import service
from healthswarm.share.sanitise import policy_for
from healthswarm.store import Store
from healthswarm.store import alerts as alert_store
from healthswarm.store.alerts import incident_alerts, load_alerts, load_incidents, save_alerts
from healthswarm.swarm.derive import items_from_store
from healthswarm.swarm.service import preview_gossip

C2 = ("ipv4", "198.51.100.77")
C2_DOMAIN = ("domain", "cdn-update.example")
OURS = ("domain", "updates.sta.example")   # a name under St. Aurelia's own domain: never an indicator


@pytest.fixture
def store(demo_workspace: Path, tmp_path: Path) -> Iterator[Store]:  # noqa: F811
    shutil.copy(demo_workspace / "healthswarm.db", tmp_path / "healthswarm.db")
    opened = Store.open(f"sqlite:///{tmp_path / 'healthswarm.db'}")
    yield opened
    opened.close()


def phishing(store: Store) -> str:
    """The incident the demo reports to Northfield (its own choice, `share_with_peer`)."""
    with store.read() as conn:
        return max(load_incidents(conn), key=lambda i: (DEMO_FOOTHOLD in i.assets, i.severity)).id


def offered(store: Store, incident: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(what a report for peers selects, what the swarm would publish) of `incident`'s indicators, in order."""
    known = service.sensitive_values(store, DEMO_SENDER)
    report = [(i.type, i.value) for i in service.select_incident(store, incident, known).indicators]
    swarm = [(d["type"], d["value"]) for kind, d in items_from_store(store, DEMO_SENDER, known, {incident})
             if kind == "indicator"]
    return report, swarm


def add_watchlist_alert(store: Store, incident: str) -> None:
    """A watchlist alert of the live agent's phishing incident (as stored there): a later beacon to the C2
    address, with the TLS server name; plus a name under our own domain, which must not be offered."""
    alert = Alert(detector="watchlist", rule_id=f"watchlist:ipv4:{C2[1]}", title=f"Watchlisted ipv4 {C2[1]} seen",
                  level="high", timestamp=datetime(2026, 11, 27, 9, 1, tzinfo=UTC), assets=(DEMO_FOOTHOLD,),
                  details={"entities": {"ip": ["10.10.1.103", C2[1]], "domain": [C2_DOMAIN[1], OURS[1]]},
                           "field": "destination.ip", "matched": C2[1]})
    with store.transaction() as conn:
        assert save_alerts(conn, [alert], {alert.id: incident}) == 1


def test_the_batch_demos_phishing_incident_offers_the_c2_address_on_both_paths(store: Store) -> None:
    report, swarm = offered(store, phishing(store))
    assert report == swarm == [C2]


def test_the_live_agents_phishing_incident_offers_address_and_domain_on_both_paths(store: Store,
                                                                                   tmp_path: Path) -> None:
    incident = phishing(store)
    add_watchlist_alert(store, incident)
    report, swarm = offered(store, incident)
    assert report == swarm == [C2, C2_DOMAIN]
    # and the gate lets both out on both paths
    released = service.report_for_peers(store, tmp_path, DEMO_SENDER, policy_for("amber", "sector"), incident)
    patterns = sorted(o["pattern"] for o in released.payload["objects"] if o["type"] == "indicator")
    assert patterns == ["[domain-name:value = 'cdn-update.example']", "[ipv4-addr:value = '198.51.100.77']"]
    gossip = preview_gossip(store, tmp_path, DEMO_SENDER)
    assert sorted((p["data"]["type"], p["data"]["value"]) for p in gossip.payloads
                  if p["kind"] == "indicator") == sorted([C2, C2_DOMAIN])


def test_every_open_incident_offers_the_swarm_what_its_report_offers(store: Store) -> None:
    add_watchlist_alert(store, phishing(store))
    known = service.sensitive_values(store, DEMO_SENDER)
    ids = service.open_incident_ids(store)
    assert len(ids) == 4
    by_reports = {(i.type, i.value) for ident in ids for i in service.select_incident(store, ident, known).indicators}
    published = {(d["type"], d["value"]) for kind, d in items_from_store(store, DEMO_SENDER, known)
                 if kind == "indicator"}
    assert by_reports == published == {C2, C2_DOMAIN}


def test_an_unknown_incident_has_no_report_and_no_items(store: Store) -> None:
    known = service.sensitive_values(store, DEMO_SENDER)
    with pytest.raises(KeyError):
        service.select_incident(store, "INC-000000000000", known)
    assert items_from_store(store, DEMO_SENDER, known, {"INC-000000000000"}) == []


def test_publishing_one_incident_reads_only_its_alerts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = phishing(store)
    with store.read() as conn:
        own, stored = len(load_alerts(conn, incident=incident)), len(load_alerts(conn))
    assert own < stored
    decoded: list[StoredAlert] = []
    original = alert_store._stored_alert

    def counting(row: object) -> StoredAlert:
        decoded.append(original(row))
        return decoded[-1]

    monkeypatch.setattr(alert_store, "_stored_alert", counting)
    items_from_store(store, DEMO_SENDER, service.sensitive_values(store, DEMO_SENDER), {incident})
    assert len(decoded) == own
    assert {s.incident_id for s in decoded} == {incident}


def test_incident_alerts_are_those_of_the_incidents_newest_first(store: Store) -> None:
    with store.read() as conn:
        ids = [i.id for i in load_incidents(conn)]
        each = {ident: [s.alert.id for s in load_alerts(conn, incident=ident)] for ident in ids}
        assert all(each.values())
        for ident in ids:   # one incident: the order of load_alerts
            assert [s.alert.id for s in incident_alerts(conn, [ident])] == each[ident]
        both = incident_alerts(conn, ids[:2])
        assert sorted(s.alert.id for s in both) == sorted(each[ids[0]] + each[ids[1]])
        stamps = [s.alert.timestamp for s in both]
        assert stamps == sorted(stamps, reverse=True)
        assert incident_alerts(conn, []) == [] and incident_alerts(conn, ["INC-000000000000"]) == []
