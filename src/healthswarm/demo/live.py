"""The live part of `healthswarm demo`: one real agent per organisation on loopback, the scenario replayed.

Each organisation gets a workspace of its own (`<workspace>/agents/<org>/`: the ecosystem's inventory, its
keys, a trust store with the other organisation's key) and an `agent.toml` that follows its replay files
and runs the swarm node, seeded with the other agent. Both run as `healthswarm agent run` processes. The
scenario's log lines are then appended to those files in event-time order on an accelerated clock (quiet
spans are cut short), and the agents' stores and status files are watched for what to narrate: St.
Aurelia's agent detects, opens incidents and publishes through its egress gate by policy; Northfield's
agent receives the warning, retro-hunts its own events, finds the beacon of the day before and opens its
own incident. Then both get SIGTERM (each must exit 0) and the figures are read from their stores, so
they are what `healthswarm -w <workspace>/agents/<org> serve` shows.

`bench/agent_peer.py` sets up and runs its two agents with the same pieces (`prepare`, `agent_toml`,
`AgentProcess`, `running`, `wait_ready`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from sqlalchemy import func, select

from healthswarm.demo import ECOSYSTEM, LOGS, RULES, STAFF
from healthswarm.errors import ConfigError, HealthswarmError
from healthswarm.ingest.formats import detect_format
from healthswarm.inventory import load_inventory
from healthswarm.model import Event
from healthswarm.share.signing import TrustStore, load_or_create_keys
from healthswarm.store import Store
from healthswarm.store.alerts import alert_totals, load_incidents
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.tables import alerts, events

SENDER = "st-aurelia"
RECEIVER = "northfield"
# which organisation's sensors wrote each log of the scenario (src/healthswarm/demo/README.md)
LOG_OWNERS = {"northfield-eve.json": RECEIVER}
SPEED = 600.0       # event seconds per wall second: ten scenario minutes a second
MAX_GAP = 60.0      # event seconds: a quieter span is cut to this, so the whole day replays in about 22 s
# the analyst's window before an incident is published (the agent's default is 300 s); the other periods
# (publishing looks every 5 s, the watchlist reloads every 5 s, gossip rounds of 1 s) stay the defaults
DEMO_HOLD = 5.0
MIN_SEVERITY = 3
# bounds, not expectations (on an idle machine both take seconds): a loaded one, or a first run compiling the
# default rule packs in each agent, takes much longer
READY_TIMEOUT = 240.0
SETTLE_TIMEOUT = 240.0  # after the replay: for the peer's incident and for both agents to judge everything
KEEP = {"cache"}        # compiled Sigma rules survive a re-run; everything else of an agent workspace starts afresh


class DemoError(HealthswarmError):
    """The live demo could not run (an agent did not start, exited badly, or the warning never arrived)."""


# --- setting up ---------------------------------------------------------------------------------------

def check_port_free(port: int) -> None:
    """A clear error now rather than an agent whose swarm node cannot listen."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"127.0.0.1:{port} is taken ({exc.strerror}); choose another --live-port "
                             "(or 0: any free ports)") from None


def validate(speed: float, first_port: int) -> None:
    """The options' errors before anything runs (the ports are checked again when the agents start)."""
    if speed <= 0:
        raise ConfigError(f"--speed {speed:g}: expected a positive factor (scenario seconds per second)")
    if not 0 <= first_port <= 65534:
        raise ConfigError(f"--live-port {first_port}: expected 1 to 65534 (or 0: any free ports)")
    swarm_ports(first_port, 2)


def swarm_ports(first: int, n: int) -> list[int]:
    """`n` ports from `first` (each checked free), or free ones the OS picks when `first` is 0."""
    if first:
        ports = list(range(first, first + n))
        for port in ports:
            check_port_free(port)
        return ports
    from healthswarm.swarm.consortium import free_ports

    return free_ports(n)


