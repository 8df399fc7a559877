"""The scale-out respond role on real NATS JetStream and PostgreSQL: the demo's Suricata log through the ingest,
detect and correlate roles (`--role all`) and a `--role respond` process; every incident the policy covers gets
one case, its playbooks start once, live risk annotates it, and a replay of the incident announcements to a
respond process restarted after a kill -9 opens and starts nothing more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, select, text

from conftest import service_unavailable, wait_until
from healthswarm.bus import BusError
from healthswarm.detect.watchlist import Watch
from healthswarm.inventory import load_inventory
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.respond.policy import ResponsePolicy
from healthswarm.respond.service import inventory_assets
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.respond_tables import respond_audit, respond_cases
from healthswarm.store.tables import incidents
from healthswarm.swarm import outbox as swarm_outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.retro import retro_alerts
from healthswarm.swarm.service import read_node
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.roles import RetroHunter, commit_alerts, no_relay
from healthswarm.worker.run import open_store
from test_worker_support import HEALTHSWARM, ROOT, SHARED_NATS, Deployment, bus_lines, consumer_state, deployment, pg_db  # noqa: F401 - fixture

pytestmark = pytest.mark.service
DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo"
# which incidents: severity 3 or more, or a safety-critical asset (the defaults, written out to say what is tested);
# which playbooks: those whose condition holds, and one for every case (so that every case starts one)
CONFIG = ('[respond]\nmin_severity = 3\nsafety_critical = true\nplaybooks = ["auto", "notify-stakeholders"]\n\n'
          '[risk]\nlive = true\n')


@pytest.fixture
def pg_deployment(pg_db: str, tmp_path: Path) -> Iterator[Deployment]:  # noqa: F811 - the imported fixture
    store = open_store(pg_db)
    try:
        with store.transaction() as conn:
            replace_inventory(conn, load_inventory([DEMO / "ecosystem.yaml"]))
    finally:
        store.close()
    yield from deployment(SHARED_NATS, pg_db, tmp_path)


def stored(db: str) -> dict[str, Any]:
    """The incidents (id → document, with its state), the cases and the audit chains."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            docs = {r.id: {**r.document, "state": r.state}
                    for r in conn.execute(select(incidents.c.id, incidents.c.document, incidents.c.state))}
            cases = [(r.id, r.incident_id) for r in conn.execute(select(respond_cases.c.id,
                                                                        respond_cases.c.incident_id))]
            audit = [(r.case_id, r.seq, r.action, (r.data or {}).get("playbook"))
                     for r in conn.execute(select(respond_audit.c.case_id, respond_audit.c.seq, respond_audit.c.action,
                                                  respond_audit.c.data).order_by(respond_audit.c.case_id,
                                                                                 respond_audit.c.seq))]
    finally:
        engine.dispose()
    return {"incidents": docs, "cases": cases, "audit": audit}


def settled(d: Deployment) -> bool:
    """Every message taken and acked by every role (the incident announcements by the respond role), nothing
    left in the outbox."""
    groups = {"ingest": "raw.>", "detect": "events.*.>", "correlate": "alerts.>", "respond": "incidents"}
    bus = d.publisher()
    try:
        return (all(consumer_state(bus, d.stream, f"{d.prefix}-{role}", f"{d.prefix}.{subject}") == (0, 0)
                    for role, subject in groups.items())
                and d.counts()["unsent"] == 0)
    except Exception:  # the durable is not there yet
        return False
    finally:
        bus.close()


