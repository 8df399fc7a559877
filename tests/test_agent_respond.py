"""Playbooks by policy in a running agent: the responder (agent/respond.py) listens to the detection steps of a
real `Agent` following a folder; the demo's logs written there become incidents, and each incident the default
policy covers gets a case whose playbooks started, disruptive actions waiting for an analyst."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from agent_support import DEMO, demo_agent_setup
from conftest import wait_until
from healthswarm.agent.config import RespondConfig
from healthswarm.agent.detect import StepResult
from healthswarm.agent.respond import PolicyResponder
from healthswarm.agent.respond_process import ResponderProcess
from healthswarm.agent.runtime import Agent
from healthswarm.model.incident import Incident
from healthswarm.respond.case_store import load_audit, load_case
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.service import POLICY_ACTOR
from healthswarm.respond.watchlist import load_watchlist
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents, save_incidents
from healthswarm.store.events import list_checkpoints
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.respond_tables import respond_audit, respond_cases
from healthswarm.store.tables import incidents as incident_rows
from respond_helpers import T0, ward_inventory

LIBRARY = Library.load()
WAIT = 60  # seconds; a bound for waiting, never a figure asserted on
LOGS = {"eve.json": "suricata-eve.json", "sysmon.json": "windows-sysmon.json", "adt.hl7": "hl7-adt.hl7"}


@pytest.mark.parametrize("own_process", [True, False], ids=["responder-process", "responder-thread"])
def test_an_incident_from_ingested_lines_starts_its_playbooks(tmp_path: Path, own_process: bool) -> None:
    settings, config, logs = demo_agent_setup(tmp_path, **{"risk": {"live": False}})
    config = replace(config, respond_process=own_process)
    agent = Agent(config, settings)
    # the default [respond] policy is on: the agent listens with one responder of its own, in a process of its own
    # or in a thread of the agent's
    assert [type(x) for x in agent.step_listeners] == [ResponderProcess if own_process else PolicyResponder]
    agent.start()
    try:
        for name, source in LOGS.items():  # whole lines (a line being written is not read yet)
            text = (DEMO / "logs" / source).read_text(encoding="utf-8")
            lines = [line for line in text.split("\n") if line.strip()]
            (logs / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

        def judged() -> bool:
            with agent.store.read() as conn:
                read_to = {cp.source: cp.position for cp in list_checkpoints(conn)}
            return (all(read_to.get(str((logs / n).resolve()), -1) >= (logs / n).stat().st_size for n in LOGS)
                    and agent.detector.backlog() == 0)

        wait_until("the demo's lines judged", judged, 120)
    finally:
        agent.shutdown()  # joins the detection thread: every step has queued its incidents
    # the responder drains its queue (the agent's shutdown may have closed it)
    (responder,) = agent.step_listeners
    assert responder.close(120)
    if own_process:
        assert responder.process.exitcode == 0
        assert agent.status()["respond_process"] == {"pid": responder.pid, "alive": False, "restarts": 0}
    else:
        assert agent.status()["respond_process"] is None
    # what our own cases watch is not retro-hunted (it came from our own incidents); the real hunt, recorded
    hunted: list[str] = []
    real_hunt = agent.retro_hunt
    agent.retro_hunt = lambda watches: hunted.extend(w.value for w in watches) or real_hunt(watches)  # type: ignore[method-assign]
    agent._hunted.clear()
    agent._refresh_watchlist()
    assert "198.51.100.77" in {w.value for w in agent.watchlist.index.values()} and "198.51.100.77" not in hunted
    with agent.store.read() as conn:
        covered = [i for i in load_incidents(conn) if i.severity >= config.respond.min_severity]
        cases = {row.incident_id: load_case(conn, row.id)
                 for row in conn.execute(select(respond_cases.c.id, respond_cases.c.incident_id))}
        runs = {incident: [e for e in load_audit(conn, case.id) if e.action == "playbook-run"]
                for incident, case in cases.items()}
        watched = {(w["type"], w["value"]): w for w in load_watchlist(conn)}
    agent.store.close()
    assert covered and {i.id for i in covered} <= set(cases)
    phishing = next(i for i in covered if "sta-ws-03" in i.assets)  # the demo's phishing → lateral movement
    started = runs[phishing.id]
    assert started and all(e.actor == POLICY_ACTOR for e in started)
    assert "Phishing with credential theft" in {e.data["name"] for e in started}
    actions = [a for e in started for a in e.data["actions"]]
    isolations = [a for a in actions if a["kind"] == "isolate-host" and a["target"] == "sta-ws-03"]
    assert isolations and all(a["status"] == "proposed" for a in isolations)  # disruptive: not the policy's
    tasks = [t.title for t in cases[phishing.id].tasks]
    assert any(t.startswith("Approve and run isolate-host on sta-ws-03") for t in tasks)
    # watchlist-add runs by default, on the case's observables that are not ours: the C2 address the
    # workstation called is watched; the workstation itself (address and name) and every internal address are not
    observed = {(o.type, o.value) for o in cases[phishing.id].observables}
    assert {("ipv4", "198.51.100.77"), ("ipv4", "10.10.1.103")} <= observed
    assert ("ipv4", "198.51.100.77") in watched and watched["ipv4", "198.51.100.77"]["case_id"] == cases[phishing.id].id
    assert ("ipv4", "10.10.1.103") not in watched and ("domain", "sta-ws-03") not in watched
    assert not [key for key in watched if key[1].startswith(("10.", "192.168.")) or "sta-" in key[1]]
    assert any(a["kind"] == "watchlist-add" and a["status"] == "executed" for a in actions)
    # the C2 address is an address: the sinkhole (domains only) is not asked to take it
    assert not [a for a in actions if a["kind"] == "dns-sinkhole" and a["target"] == "198.51.100.77"]



@pytest.mark.parametrize("own_process", [True, False], ids=["responder-process", "responder-thread"])
def test_failed_playbooks_and_live_risk_show_in_the_agents_status_and_metrics(tmp_path: Path,
                                                                               own_process: bool) -> None:
    """A stored incident that cannot be read (its document lost its title) fails every call of playbooks by policy
    and every pass of live risk that takes it: whether they run in the responder process or in the agent's, each
    failure is counted in the agent's `failures{stage}` and shown among its status's errors."""
    from healthswarm.agent import metrics

    settings, config, _ = demo_agent_setup(tmp_path, **{"risk": {"live": True, "interval": 0.2}})
    config = replace(config, respond_process=own_process)
    store = Store.open(settings.db_url)
    _incidents(store, "I-bad")
    with store.transaction() as conn:
        (document,) = conn.execute(select(incident_rows.c.document).where(incident_rows.c.id == "I-bad")).one()
        conn.execute(update(incident_rows).where(incident_rows.c.id == "I-bad")
                     .values(document={k: v for k, v in document.items() if k != "title"}))
    store.close()
    failed = {stage: metrics.FAILURES.labels(stage)._value.get() for stage in ("respond", "risk")}
    agent = Agent(config, settings, drain_timeout=1.0)  # the failing call is still retried at the stop
    assert (agent.responder is not None) == own_process
    agent.start()
    errors: set[str] = set()
    try:
        def shown() -> set[str]:
            errors.update(agent.status()["errors"])
            return {e.split(":", 1)[0] for e in errors}

        wait_until("a failed call of playbooks and a failed pass of live risk shown", lambda: shown() >= {
            "respond", "risk"}, WAIT)
    finally:
        agent.shutdown()
        agent.store.close()
    assert any(e.startswith("respond: failed on 1 incident, retried: ") for e in errors)
    assert any(e.startswith("risk: a pass failed, its incidents annotated at the next: ") for e in errors)
    assert all(metrics.FAILURES.labels(stage)._value.get() > before for stage, before in failed.items())

# --- the responder's own thread, on a real store with the shipped playbooks ------------------------------------
@pytest.fixture
def ward(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, ward_inventory())
    return store


def _incidents(store: Store, *ids: str, entities: set[tuple[str, str]] = frozenset()) -> None:
    with store.transaction() as conn:
        save_incidents(conn, [Incident(i, f"incident {i}", T0, T0 + timedelta(minutes=5), severity=3,
                                       assets={"ws-1"}, organisations={"h1"}, techniques={"T1566.001"},
                                       entities=set(entities)) for i in ids])


def _opened(store: Store) -> list[str]:
    """The incidents whose cases were opened, in the order they were."""
    with store.read() as conn:
        return list(conn.execute(select(respond_cases.c.incident_id).join(
            respond_audit, (respond_audit.c.case_id == respond_cases.c.id) & (respond_audit.c.action == "open"))
            .order_by(respond_audit.c.id)).scalars())


@pytest.fixture
def start(ward: Store, tmp_path: Path) -> Iterator[Callable[..., PolicyResponder]]:
    """Responders on the ward store, each after its look-back; closed at the end of the test."""
    started: list[PolicyResponder] = []

    def start(lock: threading.Lock, **policy: Any) -> PolicyResponder:
        responder = PolicyResponder(ward, RespondConfig(**policy), tmp_path, lock, LIBRARY, retry=0.2)
        started.append(responder)
        responder(StepResult())  # the first step starts the thread, which looks back over the stored incidents
        assert responder.join_idle(WAIT)
        return responder

    yield start
    for responder in started:
        responder.close(WAIT)


def test_queued_steps_are_taken_in_order_coalesced_while_a_call_is_under_way(
        ward: Store, start: Callable[..., PolicyResponder]) -> None:
    lock = threading.Lock()
    responder = start(lock)
    assert "agent-respond" in {t.name for t in threading.enumerate()}
    _incidents(ward, "I-4", "I-1", "I-3", "I-2")
    with lock:  # detection committing: the responder plans I-3, then waits for the lock to write its case
        responder(StepResult(incidents=["I-3"]))
        wait_until("the first batch taken", lambda: responder.queued == 0, WAIT)
        for step in (["I-1", "I-4"], ["I-2", "I-1"], ["I-4"]):  # returns at once, the lock held or not
            responder(StepResult(incidents=step))
        assert responder.queued == 3 and _opened(ward) == []
    assert responder.join_idle(WAIT)
    assert responder.calls == 2  # I-3, then the three later steps in one call
    assert _opened(ward) == ["I-3", "I-1", "I-4", "I-2"]  # the steps' order, each incident once


def test_a_failing_call_is_retried_and_the_thread_goes_on(ward: Store, start: Callable[..., PolicyResponder],
                                                         tmp_path: Path) -> None:
    (tmp_path / "respond").write_text("not a folder")  # where sinkhole zones are written: the call fails
    lock = threading.Lock()
    responder = start(lock, auto_actions=("dns-sinkhole",))
    _incidents(ward, "I-phish", entities={("domain", "login-portal.example")})
    responder(StepResult(incidents=["I-phish"]))
    wait_until("a failed call", lambda: responder.failures >= 1, WAIT)
    assert _opened(ward) == []  # the chunk's transaction rolled back whole
    (tmp_path / "respond").unlink()
    _incidents(ward, "I-next")
    responder(StepResult(incidents=["I-next"]))  # retried with the next batch (or after `retry` seconds)
    assert responder.join_idle(WAIT)
    assert _opened(ward) == ["I-phish", "I-next"]
    with ward.read() as conn:
        (case_id,) = conn.execute(select(respond_cases.c.id).where(respond_cases.c.incident_id == "I-phish")).one()
        runs = [e.data for e in load_audit(conn, case_id) if e.action == "playbook-run"]
    sinkholed = [a for run in runs for a in run["actions"] if a["kind"] == "dns-sinkhole"]
    assert len(runs) == 1 and sinkholed and all(a["status"] == "executed" for a in sinkholed)


def test_close_drains_the_queue_and_a_restart_looks_back_at_what_came_after(
        ward: Store, start: Callable[..., PolicyResponder]) -> None:
    lock = threading.Lock()
    responder = start(lock)
    _incidents(ward, "I-1", "I-2", "I-3", "I-late")
    with lock:
        responder(StepResult(incidents=["I-1"]))
        wait_until("the first batch taken", lambda: responder.queued == 0, WAIT)
        responder(StepResult(incidents=["I-2", "I-3"]))
    assert responder.close(WAIT)
    assert not [t for t in threading.enumerate() if t.name == "agent-respond"]
    assert _opened(ward) == ["I-1", "I-2", "I-3"]
    responder(StepResult(incidents=["I-late"]))  # after close: queued, not taken (the process is ending)
    assert _opened(ward) == ["I-1", "I-2", "I-3"]
    start(lock)  # restarted: its look-back takes I-late, and starts nothing twice
    assert _opened(ward) == ["I-1", "I-2", "I-3", "I-late"]
    with ward.read() as conn:
        runs = conn.execute(select(respond_audit.c.case_id, respond_audit.c.data)
                            .where(respond_audit.c.action == "playbook-run")).all()
    assert len(runs) == len({(case_id, data["playbook"]) for case_id, data in runs}) == 4


def test_close_gives_up_on_a_call_that_keeps_failing_and_ends_the_thread(
        ward: Store, start: Callable[..., PolicyResponder], tmp_path: Path) -> None:
    (tmp_path / "respond").write_text("not a folder")  # every call fails (see above)
    responder = start(threading.Lock(), auto_actions=("dns-sinkhole",))
    _incidents(ward, "I-phish", entities={("domain", "login-portal.example")})
    responder(StepResult(incidents=["I-phish"]))
    wait_until("a failed call", lambda: responder.failures >= 1, WAIT)
    assert not responder.close(0.5)  # not drained: the incident waits for the look-back after the restart
    wait_until("the thread ended", lambda: not [t for t in threading.enumerate() if t.name == "agent-respond"], WAIT)
    assert responder.queued == 1 and _opened(ward) == []
    assert not responder.close(WAIT)  # and a second close says so too


def test_an_incident_that_fails_every_time_holds_up_no_other(
        ward: Store, start: Callable[..., PolicyResponder]) -> None:
    responder = start(threading.Lock())
    _incidents(ward, "I-1", "I-bad", "I-2", "I-3")
    with ward.transaction() as conn:  # a document that cannot become a case (no title)
        (document,) = conn.execute(select(incident_rows.c.document).where(incident_rows.c.id == "I-bad")).one()
        conn.execute(update(incident_rows).where(incident_rows.c.id == "I-bad")
                     .values(document={k: v for k, v in document.items() if k != "title"}))
    responder(StepResult(incidents=["I-1", "I-bad", "I-2"]))  # the batch fails: then one at a time
    wait_until("I-1 and I-2 responded to", lambda: sorted(_opened(ward)) == ["I-1", "I-2"], WAIT)
    responder(StepResult(incidents=["I-3"]))
    wait_until("I-3 responded to", lambda: "I-3" in _opened(ward), WAIT)
    assert responder.failures >= 2 and not responder.join_idle(0.5)  # I-bad is still tried, never dropped
    assert not responder.close(0.5)
    wait_until("I-bad left for the look-back after a restart", lambda: responder.queued == 1, WAIT)
    assert sorted(_opened(ward)) == ["I-1", "I-2", "I-3"]


RESPONDER_PARENT = """
import sys, time
from pathlib import Path
from healthswarm.agent.config import RespondConfig
from healthswarm.agent.respond_process import ResponderProcess, Spec
if __name__ == "__main__":
    responder = ResponderProcess(Spec(sys.argv[1], RespondConfig(), None, Path(sys.argv[2]), 30, {}))
    responder.start()
    print(responder.pid, flush=True)
    time.sleep(600)