def prepare(base: Path, organisations: list[str]) -> dict[str, Path]:
    """One fresh workspace per organisation under `base`: the ecosystem's inventory, keys, and every other
    organisation's public key in its trust store (group "consortium")."""
    inventory = load_inventory([ECOSYSTEM])
    workspaces = {}
    for org in organisations:
        ws = base / org
        if ws.exists():
            for child in ws.iterdir():
                if child.name not in KEEP:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        ws.mkdir(parents=True, exist_ok=True)
        store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
        with store.transaction() as conn:
            replace_inventory(conn, inventory)
        store.close()
        workspaces[org] = ws
    keys = {org: load_or_create_keys(ws).public_text for org, ws in workspaces.items()}
    for org, ws in workspaces.items():
        trust = TrustStore.in_workspace(ws)
        for other, public in keys.items():
            if other != org:
                trust.trust(other, public, group="consortium")
    return workspaces


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def agent_toml(org: str, files: list[tuple[Path, str]], listen: int, seeds: list[int], *, hold: float,
               min_severity: int = MIN_SEVERITY, rules: list[Path] | None = None, staff: Path | None = None) -> str:
    """An agent.toml (docs/agent.md): followed files with their formats, the swarm node seeded with the
    other agents; every period not named here keeps its default. Paths are absolute: the agent reads a relative
    one against the file's folder, and the demo's workspace may be relative to where it runs (`./.healthswarm`)."""
    lines = ["[agent]", f"organisation = {json.dumps(org)}", 'health = "127.0.0.1:0"', ""]
    for path, fmt in files:
        lines += ["[[sources.files]]", f"paths = {_toml_list([str(path.resolve())])}", f"format = {json.dumps(fmt)}",
                  ""]
    lines += ["[detect]", f"rules = {_toml_list([str(r.resolve()) for r in rules or []])}"]
    if staff is not None:
        lines.append(f"staff = {json.dumps(str(staff.resolve()))}")
    lines += ["", "[swarm]", "enabled = true", f'listen = "127.0.0.1:{listen}"',
              f"seeds = {_toml_list([f'127.0.0.1:{p}' for p in seeds])}", f"min_severity = {min_severity}",
              f"hold = {hold}", ""]
    return "\n".join(lines)


# --- one agent process ----------------------------------------------------------------------------------

@dataclass
class AgentProcess:
    """`healthswarm -w WS agent run --config WS/agent.toml`, its log in `WS/agent.log`."""

    org: str
    workspace: Path
    proc: subprocess.Popen[bytes] | None = None
    signalled: bool = False  # SIGTERM sent to this process

    @property
    def log(self) -> Path:
        return self.workspace / "agent.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.signalled = False
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "healthswarm", "-w", str(self.workspace), "agent", "run", "--config",
                 str(self.workspace / "agent.toml"), "--log-level", "info"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.workspace / "agent" / "status.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def last_log_line(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        if not lines:
            return ""
        try:
            return str(json.loads(lines[-1]).get("msg", lines[-1]))
        except ValueError:
            return lines[-1]

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(f"{self.org}'s agent exited with status {self.proc.returncode}: {self.last_log_line()} "
                            f"(log: {self.log})")

    def terminate(self) -> None:
        """SIGTERM, once: a second one could reach the process after its graceful stop, while the interpreter
        finalises with the default handlers back, and kill it (status -15)."""
        if self.proc is not None and self.proc.poll() is None and not self.signalled:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM, then wait for the graceful stop (sources commit, detection catches up); the exit status."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise DemoError(f"{self.org}'s agent did not stop within {timeout:.0f} s of SIGTERM (killed); its last "
                            f"log line: {self.last_log_line()} (log: {self.log})") from None