def wait_settled(d: Deployment, condition: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = stored(d.db)
        if (condition(got) and settled(d)) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_respond_role_opens_one_case_per_covered_incident_and_a_replay_after_a_kill_opens_none(
        pg_deployment: Deployment, tmp_path: Path) -> None:
    d = pg_deployment
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG, encoding="utf-8")
    lines = (DEMO / "logs" / "suricata-eve.json").read_bytes().splitlines()
    try:
        bus = d.publisher()
    except BusError as exc:
        service_unavailable(str(exc))
    try:
        bus.publish_many([(f"{d.prefix}.raw.suricata", line, "") for line in lines if line.strip()])
    finally:
        bus.close()
    # no timer flush: what the demo's log makes is all there is once the roles have settled
    d.start("--role", "all", "--config", str(config), "--flush-interval", "3600", name="pipeline")
    respond = d.start("--role", "respond", "--config", str(config), name="respond")

    policy = ResponsePolicy(min_severity=3, safety_critical=True)
    store = open_store(d.db)
    try:
        with store.read() as conn:
            assets = inventory_assets(conn)
    finally:
        store.close()

    def covered(got: dict[str, Any]) -> set[str]:
        return {i for i, doc in got["incidents"].items() if policy.covers(doc, assets)}

    first = wait_settled(d, lambda got: bool(got["incidents"]) and covered(got) <= {i for _, i in got["cases"]},
                         60)
    assert first["incidents"], d.log_text()[-3000:]
    want = covered(first)
    assert want, "the demo's Suricata log makes no incident the default policy covers"
    by_incident = Counter(i for _, i in first["cases"])
    assert set(by_incident) == want and set(by_incident.values()) == {1}, by_incident
    # each case's chain starts with its opening, and each playbook started on it once
    starts = Counter((case, book) for case, _, action, book in first["audit"] if action == "playbook-run")
    assert starts and set(starts.values()) == {1}, first["audit"]
    opening = {case: action for case, seq, action, _ in first["audit"] if seq == 1}
    assert set(opening) == {c for c, _ in first["cases"]}
    assert len(set(opening.values())) == 1 and "playbook-run" not in opening.values()
    # live risk: every open incident annotated with where its attacker goes next
    open_ids = [i for i, doc in first["incidents"].items() if doc["state"] not in {str(s) for s in CLOSED_STATES}]
    assert open_ids and all("predicted_basis" in first["incidents"][i] for i in open_ids)

    # the correlate role announced every incident it wrote (in the transaction that wrote it)
    bus = d.publisher()
    try:
        announced = {i for line in bus_lines(bus, f"{d.prefix}.incidents") for i in orjson.loads(line)}
    finally:
        bus.close()
    assert announced >= set(first["incidents"])

    # a kill -9, then every incident announced again (a replay of the subject) to a new respond process
    respond.send_signal(signal.SIGKILL)
    respond.wait(10)
    bus = d.publisher()
    try:
        bus.publish_many([(f"{d.prefix}.incidents", orjson.dumps(sorted(first["incidents"])), "")])
    finally:
        bus.close()
    d.start("--role", "respond", "--config", str(config), name="respond-again")
    again = wait_settled(d, lambda got: True, 60)
    assert settled(d), d.log_text()[-3000:]
    assert sorted(again["cases"]) == sorted(first["cases"])
    assert again["audit"] == first["audit"]
    d.stop_all()
    assert all(p.returncode in (0, -signal.SIGKILL) for p in d.procs), d.log_text()[-3000:]


@pytest.fixture
def plain_deployment(pg_db: str, tmp_path: Path) -> Iterator[Deployment]:  # noqa: F811 - the imported fixture
    """No inventory: the organisation of every event is the ingest role's (HEALTHSWARM_ORGANISATION)."""
    yield from deployment(SHARED_NATS, pg_db, tmp_path)


SWARM_PARAMS = {"period": 0.3, "probe_timeout": 0.12, "suspicion_timeout": 1.5}


