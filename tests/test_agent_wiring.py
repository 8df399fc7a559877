"""What a running agent keeps beside alerts and incidents: the devices and flows it saw on the wire (the picture
`inventory discover` and the Discovered view read, moved with the detection cursor; an undeclared flow into a
safety-critical device raises its alert) and a point of each organisation's risk over time (the dashboard's)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent_support import DEMO, demo_agent_setup
from conftest import wait_until
from healthswarm.agent.runtime import Agent
from healthswarm.inventory import load_inventory
from healthswarm.inventory.discover.service import STATE, load_state
from healthswarm.risk.history import load_history
from healthswarm.store.alerts import load_alerts, load_incidents

EVE = DEMO / "logs" / "suricata-eve.json"


# a workstation (sta-ws-03) opens SMB on an ICU infusion pump (sta-pump-05, safety critical): nobody declared that
SMB_TO_PUMP = ('{"timestamp":"2026-11-27T10:00:00.000000+0000","event_type":"flow","src_ip":"10.10.1.103",'
               '"src_port":50123,"dest_ip":"10.10.4.15","dest_port":445,"proto":"TCP","app_proto":"smb",'
               '"flow_id":9100001,"flow":{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":2400,'
               '"bytes_toclient":1800,"start":"2026-11-27T10:00:00.000000+0000","end":"2026-11-27T10:00:02.000000+0000",'
               '"state":"closed","reason":"timeout"}}')


def test_the_agent_keeps_the_discovered_picture_and_the_risk_over_time(tmp_path: Path) -> None:
    settings, config, logs = demo_agent_setup(tmp_path, **{"risk": {"interval": 0.2}})
    agent = Agent(config, settings)
    agent.start()
    try:
        lines = [line for line in EVE.read_text().splitlines() if line.strip()]
        (logs / "eve.json").write_text("\n".join([*lines, SMB_TO_PUMP]) + "\n")
        total = len(lines) + 1
        wait_until("every line judged", lambda: agent.detector.stats.events >= total, 120)
        with agent.store.read() as conn:
            wait_until("a risk point", lambda: bool(load_history(conn)), 120)
    finally:
        agent.shutdown()
    with agent.store.read() as conn:
        found = [s.alert for s in load_alerts(conn) if s.alert.detector == "discover"]
        history = load_history(conn)
    discovery, through = load_state(agent.workspace / STATE, agent.store)
    agent.store.close()
    # the picture runs through the last judged event, saved at shutdown
    assert through == agent.detector.cursor and through > 0
    assert discovery.flows
    # the SMB flow into the pump raises its alert (ATT&CK for ICS), once
    assert len(found) == 1 and any(t.id.startswith("T0") for t in found[0].techniques)
    # one point per organisation of the ecosystem, recorded by the agent
    assert {p.source for p in history} == {"agent"}
    assert {p.organisation for p in history} == {o.id for o in load_inventory([DEMO / "ecosystem.yaml"]).organisations}


@pytest.mark.parametrize("own_process", [True, False], ids=["responder-process", "agent-thread"])
def test_live_risk_annotates_the_incidents_each_step_writes(tmp_path: Path, own_process: bool) -> None:
    """Live risk annotates only the incidents changed since its last pass (every open one grew with the store):
    incidents the network stream opens, then those the EHR audit stream opens afterwards, all get their predictions;
    in the responder process (`[agent] respond_process`), or in the agent's thread."""
    settings, config, logs = demo_agent_setup(tmp_path, **{"risk": {"interval": 0.2}})
    agent = Agent(replace(config, respond_process=own_process), settings)
    agent.start()
    assert (agent.risk is None) is own_process
    assert ("agent-risk" in [t.name for t in agent.threads]) is not own_process

    def unannotated() -> list[str]:
        with agent.store.read() as conn:
            return [i.id for i in load_incidents(conn) if "predicted_basis" not in i.as_dict()]

    seen: list[set[str]] = []
    total = 0
    try:
        for name, stored_as in (("suricata-eve.json", "eve.json"), ("ehr-audit.ndjson", "audit.ndjson")):
            text = (DEMO / "logs" / name).read_text()
            (logs / stored_as).write_text(text)
            total += sum(1 for line in text.splitlines() if line.strip())  # one event a line
            wait_until(f"{name} judged", lambda n=total: agent.detector.stats.events >= n, 120)
            wait_until(f"every incident annotated after {name}", lambda: not unannotated(), 120)
            with agent.store.read() as conn:
                seen.append({i.id for i in load_incidents(conn)})
    finally:
        agent.shutdown()
        agent.store.close()
    assert seen[0] and seen[1] - seen[0]  # each stream opened incidents of its own


def test_live_risk_waits_for_an_inventory_and_keeps_the_incidents_due(tmp_path: Path) -> None:
    """An agent started before its inventory was stored annotates nothing, keeps what the steps wrote, and annotates
    it at the first pass after the inventory arrives (the graph is not built once and for all on an empty store)."""
    import threading
    from datetime import UTC, datetime, timedelta

    from healthswarm.agent.live_risk import RiskPasses
    from healthswarm.model.incident import Incident
    from healthswarm.store import Store
    from healthswarm.store.alerts import save_incidents
    from healthswarm.store.inventory import replace_inventory

    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    start = datetime(2026, 11, 27, 9, tzinfo=UTC)
    with store.transaction() as conn:
        save_incidents(conn, [Incident("I-1", "incident I-1", start, start + timedelta(minutes=5), severity=3,
                                       assets={"sta-ws-03"}, organisations={"st-aurelia"})])
    passes = RiskPasses(store, threading.Lock(), interval=0.0)
    passes.add(["I-1"])
    assert passes.run_pass() == 0 and passes.annotator.graph is None
    with store.transaction() as conn:
        replace_inventory(conn, load_inventory([DEMO / "ecosystem.yaml"]))
    assert passes.run_pass() == 1
    with store.read() as conn:
        (incident,) = load_incidents(conn)
        assert "predicted_basis" in incident.as_dict() and {p.source for p in load_history(conn)} == {"agent"}
    store.close()