def wait_ready(agents: list[AgentProcess], timeout: float = READY_TIMEOUT) -> None:
    """Until every agent is ready and its swarm node knows another member alive; a clear error otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for agent in agents:
            agent.check_alive()
            status = agent.status()
            swarm = status.get("swarm") or {}
            if swarm.get("error"):
                raise DemoError(f"{agent.org}'s swarm node cannot run: {swarm['error']}")
            if not status.get("ready") or int(swarm.get("members_alive", 0)) < 1:
                pending.append(agent.org)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"agents not ready within {timeout:.0f} s: {', '.join(pending)} (logs: "
                            f"{', '.join(str(a.log) for a in agents if a.org in pending)})")
        time.sleep(0.2)


@contextlib.contextmanager
def running(agents: list[AgentProcess]) -> Iterator[list[AgentProcess]]:
    """Start every agent; on the way out (an error included) stop them all, never leaving one behind."""
    try:
        for agent in agents:
            agent.start()
        yield agents
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            if agent.proc is not None and agent.proc.poll() is None:
                with contextlib.suppress(DemoError):
                    agent.stop()


# --- what an agent's store shows ------------------------------------------------------------------------

@dataclass
class Observed:
    """What one agent's store held at one look (read-only; the agent writes)."""

    events: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)     # rule_id, title, level, incident_id
    incidents: list[dict[str, Any]] = field(default_factory=list)  # the stored documents
    totals: dict[str, int] = field(default_factory=dict)           # store.alerts.alert_totals: what the API counts

    @classmethod
    def look(cls, store: Store) -> Observed:
        with store.read() as conn:
            n = int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)
            rows = conn.execute(select(alerts.c.rule_id, alerts.c.title, alerts.c.level, alerts.c.incident_id,
                                       alerts.c.document).order_by(alerts.c.timestamp)).all()
            docs = [i.as_dict() for i in load_incidents(conn)]
            totals = alert_totals(conn)
        found = [{"rule_id": r.rule_id, "title": r.title, "level": r.level, "incident_id": r.incident_id,
                  "description": (r.document or {}).get("description", "")} for r in rows]
        return cls(n, found, docs, totals)

    def retro_alerts(self, value: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["rule_id"].startswith("watchlist-retro:")
                and (value is None or a["rule_id"].endswith(f":{value}"))]

    def incident_of(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        return next((i for i in self.incidents if i["id"] == alert["incident_id"]), None)


# --- the replay -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    at: datetime   # the record's event time
    org: str
    target: Path   # the followed file it is appended to
    text: bytes


def timeline(replay_dirs: dict[str, Path]) -> tuple[list[Line], dict[str, tuple[Path, str]], dict[str, int]]:
    """The scenario's lines in event-time order; the followed file and format of each log; events per
    organisation (what each agent must have stored once the replay is done).

    Each log is parsed once with its own format (the parser that will ingest it): a line's time is the
    earliest of its events; a line without events (a reject) keeps the time of the line before it."""
    lines: list[Line] = []
    files: dict[str, tuple[Path, str]] = {}
    expected = dict.fromkeys(replay_dirs, 0)
    for path in sorted(LOGS.iterdir()):
        raw = path.read_bytes()
        fmt = detect_format(raw[:65536], path.name)
        if fmt is None:
            raise DemoError(f"{path}: no format recognises this demo log")
        org = LOG_OWNERS.get(path.name, SENDER)
        target = replay_dirs[org] / path.name
        files[path.name] = (target, fmt.name)
        with path.open("rb") as stream:
            records = list(fmt.parse(stream, str(path)))
        parsed = [e for e in records if isinstance(e, Event)]
        if not parsed:
            reason = next((str(getattr(r, "reason", "")) for r in records), "empty")
            raise DemoError(f"{path}: the {fmt.name} parser finds no event in this demo log ({reason})")
        expected[org] += len(parsed)
        first: dict[int, datetime] = {}
        for event in parsed:
            first[event.record] = min(first.get(event.record, event.timestamp), event.timestamp)
        last = min(first.values())
        # records are lines (HL7 segments inside a message end in CR, a message in LF)
        for number, text in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"), 1):
            last = first.get(number, last)
            lines.append(Line(last, org, target, text + b"\n"))
    lines.sort(key=lambda line: line.at)  # stable: a file's lines of one moment keep their order
    return lines, files, expected


def schedule(lines: list[Line], speed: float, max_gap: float) -> list[float]:
    """Each line's wall-clock offset from the replay's start: event time ÷ speed, quiet spans cut to max_gap."""
    offsets, wall = [], 0.0
    for before, line in zip([None, *lines], lines, strict=False):
        if before is not None:
            wall += min((line.at - before.at).total_seconds(), max_gap) / speed
        offsets.append(wall)
    return offsets


# --- the narration --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Milestone:
    wall: float        # seconds since the replay started
    scenario: str      # the replay clock then (UTC, event time)
    org: str
    what: str          # ready, first-alert, incident, published, received, retro-hunt, peer-incident
    text: str


@dataclass
class Watcher:
    """Turns successive looks at both agents into milestones, each said once."""

    stores: dict[str, Store]
    agents: dict[str, AgentProcess]
    say: Callable[[Milestone], None]
    hold: float = DEMO_HOLD
    started: float = field(default_factory=time.monotonic)
    clock: str = ""
    milestones: list[Milestone] = field(default_factory=list)
    seen_incidents: set[str] = field(default_factory=set)
    first_alert_at: float | None = None
    published_at: float | None = None
    peer_incident_at: float | None = None
    published: set[str] = field(default_factory=set)
    received: int = 0
    retro: set[str] = field(default_factory=set)
    peer_incidents: set[str] = field(default_factory=set)  # narrated, one line each
    peer_incident: dict[str, Any] | None = None            # the first: the latency is measured to it

    def note(self, org: str, what: str, text: str) -> float:
        wall = time.monotonic() - self.started
        milestone = Milestone(round(wall, 2), self.clock, org, what, text)
        self.milestones.append(milestone)
        self.say(milestone)
        return wall

    def look(self) -> None:
        """The sender's news first (alerts, incidents, publications), then the peer's (warning, hunt, incident)."""
        for agent in self.agents.values():
            agent.check_alive()
        sender = Observed.look(self.stores[SENDER])
        if sender.alerts and self.first_alert_at is None:
            first = sender.alerts[0]
            self.first_alert_at = self.note(SENDER, "first-alert", f"first alert: {first['title']} ({first['level']})")
        for inc in reversed(sender.incidents):
            if inc["id"] not in self.seen_incidents and int(inc["severity"]) >= MIN_SEVERITY:
                self.seen_incidents.add(inc["id"])
                self.note(SENDER, "incident", f"incident {inc['id']} ({_severity(inc)}): {inc['title']}")
        # the agent writes published.json as it publishes (its status file lags by up to a second)
        published = set(_read_list(self.agents[SENDER].workspace / "agent" / "published.json"))
        if new := sorted(published - self.published):
            self.published |= published
            wall = self.note(SENDER, "published", f"due by policy (≥ {_severity({'severity': MIN_SEVERITY})}, "
                                                  f"held {self.hold:g} s): {', '.join(new)} published through the "
                                                  "egress gate (selected, sanitised, leak-checked, signed) by gossip")
            self.published_at = self.published_at if self.published_at is not None else wall
        for org in self.stores:
            if org != SENDER:
                self._peer(org, Observed.look(self.stores[org]))

    def _peer(self, org: str, observed: Observed) -> None:
        swarm = self.agents[org].status().get("swarm") or {}
        retro = observed.retro_alerts()
        # each retro-hunt alert is a received warning: the status file, written once a second, may lag behind it
        received = max(int(swarm.get("received_warnings", 0)), len({a["rule_id"] for a in retro}))
        if received > self.received:
            self.note(org, "received", f"warning from {SENDER} received by gossip, signature verified: "
                                        f"{received} indicator{'s' if received > 1 else ''} on its watchlist")
            self.received = received
        for alert in retro:
            if alert["rule_id"] not in self.retro:
                self.retro.add(alert["rule_id"])
                self.note(org, "retro-hunt", f"retro-hunt: {alert['rule_id'].split(':', 1)[1]} "
                                              f"{alert['description']}")
            incident = observed.incident_of(alert)
            if incident is not None and incident["id"] not in self.peer_incidents:
                self.peer_incidents.add(incident["id"])
                text = f"its own incident {incident['id']} ({_severity(incident)}): {incident['title']}"
                wall = self.note(org, "peer-incident", text)
                if self.peer_incident is None:
                    self.peer_incident, self.peer_incident_at = incident, wall


def _severity(doc: dict[str, Any]) -> str:
    from healthswarm.model.words import severity_word

    return severity_word(int(doc["severity"]))


def _read_list(path: Path) -> list[str]:
    try:
        return [str(x) for x in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError):
        return []


# --- the whole live run ---------------------------------------------------------------------------------

@dataclass
class LiveResult:
    speed: float
    hold: float
    replayed: int
    replay_seconds: float
    milestones: list[Milestone]
    agents: dict[str, dict[str, Any]]             # per organisation: workspace, exit status, figures
    first_alert_to_peer_incident: float | None    # wall seconds, St. Aurelia's first alert → Northfield's incident
    published_to_peer_incident: float | None
    peer_incident: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        return {"speed": self.speed, "hold": self.hold, "lines_replayed": self.replayed,
                "replay_seconds": round(self.replay_seconds, 1),
                "first_alert_to_peer_incident": _round(self.first_alert_to_peer_incident),
                "published_to_peer_incident": _round(self.published_to_peer_incident),
                "peer_incident": self.peer_incident and {k: self.peer_incident[k] for k in
                                                         ("id", "title", "severity", "alert_ids")},
                "agents": self.agents,
                "milestones": [m.__dict__ for m in self.milestones]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


Progress = Callable[[int, int, str], None]  # lines written, lines in all, the replay clock


def run_live(workspace: Path, *, speed: float = SPEED, max_gap: float = MAX_GAP, hold: float = DEMO_HOLD,
             first_port: int = 0, say: Callable[[Milestone], None] = lambda m: None,
             progress: Progress = lambda done, total, clock: None, settle: float = SETTLE_TIMEOUT) -> LiveResult:
    """Prepare, start, replay, watch, stop: see the module's docstring."""
    validate(speed, first_port)
    orgs = [SENDER, RECEIVER]
    ports = swarm_ports(first_port, len(orgs))
    workspaces = prepare(workspace / "agents", orgs)
    replay_dirs = {org: ws / "replay" for org, ws in workspaces.items()}
    lines, files, expected = timeline(replay_dirs)
    for org, ws in workspaces.items():
        replay_dirs[org].mkdir()
        own = [(target, fmt) for target, fmt in files.values() if target.parent == replay_dirs[org]]
        for target, _ in own:
            target.touch()  # followed from its first byte, as the agent starts
        port = ports[orgs.index(org)]
        (ws / "agent.toml").write_text(agent_toml(
            org, own, port, [p for p in ports if p != port], hold=hold, rules=[RULES],
            staff=STAFF if org == SENDER else None), encoding="utf-8")
    agents = {org: AgentProcess(org, ws) for org, ws in workspaces.items()}
    stores = {org: Store.open(f"sqlite:///{ws / 'healthswarm.db'}") for org, ws in workspaces.items()}
    exits: dict[str, int] = {}
    try:
        with running(list(agents.values())):
            wait_ready(list(agents.values()))
            watcher = Watcher(stores, agents, say, hold)
            for org, agent in agents.items():
                watcher.note(org, "ready", ready_text(agent.proc.pid if agent.proc else None, ports[orgs.index(org)],
                                                      sum(t.parent == replay_dirs[org] for t, _ in files.values())))
            replay_seconds = _replay(lines, schedule(lines, speed, max_gap), watcher, progress)
            deadline = time.monotonic() + settle
            while watcher.peer_incident is None or not _caught_up(agents, expected):
                if time.monotonic() > deadline:
                    missing = "Northfield's incident from the warning" if watcher.peer_incident is None else \
                        "both agents judging every replayed event"
                    raise DemoError(f"not within {settle:.0f} s of the replay's end: {missing} (logs: "
                                    f"{', '.join(str(a.log) for a in agents.values())})")
                watcher.look()
                time.sleep(0.25)
            for agent in agents.values():  # both stop at once; each must exit 0
                agent.terminate()
            for org, agent in agents.items():
                exits[org] = agent.stop()
        bad = {org: code for org, code in exits.items() if code != 0}
        if bad:
            org, code = next(iter(bad.items()))
            raise DemoError(f"{org}'s agent exited with status {code} after SIGTERM: {agents[org].last_log_line()}")
        figures = {org: _figures(workspaces[org], Observed.look(stores[org]), agents[org].status(), exits[org])
                   for org in orgs}
    finally:
        for store in stores.values():
            store.close()
    return LiveResult(speed, hold, len(lines), replay_seconds, watcher.milestones, figures,
                      _between(watcher.first_alert_at, watcher.peer_incident_at),
                      _between(watcher.published_at, watcher.peer_incident_at), watcher.peer_incident)


def ready_text(pid: int | None, port: int, logs: int) -> str:
    return (f"agent up (pid {pid or '?'}), swarm node on 127.0.0.1:{port}, following {logs} "
            f"log{'' if logs == 1 else 's'}")


def _replay(lines: list[Line], offsets: list[float], watcher: Watcher, progress: Progress) -> float:
    """Append each line to its followed file when its time comes, looking at the agents in between."""
    handles: dict[Path, Any] = {}
    start = time.monotonic()
    next_look = 0.0
    try:
        for n, (line, offset) in enumerate(zip(lines, offsets, strict=True), 1):
            while (wait := start + offset - time.monotonic()) > 0:
                if time.monotonic() >= next_look:
                    watcher.look()
                    next_look = time.monotonic() + 0.25
                time.sleep(min(wait, 0.05))
            handle = handles.get(line.target) or handles.setdefault(line.target, line.target.open("ab"))
            handle.write(line.text)
            handle.flush()
            watcher.clock = line.at.strftime("%d %b %H:%M")
            progress(n, len(lines), watcher.clock)
    finally:
        for handle in handles.values():
            handle.close()
    return time.monotonic() - start


def _caught_up(agents: dict[str, AgentProcess], expected: dict[str, int]) -> bool:
    for org, agent in agents.items():
        status = agent.status()
        if int(status.get("events_stored", 0)) < expected[org] or \
                int(status.get("events_judged", 0)) < int(status.get("events_stored", 0)):
            return False
    return True


def _between(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _figures(ws: Path, observed: Observed, status: dict[str, Any], exit_code: int) -> dict[str, Any]:
    swarm = status.get("swarm") or {}
    return {"workspace": str(ws), "exit": exit_code, "events": observed.events, "alerts": observed.totals["alerts"],
            "alerts_in_incidents": observed.totals["in_incidents"], "incidents": observed.totals["incidents"],
            "incidents_high_or_critical": sum(int(i["severity"]) >= MIN_SEVERITY for i in observed.incidents),
            "retro_hunt_alerts": len(observed.retro_alerts()),
            "published_items": int(swarm.get("published_items", 0)),
            "received_warnings": int(swarm.get("received_warnings", 0))}


# --- what `healthswarm demo` shows ----------------------------------------------------------------------

TITLE = "Live: one agent per organisation, the day replayed into them"


def milestone_line(m: Milestone) -> str:
    return f"+{m.wall:5.1f} s  {m.scenario or '':>12}  {m.org:<11} {m.text}"


def show(result: LiveResult) -> list[RenderableType]:
    """The agents' figures as their stores hold them after the stop, and the latency from one to the other."""
    folders = sorted({str(Path(f["workspace"]).parent) for f in result.agents.values()})
    table = Table(title="The agents after SIGTERM: what their stores hold (the API of each workspace serves the same)",
                  caption=f"workspaces: {', '.join(folders)}/<organisation>")
    columns = ("organisation", "exit", "events", "alerts", "incidents", "high or critical", "retro-hunt alerts",
               "published items", "indicators received")
    for column in columns:
        table.add_column(column, justify="left" if column == "organisation" else "right")
    for org, f in result.agents.items():
        table.add_row(org, str(f["exit"]), str(f["events"]), str(f["alerts"]), str(f["incidents"]),
                      str(f["incidents_high_or_critical"]), str(f["retro_hunt_alerts"]), str(f["published_items"]),
                      str(f["received_warnings"]))
    latency = result.first_alert_to_peer_incident
    said = (f"{SENDER}'s first alert → {RECEIVER}'s own incident: {latency:.1f} s on the wall clock "
            f"(replay ×{result.speed:g}, hold {result.hold:g} s; from the publication: "
            f"{result.published_to_peer_incident or 0:.1f} s). bench/agent_peer.py measures it without the replay."
            if latency is not None else f"{RECEIVER} opened no incident from the warning")
    return [table, said]
