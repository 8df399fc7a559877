"""The live part of `healthswarm demo`, with real agent processes and sockets on loopback: St. Aurelia's agent
detects and publishes through its egress gate by policy, Northfield's agent receives the warning, retro-hunts
its own events and opens its own incident from that hit; both exit 0 on SIGTERM, and the figures the demo
prints are what the API serves on each agent's workspace."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from api_support import open_demo_api
from healthswarm.demo import live
from healthswarm.store import Store
from healthswarm.store.tables import alerts

C2 = "198.51.100.77"  # the beacon's address (src/healthswarm/demo/README.md)


def demo(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(workspace), "demo", "--format", "json",
                           *args], capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_the_live_demo_ends_with_the_peers_own_incident_from_the_retro_hunt(tmp_path: Path) -> None:
    result = demo(tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)[live.TITLE]
    sender, peer = summary["agents"][live.SENDER], summary["agents"][live.RECEIVER]
    assert sender["exit"] == 0 and peer["exit"] == 0  # SIGTERM: a graceful stop
    # every scenario line reached its agent: St. Aurelia's five logs, Northfield's network log
    assert sender["events"] > 500 and peer["events"] == 3
    assert sender["incidents_high_or_critical"] >= 1 and sender["published_items"] >= 1
    # the C2 address, and its name where St. Aurelia's watchlist saw it in a beacon before publishing: every value
    # found in the same beacon host's traffic is one incident there
    assert peer["received_warnings"] >= 1 and peer["retro_hunt_alerts"] >= 1 and peer["incidents"] == 1
    order = [m["what"] for m in summary["milestones"]]
    for earlier, later in (("first-alert", "incident"), ("incident", "published"), ("published", "received"),
                           ("received", "retro-hunt"), ("retro-hunt", "peer-incident")):
        assert order.index(earlier) < order.index(later), order
    hunt = next(m for m in summary["milestones"] if m["what"] == "retro-hunt")
    assert C2 in hunt["text"] and "2026-11-26 14:02" in hunt["text"]  # the beacon of the day before
    assert summary["first_alert_to_peer_incident"] > 0
    # Northfield's own incident holds the retro-hunt alert for the address St. Aurelia warned of
    store = Store.open(f"sqlite:///{Path(peer['workspace']) / 'healthswarm.db'}")
    with store.read() as conn:
        rows = conn.execute(select(alerts.c.id, alerts.c.incident_id, alerts.c.document)
                            .where(alerts.c.rule_id == f"watchlist-retro:ipv4:{C2}")).all()
    store.close()
    assert len(rows) == 1 and rows[0].incident_id == summary["peer_incident"]["id"]
    assert rows[0].id in summary["peer_incident"]["alert_ids"]
    assert rows[0].document["details"]["indicator"]["origin"] == f"swarm:{live.SENDER}"
    # the figures printed are the API's (GET /summary) on each agent's workspace
    for org, figures in summary["agents"].items():
        api = open_demo_api(Path(figures["workspace"]), tmp_path / f"api-{org}")
        try:
            with TestClient(api.app) as client:
                served = client.get("/api/v1/summary", headers=api.headers("viewer")).json()
        finally:
            api.store.close()
        assert (served["alerts"], served["incidents"]) == (figures["alerts"], figures["incidents"]), org
        assert served["alerts_in_incidents"] == figures["alerts_in_incidents"], org


def test_a_taken_swarm_port_is_one_clear_line_before_anything_runs(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = demo(tmp_path / "ws", "--live-port", str(port))
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is taken" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ws" / "agents").exists()  # nothing started
    assert demo(tmp_path / "ws", "--speed", "0").returncode == 2
