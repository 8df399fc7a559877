"""`healthswarm agent run` as a real process on real sockets: a line written to a followed folder and a
syslog message sent to the receiver become alerts and incidents; a peer's signed indicator becomes a
watchlist hit (and a retro-hunt finds it in what was stored before); kill -9 then a restart stores no event
twice and duplicates no alert or incident; SIGTERM stops it cleanly. Waits are bounded and generous; the
assertions are on counts, never on timings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from conftest import wait_until
from healthswarm.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "src" / "healthswarm" / "demo" / "logs"
EVE = LOGS / "suricata-eve.json"
START = 180.0  # seconds an agent may take to start on a busy shared machine (imports, rule compilation)
WAIT = 90.0
runner = CliRunner()

SSHD_RULE = """\
title: SSH possible break-in attempt
id: 6a1f1e2c-5b7d-4c1e-9f00-0a9e6c1d2b01
status: test
description: sshd reports a reverse mapping that does not match the client address
logsource:
    product: linux
    service: sshd
detection:
    selection:
        message|contains: 'POSSIBLE BREAK-IN ATTEMPT'
    condition: selection
level: high
tags:
    - attack.credential-access
    - attack.t1110
"""


def eve_alert_line() -> str:
    return next(line for line in EVE.read_text().splitlines() if '"event_type": "alert"' in line)


def eve_flow_to(address: str, n: int) -> str:
    flow = json.loads(next(line for line in EVE.read_text().splitlines() if '"event_type": "flow"' in line))
    flow.update({"dest_ip": address, "flow_id": 7_000_000 + n,
                 "timestamp": f"2026-11-27T09:{n % 60:02d}:00.000000+0000"})
    return json.dumps(flow)


class AgentProcess:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.workspace = base / "ws"
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        (base / "rules").mkdir(exist_ok=True)
        (base / "rules" / "sshd.yml").write_text(SSHD_RULE)
        self.config = base / "agent.toml"
        self.config.write_text(
            '[agent]\nhealth = "127.0.0.1:0"\n'
            '[[sources.files]]\npaths = ["logs"]\nrescan = 0.5\n'
            '[sources.syslog]\nudp = "127.0.0.1:0"\ntcp = "127.0.0.1:0"\nlatency = 0.05\n'
            '[detect]\nrules = ["rules"]\nflush_interval = 5.0\n'
            '[watchlist]\nrefresh = 0.5\n'
            '[risk]\ninterval = 0.5\n')
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"sqlite:///{self.workspace / 'healthswarm.db'}"

    def start(self) -> dict[str, Any]:
        status = self.workspace / "agent" / "status.json"
        status.unlink(missing_ok=True)
        env = {**os.environ, "HEALTHSWARM_HOME": str(self.workspace)}
        env.pop("HEALTHSWARM_ORGANISATION", None)
        command = [sys.executable, "-m", "healthswarm", "agent", "run", "--config", str(self.config),
                   "--api", "127.0.0.1:0"]
        self.proc = subprocess.Popen(command, cwd=self.base, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.base / "agent.log", "ab"))  # noqa: SIM115
        wait_until("the agent is ready", lambda: self._alive() and status.exists() and self._ready(), START)
        return self.status()

    def _ready(self) -> bool:
        try:
            return bool(self.status()["ready"])
        except (OSError, ValueError, KeyError):
            return False

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.base / "agent.log").read_text()[-3000:]
            raise AssertionError(f"agent exited {self.proc.returncode}: {log}")
        return True

    def status(self) -> dict[str, Any]:
        return json.loads((self.workspace / "agent" / "status.json").read_text())

    def query(self, sql: str) -> Any:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).all()
        finally:
            engine.dispose()

    def count(self, sql: str) -> int:
        try:
            return int(self.query(sql)[0][0])
        except Exception:
            return 0

    def syslog(self, message: bytes, transport: str) -> None:
        bound = self.status()["bound"]
        host, port = bound[f"syslog_{transport}"].rsplit(":", 1)
        if transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(message, (host, int(port)))
        else:
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(f"{len(message)} ".encode() + message)

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def caught_up(self) -> bool:
        return self.count("SELECT position FROM checkpoints WHERE source = 'agent:detect'") >= self.count(
            "SELECT max(id) FROM events") > 0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path_factory.mktemp("agent"))
    process.start()
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(30)


def test_a_line_in_a_followed_folder_and_a_syslog_message_become_alerts_and_incidents(agent: AgentProcess) -> None:
    health = agent.status()["bound"]["health"]
    import urllib.request

    with urllib.request.urlopen(f"http://{health}/readyz", timeout=10) as response:
        assert json.loads(response.read())["ready"] is True
    with urllib.request.urlopen(f"http://{agent.status()['bound']['api']}/api/v1/health", timeout=10) as response:
        assert response.status == 200  # the API and dashboard in the same process (--api)
    (agent.logs / "eve.json").write_text(eve_alert_line() + "\n")
    agent.syslog(b"<38>1 2026-12-06T10:00:00Z ehr-01 sshd 4242 - - reverse mapping checking getaddrinfo for "
                 b"x.example [192.0.2.44] failed - POSSIBLE BREAK-IN ATTEMPT!", "udp")
    agent.syslog(b"<38>Dec  6 10:00:05 ehr-02 sshd[4243]: Address 192.0.2.45 maps to y.example, but this does not "
                 b"map back to the address - POSSIBLE BREAK-IN ATTEMPT!", "tcp")

    def found() -> bool:
        return (agent.count("SELECT count(*) FROM alerts WHERE detector = 'suricata' AND incident_id IS NOT NULL") >= 1
                and agent.count("SELECT count(*) FROM alerts WHERE title = 'SSH possible break-in attempt' "
                                "AND incident_id IS NOT NULL") >= 2)

    wait_until("alerts in incidents for the EVE line and both syslog messages", found, WAIT)
    assert agent.count("SELECT count(*) FROM events WHERE source LIKE 'syslog://udp/%'") == 1
    assert agent.count("SELECT count(*) FROM events WHERE source LIKE 'syslog://tcp/%'") == 1
    assert agent.count("SELECT count(*) FROM incidents") >= 2
    with urllib.request.urlopen(f"http://{health}/metrics", timeout=10) as response:
        assert b"healthswarm_agent_events_judged" in response.read()


def test_a_peers_signed_indicator_becomes_a_watchlist_hit_and_a_retro_hunt(agent: AgentProcess,
                                                                           tmp_path: Path) -> None:
    # before the warning: a syslog line naming the address that the peer will warn about
    agent.syslog(b"<30>Dec  6 09:00:00 fw-01 kernel: blocked outbound to 198.51.100.88 port 4444", "udp")
    wait_until("the early line stored", lambda: agent.count(
        "SELECT count(*) FROM events WHERE fields LIKE '%198.51.100.88%'") == 1, WAIT)
    # the peer records two indicators and exports a signed bundle; we trust its key and import it
    peer = tmp_path / "peer"
    env = {"HEALTHSWARM_ORGANISATION": "northfield"}
    for value in ("198.51.100.77", "198.51.100.88"):
        added = runner.invoke(app, ["-w", str(peer), "share", "add-indicator", "ipv4", value, "--confidence", "90",
                                    "--tlp", "green"], env=env)
        assert added.exit_code == 0, added.output
    bundle = tmp_path / "warning.json"
    exported = runner.invoke(app, ["-w", str(peer), "share", "export", "-o", str(bundle), "--tlp", "green",
                                   "--no-stored-alerts", "--no-findings"], env=env)
    assert exported.exit_code == 0, exported.output
    shown = runner.invoke(app, ["-w", str(peer), "share", "keys", "show"]).stdout
    public = next(line.split(":", 1)[1].strip() for line in shown.splitlines() if line.startswith("public key"))
    ws = str(agent.workspace)
    assert runner.invoke(app, ["-w", ws, "share", "keys", "trust", "Northfield", public]).exit_code == 0
    imported = runner.invoke(app, ["-w", ws, "share", "import", str(bundle)])
    assert imported.exit_code == 0, imported.output
    wait_until("the retro-hunt alert for the address seen before the warning", lambda: agent.count(
        "SELECT count(*) FROM alerts WHERE rule_id = 'watchlist-retro:ipv4:198.51.100.88' "
        "AND incident_id IS NOT NULL") == 1, WAIT)
    wait_until("the watchlist holds the peer's indicators", lambda: agent.status()["watchlist"] >= 2, WAIT)
    # after the warning: traffic to the other address is a live watchlist hit
    with (agent.logs / "eve.json").open("a") as out:
        out.write(eve_flow_to("198.51.100.77", 1) + "\n")
    wait_until("a watchlist alert in an incident", lambda: agent.count(
        "SELECT count(*) FROM alerts WHERE detector = 'watchlist' AND rule_id = 'watchlist:ipv4:198.51.100.77' "
        "AND incident_id IS NOT NULL") == 1, WAIT)


def test_kill_9_then_restart_stores_nothing_twice(agent: AgentProcess) -> None:
    lines = EVE.read_text().splitlines()
    alerts_per_copy = sum('"event_type": "alert"' in line for line in lines)
    copies = 150
    before_events = agent.count("SELECT count(*) FROM events")
    before_sensor = agent.count("SELECT count(*) FROM alerts WHERE detector = 'suricata'")
    big = agent.base / "bulk.tmp"
    big.write_text("\n".join(lines * copies) + "\n")
    big.rename(agent.logs / "bulk.json")  # appears whole: the follower picks it up at its next rescan
    wait_until("ingestion under way", lambda: agent.count("SELECT count(*) FROM events") > before_events, WAIT)
    assert agent.kill(signal.SIGKILL) == -signal.SIGKILL
    stored_at_kill = agent.count("SELECT count(*) FROM events")
    judged_at_kill = agent.count("SELECT position FROM checkpoints WHERE source = 'agent:detect'")
    # while it is down, more is written and more syslog would be lost (nobody listens): then it comes back
    with (agent.logs / "eve.json").open("a") as out:
        out.write(eve_alert_line() + "\n")
    agent.start()
    total = before_events + len(lines) * copies + 1
    wait_until("every line stored once and judged", lambda: agent.count("SELECT count(*) FROM events") == total
               and agent.caught_up(), 3 * WAIT)
    # the kill came with work pending (lines not stored yet, or stored events not judged yet)
    assert stored_at_kill < total - 1 or judged_at_kill < agent.count("SELECT max(id) FROM events")
    assert agent.count("SELECT count(*) FROM events") == total  # nothing stored twice, nothing lost
    assert agent.count("SELECT count(DISTINCT key) FROM events") == total
    sensor = agent.count("SELECT count(*) FROM alerts WHERE detector = 'suricata'")
    assert sensor == before_sensor + alerts_per_copy * copies + 1  # one alert per alert line, no more
    wait_until("every alert in an incident", lambda: agent.count(
        "SELECT count(*) FROM alerts WHERE incident_id IS NULL") == 0, WAIT)
    # no alert in two incidents, no incident without its alerts
    memberships: dict[str, int] = {}
    for (document,) in agent.query("SELECT document FROM incidents"):
        for alert_id in json.loads(document)["alert_ids"] if isinstance(document, str) else document["alert_ids"]:
            memberships[alert_id] = memberships.get(alert_id, 0) + 1
    assert memberships and max(memberships.values()) == 1
    assert agent.count("SELECT count(*) FROM alerts") == len(memberships)
    assert agent.count("SELECT count(*) FROM incidents WHERE id NOT IN (SELECT incident_id FROM alerts)") == 0


def test_sigterm_stops_gracefully_with_everything_judged(agent: AgentProcess) -> None:
    before = agent.count("SELECT count(*) FROM events")
    with (agent.logs / "eve.json").open("a") as out:
        for n in range(20):
            out.write(eve_flow_to("10.10.2.10", 100 + n) + "\n")
    wait_until("the lines stored", lambda: agent.count("SELECT count(*) FROM events") == before + 20, WAIT)
    assert agent.kill(signal.SIGTERM) == 0
    assert agent.caught_up()
    assert '"agent stopped"' in (agent.base / "agent.log").read_text()
