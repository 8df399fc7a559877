"""Playbooks by policy in a running agent: the responder (agent/respond.py) listens to the detection steps of a
real `Agent` following a folder; the demo's logs written there become incidents, and each incident the default
policy covers gets a case whose playbooks started, disruptive actions waiting for an analyst."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from agent_support import DEMO, demo_agent_setup
from conftest import wait_until
from healthswarm.agent.respond import PolicyResponder
from healthswarm.agent.runtime import Agent
from healthswarm.respond.case_store import load_audit, load_case
from healthswarm.respond.service import POLICY_ACTOR
from healthswarm.respond.watchlist import load_watchlist
from healthswarm.store.alerts import load_incidents
from healthswarm.store.events import list_checkpoints
from healthswarm.store.respond_tables import respond_cases

LOGS = {"eve.json": "suricata-eve.json", "sysmon.json": "windows-sysmon.json", "adt.hl7": "hl7-adt.hl7"}


def test_an_incident_from_ingested_lines_starts_its_playbooks(tmp_path: Path) -> None:
    settings, config, logs = demo_agent_setup(tmp_path, **{"risk": {"live": False}})
    agent = Agent(config, settings)
    # the default [respond] policy is on: the agent listens with one responder of its own
    assert [type(x) for x in agent.step_listeners] == [PolicyResponder]
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
        agent.shutdown()  # the listener runs in the detection thread, which this joins
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
