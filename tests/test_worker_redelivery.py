"""Redelivery on real NATS JetStream and PostgreSQL: a batch the bus hands out again (its ack lost, or given
back with a nak) feeds neither the detect role's Sigma correlation windows nor the Correlator twice, also
after a restart of the role (issue #16: "a redelivered batch no longer feeds correlation windows twice")."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from conftest import postgres_database
from healthswarm.agent.config import parse_config
from healthswarm.bus import BusError
from healthswarm.bus.codec import event_to_bytes
from healthswarm.bus.nats import NatsBus, NatsSubscription
from healthswarm.model import Alert, Event, EventRef
from healthswarm.store.alerts import save_alerts
from healthswarm.store.tables import alerts, incidents
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.roles import CorrelateRole, DetectRole
from healthswarm.worker.run import open_store
from sigma_support import LOGIN_RULES
from test_worker_support import SHARED_NATS, service_unavailable

pytestmark = pytest.mark.service

FOUR_LOGINS = """
    title: four successful logins within the hour
    id: 00000000-0000-0000-0000-0000000000f4
    correlation:
        type: event_count
        rules: [successful_login]
        group-by: [user.name]
        timespan: 1h
        condition: {gte: 4}
    level: medium
    """
FOUR_LOGINS_ID = "00000000-0000-0000-0000-0000000000f4"
T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


class Lane:
    """A prefix and stream of this test on the shared NATS server, and a PostgreSQL database of its own."""

    def __init__(self, db: str) -> None:
        self.prefix = f"hsrd{uuid.uuid4().hex[:10]}"
        self.stream = self.prefix.upper()
        try:
            self.bus = NatsBus(SHARED_NATS, stream=self.stream, subjects=(f"{self.prefix}.>",), ack_wait=30)
        except BusError as exc:
            service_unavailable(str(exc))
        self.store = open_store(db)

    def subscribe(self, subject: str) -> NatsSubscription:
        return self.bus.subscribe(f"{self.prefix}.{subject}", f"{self.prefix}-test")

    def close(self) -> None:
        self.store.close()
        self.bus.delete_stream(self.stream)
        self.bus.close()


@pytest.fixture
def lanes() -> Iterator[list[Lane]]:
    """Two lanes: one for the redelivered run, one for the run that sees every message once."""
    with postgres_database("hsw_redeliver") as first, postgres_database("hsw_redeliver") as second:
        made = [Lane(first), Lane(second)]
        try:
            yield made
        finally:
            for lane in made:
                lane.close()


def fetch(sub: NatsSubscription, n: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(20):
        got += sub.fetch(n - len(got), 2.0)
        if len(got) >= n:
            break
    assert len(got) == n, f"{len(got)} of {n} messages delivered"
    return got


def give_back(sub: NatsSubscription, msgs: list[Any]) -> list[Any]:
    """What a worker whose ack was lost sees: the same messages again, each delivered once more."""
    for m in msgs:
        m.nak()
    again = fetch(sub, len(msgs))
    assert sorted((m.id, m.deliveries) for m in again) == sorted((m.id, m.deliveries + 1) for m in msgs)
    return again


# --- detect: Sigma correlation windows ------------------------------------------------------------------------

def login(prefix: str, user: str, n: int) -> tuple[str, bytes, str]:
    event = Event(T0 + timedelta(minutes=n), {"observer.type": "test", "event.action": "login",
                                              "event.outcome": "success", "user.name": user},
                  None, source="t", record=n, key=f"{prefix}-login-{n}")
    return f"{prefix}.events.p0.test", event_to_bytes(event), event.key


def detect_role(lane: Lane, tmp_path: Path) -> DetectRole:
    rules = tmp_path / lane.prefix
    rules.mkdir(exist_ok=True)
    (rules / "logins.yml").write_text(LOGIN_RULES, encoding="utf-8")
    (rules / "four.yml").write_text(textwrap.dedent(FOUR_LOGINS), encoding="utf-8")
    sigma_only = parse_config({"detect": {"packs": ["healthcare"], "baselines": False, "clinical": False}})
    config = WorkerConfig(Role.detect, "postgresql://", prefix=lane.prefix, rules=(rules,), agent=sigma_only)
    return DetectRole(lane.store, config, tmp_path)


def correlations(lane: Lane) -> list[list[str]]:
    with lane.store.read() as conn:
        docs = conn.execute(select(alerts.c.document).where(alerts.c.rule_id == FOUR_LOGINS_ID)
                            .order_by(alerts.c.id)).scalars()
        return [sorted(ref["key"] for ref in doc["events"]) for doc in docs]


def test_a_redelivered_batch_feeds_the_correlation_windows_once(lanes: list[Lane], tmp_path: Path) -> None:
    lane = lanes[0]
    role = detect_role(lane, tmp_path)
    sub = lane.subscribe("events.>")
    lane.bus.publish_many([login(lane.prefix, "alice", n) for n in range(3)])
    first = fetch(sub, 3)
    role.handle(first)  # committed, then the ack is lost: the bus hands the three logins out again
    again = give_back(sub, first)
    role.handle(again)
    assert correlations(lane) == [], "three logins counted twice made six: the window was fed twice"
    sub.ack_all(again)
    role.settled(again)
    lane.bus.publish_many([login(lane.prefix, "alice", 3)])
    fourth = fetch(sub, 1)
    role.handle(fourth)
    sub.ack_all(fourth)
    role.settled(fourth)
    assert correlations(lane) == [sorted(f"{lane.prefix}-login-{n}" for n in range(4))]
    with lane.store.read() as conn:  # the base rule raises no alert of its own (a correlation's building block)
        assert len(conn.execute(select(alerts.c.id)).all()) == 1
    sub.close()


def test_a_redelivery_after_a_restart_feeds_the_new_windows_once(lanes: list[Lane], tmp_path: Path) -> None:
    """The windows go with the process (as in a crash); what the bus gives the new one is counted once there."""
    lane = lanes[0]
    sub = lane.subscribe("events.>")
    lane.bus.publish_many([login(lane.prefix, "bob", n) for n in range(4)])
    crashed = detect_role(lane, tmp_path)
    crashed.handle(fetch(sub, 2))  # fed, never acked: the process dies
    sub.close()  # its messages go back to the group
    restarted = detect_role(lane, tmp_path)
    sub = lane.subscribe("events.>")
    everything = fetch(sub, 4)
    assert sorted(m.deliveries for m in everything) == [1, 1, 2, 2]
    restarted.handle(everything)
    again = give_back(sub, everything)
    restarted.handle(again)
    sub.ack_all(again)
    restarted.settled(again)
    assert correlations(lane) == [sorted(f"{lane.prefix}-login-{n}" for n in range(4))]
    sub.close()


# --- correlate: the Correlator ----------------------------------------------------------------------------------

def alert(n: int, *ips: str) -> Alert:
    return Alert(detector="sigma", rule_id=f"r{n % 3}", title=f"rule {n % 3}", level=("low", "high")[n % 2],
                 timestamp=T0 + timedelta(minutes=n), events=(EventRef("t", n, f"e{n}"),),
                 details={"entities": {"ip": list(ips)}})


# three chains of alerts on shared addresses, and bridges that merge them in the second half
ALERTS = [alert(n, f"10.0.{n % 3}.1") for n in range(12)] + [alert(12, "10.0.0.1", "10.0.1.1"),
                                                              alert(13, "10.0.9.9"),
                                                              alert(14, "10.0.1.1", "10.0.2.1"),
                                                              alert(15, "10.0.2.1")]


def publish_alerts(lane: Lane, batch: list[Alert]) -> None:
    with lane.store.transaction() as conn:  # what the detect role stores before it announces
        save_alerts(conn, batch)
    lane.bus.publish_many([(f"{lane.prefix}.alerts.p0", orjson.dumps(a.as_dict()), a.id) for a in batch])


def incident_rows(lane: Lane) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    with lane.store.read() as conn:
        rows = {i: doc for i, doc in conn.execute(select(incidents.c.id, incidents.c.document))}
        placed = {a: i for a, i in conn.execute(select(alerts.c.id, alerts.c.incident_id)
                                                 .where(alerts.c.incident_id.is_not(None)))}
    return rows, placed


def correlate_role(lane: Lane) -> CorrelateRole:
    """A correlator that holds the deployment's lock (a predecessor's session may take a moment to end)."""
    role = CorrelateRole(lane.store, WorkerConfig(Role.correlate, "postgresql://", prefix=lane.prefix))
    for _ in range(50):
        if role.active():
            return role
        time.sleep(0.1)
    raise AssertionError("the correlator lock was not released by the closed role")


def test_redelivered_alerts_make_the_incidents_of_a_single_delivery(lanes: list[Lane]) -> None:
    """One lane sees each alert once; the other gets its first batch twice (ack lost), then dies before acking
    its second batch, and a restarted correlator gets both batches again. Same incidents, same placements."""
    redelivered, once = lanes
    publish_alerts(once, ALERTS)
    publish_alerts(redelivered, ALERTS[:8])  # the second batch after the first's redelivery: nothing overtakes it
    sub = once.subscribe("alerts.>")
    role = correlate_role(once)
    wanted = []
    for size in (8, 8):
        msgs = fetch(sub, size)
        role.handle(msgs)
        sub.ack_all(msgs)
        wanted.append(incident_rows(once))
    role.close()
    sub.close()
    assert len(wanted[1][0]) >= 2 and len(wanted[1][1]) == len(ALERTS), "every alert placed, in several incidents"
    assert wanted[0] != wanted[1], "the second batch merges incidents"

    sub = redelivered.subscribe("alerts.>")
    role = correlate_role(redelivered)
    first = fetch(sub, 8)
    role.handle(first)
    again = give_back(sub, first)
    role.handle(again)
    sub.ack_all(again)
    assert incident_rows(redelivered) == wanted[0]
    publish_alerts(redelivered, ALERTS[8:])
    role.handle(fetch(sub, 8))  # committed, then the worker dies before its ack
    role.close()
    sub.close()
    sub = redelivered.subscribe("alerts.>")
    restarted = correlate_role(redelivered)  # rebuilds from the store, then is handed the batch again
    second = fetch(sub, 8)
    assert {m.deliveries for m in second} == {2}
    restarted.handle(second)
    sub.ack_all(second)
    restarted.close()
    sub.close()
    assert incident_rows(redelivered) == wanted[1]


def test_events_stored_in_a_transaction_that_fails_are_not_stored(lanes: list[Lane]) -> None:
    """The outbox holds only if an effect commits with its announcement: the events' COPY (the first statement
    of an ingest batch's transaction) must not commit on its own when the rest of the transaction fails."""
    from healthswarm.store.events import insert_events
    from healthswarm.store.tables import events

    lane = lanes[0]
    batch = [Event(T0 + timedelta(seconds=n), {"observer.type": "test"}, None, source="t", record=n, key=f"k{n}")
             for n in range(3)]
    with pytest.raises(RuntimeError), lane.store.transaction() as conn:
        assert insert_events(conn, batch, want_keys=True) == (3, {"k0", "k1", "k2"})
        raise RuntimeError("the announcement failed")
    with lane.store.read() as conn:
        assert conn.execute(select(events.c.key)).all() == []
    with lane.store.transaction() as conn:  # and a batch with a stored key (the staging path) still works
        assert insert_events(conn, batch[:1], want_keys=True) == (1, {"k0"})
    with lane.store.transaction() as conn:
        assert insert_events(conn, batch, want_keys=True) == (2, {"k1", "k2"})
