"""The scale-out respond role on real NATS JetStream and PostgreSQL: the demo's Suricata log through the ingest,
detect and correlate roles (`--role all`) and a `--role respond` process; every incident the policy covers gets
one case, its playbooks start once, live risk annotates it, and a replay of the incident announcements to a
respond process restarted after a kill -9 opens and starts nothing more."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, select

from conftest import service_unavailable
from healthswarm.bus import BusError
from healthswarm.inventory import load_inventory
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.respond.policy import ResponsePolicy
from healthswarm.respond.service import inventory_assets
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.respond_tables import respond_audit, respond_cases
from healthswarm.store.tables import incidents
from healthswarm.worker.run import open_store
from test_worker_support import SHARED_NATS, Deployment, bus_lines, consumer_state, deployment, pg_db  # noqa: F401 - fixture

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
