"""The agent's swarm node, with real processes on loopback: a peer node's signed warning reaches the agent,
goes on its watchlist as soon as the node accepts it (the watchlist's periodic refresh is set to an hour), and
traffic to the warned address becomes a watchlist alert in an incident; an incident
at or above the policy's severity is then due for publishing, which goes through the egress gate
(`swarm.service.publish_from_store`) — checked end to end where that function exists."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import wait_until
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium

ROOT = Path(__file__).resolve().parent.parent
EVE = ROOT / "src" / "healthswarm" / "demo" / "logs" / "suricata-eve.json"
PARAMS = {"period": 0.3, "probe_timeout": 0.12, "suspicion_timeout": 1.5}
WAIT = 120.0


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    except Exception:
        return 0
    finally:
        engine.dispose()


@pytest.fixture
def peer_and_agent(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    ports = free_ports(2)
    configs = make_consortium(tmp_path, ["northfield", "st-aurelia"], ports, seeds=1, params=PARAMS)
    node = subprocess.Popen([sys.executable, "-m", "healthswarm", "node", "run", "--config", str(configs[0])],
                            stdout=(tmp_path / "node.log").open("ab"), stderr=subprocess.STDOUT, cwd=tmp_path)
    ws = tmp_path / "st-aurelia"
    (tmp_path / "logs").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\nhealth = "127.0.0.1:0"\norganisation = "st-aurelia"\n'
        '[[sources.files]]\npaths = ["logs"]\nrescan = 0.5\n'
        '[watchlist]\nrefresh = 3600.0\n'  # a warning the node accepts wakes the refresh: no poll in time
        f'[swarm]\nenabled = true\nlisten = "127.0.0.1:{ports[1]}"\nseeds = ["127.0.0.1:{ports[0]}"]\n'
        'min_severity = 2\nhold = 0.0\ninterval = 0.5\n'
        '[swarm.params]\n' + "".join(f"{k} = {v}\n" for k, v in PARAMS.items()))
    env = {**os.environ, "HEALTHSWARM_HOME": str(ws)}
    agent = subprocess.Popen([sys.executable, "-m", "healthswarm", "agent", "run", "--config", str(config)],
                             stdout=subprocess.DEVNULL, stderr=(tmp_path / "agent.log").open("ab"), cwd=tmp_path,
                             env=env)
    try:
        yield configs[0], ws, tmp_path
    finally:
        for proc in (agent, node):
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def _status(ws: Path) -> dict[str, object]:
    try:
        return dict(json.loads((ws / "agent" / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def test_a_peer_nodes_warning_becomes_a_watchlist_hit_and_incidents_are_published_by_policy(
        peer_and_agent: tuple[Path, Path, Path]) -> None:
    node_config, ws, base = peer_and_agent
    wait_until("the agent's node is up", lambda: bool(_status(ws).get("ready"))
               and (_status(ws).get("swarm") or {}).get("error") == "", WAIT)  # type: ignore[union-attr]
    outbox.post(load_node_config(node_config).folder, "indicator",
                {"type": "ipv4", "value": "203.0.113.50", "confidence": 80, "techniques": ["T1071.001"]})
    wait_until("the warning reaches the agent's watchlist",
               lambda: (_status(ws).get("swarm") or {}).get("received_warnings", 0) >= 1  # type: ignore[union-attr]
               and int(_status(ws).get("watchlist", 0)) >= 1, WAIT)  # type: ignore[call-overload]
    flow = json.loads(next(line for line in EVE.read_text().splitlines() if '"event_type": "flow"' in line))
    flow.update({"dest_ip": "203.0.113.50", "flow_id": 424242})
    (base / "logs" / "eve.json").write_text(json.dumps(flow) + "\n")
    url = f"sqlite:///{ws / 'healthswarm.db'}"
    wait_until("a watchlist alert from the swarm's warning, in an incident", lambda: _count(
        url, "SELECT count(*) FROM alerts WHERE rule_id = 'watchlist:ipv4:203.0.113.50' AND incident_id IS NOT NULL "
             "AND document LIKE '%swarm:northfield%'") == 1, WAIT)
    # the incident is due at once (hold 0, severity ≥ 2): published through the gate where it exists
    if importlib.util.find_spec("healthswarm.swarm.service") is None:
        wait_until("the agent says publishing is unavailable", lambda: (_status(ws).get("swarm") or {})
                   .get("publishing") == "unavailable", WAIT)  # type: ignore[union-attr]
        return
    wait_until("the agent published through the gate", lambda: int(
        (_status(ws).get("swarm") or {}).get("published_items", 0)) >= 1, WAIT)  # type: ignore[union-attr]

    def peer_heard_us() -> bool:
        try:
            status = json.loads((load_node_config(node_config).folder / "status.json").read_text())
        except (OSError, ValueError):
            return False
        # the warned address, now reported by two organisations: the peer and, independently, this agent
        return any(row.get("key") == "indicator:ipv4:203.0.113.50" and int(row.get("organisations", 0)) >= 2
                   for row in status.get("threat_field", []))

    wait_until("the peer's node holds what the agent published", peer_heard_us, WAIT)