"""


def test_the_responder_process_ends_when_its_agent_is_killed(ward: Store, tmp_path: Path) -> None:
    """A kill -9 of the agent leaves no responder behind: its end of the pipe closes and the process ends (what
    it had queued waits for the look-back after the restart)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "agent.py"
    script.write_text(RESPONDER_PARENT, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script), str(ward.engine.url), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(WAIT)

        def gone() -> bool:
            try:
                with open(f"/proc/{child}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # ended, not reaped (init will)
            except FileNotFoundError:
                return True

        wait_until("the responder process ended", gone, WAIT)
    finally:
        parent.kill()


def test_a_responder_process_that_died_is_replaced_and_misses_no_incident(ward: Store, tmp_path: Path) -> None:
    """Killed between two steps, the responder process is started again at the next step, whose look-back
    opens the case of the incident the dead one was given as well as the new one's, each once."""
    import signal

    from healthswarm.agent.respond_process import Spec

    responder = ResponderProcess(Spec(str(ward.engine.url), RespondConfig(), None, tmp_path, 30, {}))
    responder.start()
    try:
        _incidents(ward, "I-1")
        responder(StepResult(incidents=["I-1"]))
        assert responder.join_idle(WAIT) and _opened(ward) == ["I-1"]
        os.kill(responder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        responder.process.join(WAIT)
        _incidents(ward, "I-2", "I-3")
        responder(StepResult(incidents=["I-2"]))  # the dead one never gets it: the pipe is broken
        responder(StepResult(incidents=["I-3"]))
        assert responder.join_idle(WAIT)
        assert responder.restarts == 1 and sorted(_opened(ward)) == ["I-1", "I-2", "I-3"] and responder.alive
    finally:
        assert responder.close(WAIT)


def test_the_knob_of_the_responder_process() -> None:
    from healthswarm.agent import respond_process
    from healthswarm.agent.config import parse_config
    from healthswarm.errors import ConfigError

    assert parse_config({}).respond_process == "auto"
    assert respond_process.wanted(parse_config({})) is ((os.cpu_count() or 1) >= 2)
    assert respond_process.wanted(parse_config({"agent": {"respond_process": True}}))
    assert not respond_process.wanted(parse_config({"agent": {"respond_process": False}}))
    # playbooks by policy or live risk: either is reason enough for the process
    assert respond_process.wanted(parse_config({"agent": {"respond_process": True}, "respond": {"enabled": False}}))
    assert respond_process.wanted(parse_config({"agent": {"respond_process": True}, "risk": {"live": False}}))
    assert not respond_process.wanted(parse_config({"agent": {"respond_process": True}, "respond": {"enabled": False},
                                                    "risk": {"live": False}}))
    for wrong in ("yes", 1, 0):
        with pytest.raises(ConfigError, match=r"agent\.respond_process: expected \"auto\", true or false"):
            parse_config({"agent": {"respond_process": wrong}})