@pytest.fixture
def peer_node(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A peer organisation's node (northfield) on loopback; (its config, the st-aurelia workspace with the keys both
    trust, the port st-aurelia's node listens on)."""
    ports = free_ports(2)
    configs = make_consortium(tmp_path, ["northfield", "st-aurelia"], ports, seeds=1, params=SWARM_PARAMS)
    node = subprocess.Popen([sys.executable, "-m", "healthswarm", "node", "run", "--config", str(configs[0])],
                            stdout=(tmp_path / "node.log").open("ab"), stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        yield configs[0], tmp_path / "st-aurelia", ports[1]
    finally:
        node.kill()
        node.wait(30)


def test_respond_role_runs_the_swarm_node_receiving_into_the_watchlist_and_publishing_by_policy(
        plain_deployment: Deployment, tmp_path: Path, peer_node: tuple[Path, Path, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer's warning reaches the respond role's node, is stored as an indicator, goes on the detect role's
    watchlist; traffic to the warned address stored before the warning is found by the respond role's retro-hunt
    (an alert, once, in an incident), traffic after it by the watchlist; the incident is published through the
    gate."""
    node_config, ws, port = peer_node
    seed = load_node_config(node_config).listen
    monkeypatch.setenv("HEALTHSWARM_ORGANISATION", "st-aurelia")  # the ingest role's events are st-aurelia's
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\norganisation = "st-aurelia"\n[watchlist]\nrefresh = 0.5\n[respond]\nenabled = false\n'
        f'[swarm]\nenabled = true\nlisten = "127.0.0.1:{port}"\nseeds = ["{seed}"]\n'
        'min_severity = 2\nhold = 0.0\ninterval = 0.5\n[swarm.params]\n'
        + "".join(f"{k} = {v}\n" for k, v in SWARM_PARAMS.items()), encoding="utf-8")
    d = plain_deployment
    d.start("--role", "all", "--config", str(config), "--flush-interval", "3600", name="pipeline")
    argv = [*HEALTHSWARM, "--workspace", str(ws), "worker", "--role", "respond", "--config", str(config),
            "--db", d.db, "--nats", d.nats, "--prefix", d.prefix, "--stream", d.stream]
    with (tmp_path / "respond.log").open("ab") as log:
        respond = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log,
                                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    d.procs.append(respond)
    respond.log = tmp_path / "respond.log"  # type: ignore[attr-defined]
    wait_until("st-aurelia's node runs in the respond role", lambda: (ws / "swarm" / "status.json").exists(), 60)
    flows = [orjson.loads(line) for line in (DEMO / "logs" / "suricata-eve.json").read_bytes().splitlines()
             if b'"event_type": "flow"' in line]

    def traffic(flow_id: int) -> None:
        """A flow to the address the peer warns of, to the ingest role."""
        bus = d.publisher()
        try:
            bus.publish_many([(f"{d.prefix}.raw.suricata",
                               orjson.dumps({**flows[0], "dest_ip": "203.0.113.50", "flow_id": flow_id}), "")])
        finally:
            bus.close()

    # before the warning: a flow to the address the peer will warn of, stored (and judged: nothing on the watchlist)
    traffic(424241)
    wait_until("the flow before the warning stored", lambda: _scalar(
        d.db, "SELECT count(*) FROM events WHERE CAST(original AS TEXT) LIKE '%424241%'") == 1, 60)
    swarm_outbox.post(load_node_config(node_config).folder, "indicator",
                      {"type": "ipv4", "value": "203.0.113.50", "confidence": 80, "techniques": ["T1071.001"]})
    wait_until("the warning stored as an indicator", lambda: _scalar(
        d.db, "SELECT count(*) FROM share_indicators WHERE value = '203.0.113.50' "
              "AND source = 'swarm:northfield'") == 1, 60)
    retro = "SELECT count(*) FROM alerts WHERE rule_id = 'watchlist-retro:ipv4:203.0.113.50'"
    wait_until("a retro-hunt alert from the peer's warning, in an incident", lambda: _scalar(
        d.db, retro + " AND incident_id IS NOT NULL") == 1, 60)
    traffic(424242)
    wait_until("a watchlist alert from the peer's warning, in an incident", lambda: _scalar(
        d.db, "SELECT count(*) FROM alerts WHERE rule_id = 'watchlist:ipv4:203.0.113.50' "
              "AND incident_id IS NOT NULL") == 1, 60)

    def peer_heard_us() -> bool:
        """The warned address, now reported by two organisations: the peer and, from its own traffic, us."""
        status = read_node(tmp_path, "northfield", load_node_config(node_config).folder, None, time.time()).status
        return status is not None and any(k.key == "indicator:ipv4:203.0.113.50" and "st-aurelia" in (k.reporters or [])
                                          for k in status.threat_field)

    wait_until("the peer's node holds what the respond role published", peer_heard_us, 60)
    published = json.loads((ws / "agent" / "published.json").read_text())
    assert len(published) == 1, published
    d.stop_all()
    assert respond.returncode == 0, d.log_text()[-3000:]
    # the retro-hunt found the flow before the warning, once; the watchlist the one after it; both in the incident
    found = {rule: (incident, timestamp, doc) for rule, incident, timestamp, doc in _rows(
        d.db, "SELECT rule_id, incident_id, timestamp, document FROM alerts WHERE rule_id LIKE 'watchlist%'")}
    assert sorted(found) == ["watchlist-retro:ipv4:203.0.113.50", "watchlist:ipv4:203.0.113.50"], found
    hunted, live = found["watchlist-retro:ipv4:203.0.113.50"], found["watchlist:ipv4:203.0.113.50"]
    assert hunted[2]["details"]["events"] == 1 and hunted[2]["details"]["indicator"]["origin"] == "swarm:northfield"
    assert hunted[0] is not None and hunted[0] == live[0], found
    assert hunted[1] <= live[1]
    assert json.loads((ws / "agent" / "retro-hunted.json").read_text()) == ["ipv4:203.0.113.50"]

    # the warning again (the node restarted and the peer gossiped it again), to a responder with another
    # workspace: the alert is stored, so nothing is hunted, stored or announced; and the same alerts committed
    # again (a hunt over the same events) are neither stored nor announced again
    store = open_store(d.db)
    try:
        hunter = RetroHunter(store, WorkerConfig(Role.respond, d.db, prefix=d.prefix, stream=d.stream),
                             tmp_path / "standby", no_relay)
        warning = Watch("ipv4", "203.0.113.50", "swarm:northfield", 80)
        assert hunter.hunt([warning]) == set()
        again = retro_alerts(store, [warning])
        assert [a.rule_id for a in again] == ["watchlist-retro:ipv4:203.0.113.50"]
        assert commit_alerts(store, hunter.config, [(a, 0.0, 0) for a in again], no_relay) == set()
    finally:
        store.close()
    assert _scalar(d.db, retro) == 1
    assert d.counts()["unsent"] == 0


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    except Exception:  # the schema is not there yet
        return 0
    finally:
        engine.dispose()
