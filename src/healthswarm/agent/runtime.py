"""The embedded agent: SQLite, the in-memory bus; sources → ingest → streaming detection → correlation →
incidents → live risk, the watchlist fed by peers, the swarm node, the API, health and metrics.

Processes: with `[agent] ingest_process` (auto: 2 or more CPUs) the sources but stdin run in an ingest process
of their own (agent/ingest_process.py: how it stays exact, wakes detection, waits for it, stops and is restarted),
so that detection has this process's core and GIL; otherwise everything runs in this one.

Threads:
- one per source (followed files, the syslog receiver's listeners and writer, each MQTT/NATS URL, stdin),
  each with its own `AgentPipeline` (its commits wake detection through the bus); with an ingest process,
  stdin here and `agent-ingest`, which relays the ingest process's commits as wake-ups;
- `agent-detect`: the detection loop (`StreamDetector.step` until caught up, then waits for a wake-up on
  the bus); between steps it judges what only time completes;
- `agent-watchlist`: refreshes the watchlist every `[watchlist] refresh` seconds, and at once when the swarm
  node accepts a peer's warning, and retro-hunts new values (their alerts are committed with the next detection
  step);
- `agent-risk`: live risk, re-annotating the incidents the steps changed (at most every `[risk] interval`
  seconds), when no responder process runs it (agent/live_risk.py);
- the swarm node's asyncio loop, uvicorn's (with `[api] enabled`) and the health endpoint's.

Stopping (SIGTERM/SIGINT, or `stop()`): the sources stop first and commit what they hold, detection catches
up with everything stored (bounded by `drain_timeout`) and flushes, then the node leaves the swarm and the
servers close; the process exits 0. A kill -9 instead loses nothing committed (see agent/detect.py and
ingest/pipeline.py for why a restart then neither skips nor repeats anything).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text

from healthswarm.agent import metrics, respond_process
from healthswarm.agent.config import AgentConfig
from healthswarm.agent.detect import CURSOR, StepResult, StreamDetector
from healthswarm.agent.ingest_process import IngestProcess, Spec, wanted
from healthswarm.agent.live_risk import RiskPasses
from healthswarm.agent.sources import (
    SOURCE_THREADS,
    STORED_SUBJECT,
    AgentPipeline,
    Handoff,
    choose_format,
    start_sources,
    syslog_bound,
)
from healthswarm.agent.swarm import read_json as _read_json
from healthswarm.agent.swarm import write_json as _write_json
from healthswarm.agent.threads import start_guarded
from healthswarm.bus.memory import MemoryBus
from healthswarm.config import Settings
from healthswarm.detect.watchlist import Watch, WatchlistDetector
from healthswarm.errors import ConfigError
from healthswarm.inventory.discover.live import LiveDiscovery
from healthswarm.model import Alert
from healthswarm.store import Store
from healthswarm.store.events import get_checkpoint
from healthswarm.store.inventory import load_inventory

log = logging.getLogger("healthswarm.agent")
STATUS = "status.json"
HUNTED = "hunted.json"


def default_packs() -> tuple[str, ...] | None:
    """The rule packs `detect` loads by default, where this version has packs (detect/sigma/packs.py)."""
    try:
        from healthswarm.detect.sigma import packs
    except ImportError:
        return None
    value = getattr(packs, "DEFAULT_PACKS", None)
    return tuple(value) if value else None


def build_detectors(config: AgentConfig, workspace: Path, assets: list[Any], *, extra_rules: Sequence[Path] = (),
                    placeholders: Mapping[str, Sequence[str]] | None = None) -> tuple[list[Any], WatchlistDetector]:
    """The whole suite of detect/suite.py as configured, plus the watchlist detector: what the embedded agent and
    the scale-out detect role (`agent run --role detect`, with `--rules` as `extra_rules`) both run."""
    import dataclasses

    from healthswarm.detect.learn.asset_baseline import BaselineConfig
    from healthswarm.detect.sigma import CACHE_SUBDIR
    from healthswarm.detect.suite import SuiteSpec, build_suite

    d = config.detect
    spec: dict[str, Any] = {
        "rules": (*(config.path(r) for r in d.rules), *extra_rules),
        "placeholders": dict(placeholders or {}),
        "baseline": BaselineConfig() if d.baselines else None,
        "clinical": d.clinical,
        "staff": config.path(d.staff) if d.staff else None,
        "cache_dir": workspace / CACHE_SUBDIR,
        "models": d.models,
        "workspace": workspace,
    }
    if "packs" in {f.name for f in dataclasses.fields(SuiteSpec)}:
        packs = d.packs or default_packs()
        if packs:
            spec["packs"] = packs
    suite = build_suite(SuiteSpec(**spec), assets)
    missing = [p for p in suite.ruleset.problems if p.message == "no such file or folder"]
    if missing:
        raise ConfigError(f"detect.rules (or --rules): {missing[0]}")
    watchlist = WatchlistDetector()
    return [*suite.detectors, watchlist], watchlist


@dataclass
class Bound:
    """Addresses actually listened on (port 0 in the config picks a free one)."""

    health: str = ""
    syslog_udp: str = ""
    syslog_tcp: str = ""
    api: str = ""
    swarm: str = ""


@dataclass
class AgentState:
    started: float = field(default_factory=time.time)
    ready: bool = False
    stopping: bool = False
    last_step: float = 0.0
    incidents_changed: bool = False
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors.append(text[:300])
        del self.errors[:-20]


class Agent:
    def __init__(self, config: AgentConfig, settings: Settings, *, drain_timeout: float = 30.0) -> None:
        self.config = config
        self.settings = settings
        self.workspace = settings.ensure_workspace() if not settings.db else settings.workspace
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.folder = self.workspace / "agent"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.drain_timeout = drain_timeout
        self.store = Store.open(settings.db_url)
        self.write_lock = threading.Lock()
        self.bus = MemoryBus()
        self.stop_event = threading.Event()
        self.state = AgentState()
        self.bound = Bound()
        with self.store.read() as conn:
            inventory = load_inventory(conn)
        self.organisation = config.organisation or settings.organisation or (
            inventory.organisations[0].id if len(inventory.organisations) == 1 else "")
        self.assets = list(inventory.assets)
        self.detectors, self.watchlist = build_detectors(config, self.workspace, self.assets)
        # devices and flows seen on the wire, fed by the detection step (its cursor) and kept where
        # `inventory discover` and the Discovered view read them; undeclared flows into safety-critical devices alert
        with self.store.read() as conn:
            cursor = get_checkpoint(conn, CURSOR)
        self.discovery = LiveDiscovery(self.store, self.workspace, inventory, through=cursor.position if cursor else 0)
        self.detectors.append(self.discovery.detector)
        self.handoff = Handoff()
        self.detector = StreamDetector(self.store, self.detectors, self.write_lock, batch=config.detect.batch,
                                       on_commit=self._on_step, handed=self.handoff.take)
        self.pipelines: list[AgentPipeline] = []
        self.threads: list[threading.Thread] = []
        self.syslog: Any = None
        self.ingest: IngestProcess | None = None
        # what the agent's other processes log with: this one's level, and which agent they work for
        log_level, log_static = logging.getLogger("healthswarm").getEffectiveLevel(), {"agent": self.workspace.name}
        if wanted(config, settings.db_url):
            self.ingest = IngestProcess(
                Spec(config, settings.db_url, self.organisation, self.folder, log_level, log_static),
                on_stored=self._ingested, on_error=self._ingest_error, on_bound=self.bound.__dict__.update)
        self.swarm: Any = None
        self.api_server: Any = None
        self.health_server: Any = None
        self.step_listeners: list[Any] = []
        self.responder: respond_process.ResponderProcess | None = None
        self._responder_thread: Any = None  # playbooks by policy in this process (agent/respond.py)
        if respond_process.wanted(config):
            risk_interval = config.risk.interval if config.risk.live else None
            self.responder = respond_process.ResponderProcess(respond_process.Spec(
                settings.db_url, config.respond, risk_interval, self.workspace, log_level, log_static),
                on_failure=self._stage_failed)
            self.step_listeners.append(self.responder)
        elif config.respond.enabled:
            from healthswarm.agent.respond import PolicyResponder

            self._responder_thread = PolicyResponder(self.store, config.respond, self.workspace, self.write_lock,
                                                     on_failure=partial(self._stage_failed, "respond"))
            self.step_listeners.append(self._responder_thread)
        # live risk in this process's thread when no responder process runs it
        self.risk = (RiskPasses(self.store, self.write_lock, config.risk.interval)
                     if config.risk.live and self.responder is None else None)
        self._hunted: set[str] = set(_read_json(self.folder / HUNTED, []))
        self._watchlist_wake = threading.Event()  # the swarm node accepted a peer's warning (or stopping)
        self._stored_at: list[tuple[int, float]] = []  # (events stored so far, when): store→incident latency
        self._stored_total = 0
        self._stored_lock = threading.Lock()
        self._sources_done = threading.Event()

    # --- building -------------------------------------------------------------------------------

    def pipeline(self, *, can_wait: bool = True) -> AgentPipeline:
        """A source's pipeline; `can_wait`: the source loses nothing by waiting for detection (not syslog)."""
        pipeline = AgentPipeline.for_store(self.store, self.organisation, write_lock=self.write_lock, bus=self.bus,
                                           handoff=self.handoff)
        pipeline.on_stored = self._on_stored
        pipeline.stop = self.stop_event
        pipeline.waits_for_detection = can_wait
        self.pipelines.append(pipeline)
        return pipeline

    def _on_stored(self, count: int, when: float | None = None) -> None:
        metrics.EVENTS_STORED.inc(count)
        with self._stored_lock:
            self._stored_total += count
            self._stored_at.append((self._stored_total, when or time.time()))
            del self._stored_at[:-10_000]

    def _ingested(self, count: int, when: float) -> None:
        """A commit of the ingest process: counted, and the wake-up of the detection loop."""
        self._on_stored(count, when)
        self.bus.publish(STORED_SUBJECT, str(count).encode())

    def _ingest_error(self, text: str) -> None:
        metrics.FAILURES.labels("ingest").inc()
        self.state.error(text)

    def _thread(self, target: Any, name: str, *args: Any) -> None:
        self.threads.append(start_guarded(target, name, args, self.state.error))

    def start(self) -> None:
        cfg = self.config
        if self.responder is not None:  # before detection, whose steps it answers
            self.responder.start()
        if self._responder_thread is not None:  # its look-back over every stored incident now, as the responder
            # process's, not at the first step that stores events (an agent restarted with nothing new would never)
            self._responder_thread(StepResult())
        if cfg.health:
            from healthswarm.agent.health import serve
            from healthswarm.ingest.sources.syslog import parse_address

            host, port = parse_address(cfg.health, 9108)
            self.health_server = serve(port, self.readiness, metrics.REGISTRY, host)
            self.bound.health = f"{host}:{self.health_server.server_port}"
        self._thread(self._detect_loop, "agent-detect")
        if self.risk is not None:
            self._thread(self.risk.run, "agent-risk", self.stop_event, partial(self._stage_failed, "risk"))
        if self.ingest is not None:
            self.ingest.start()
        else:
            self.syslog = start_sources(cfg, lambda can_wait: self.pipeline(can_wait=can_wait), self._thread,
                                        self.stop_event)
            if self.syslog is not None:
                self.bound.__dict__.update(syslog_bound(self.syslog))
        if cfg.stdin.enabled:
            from healthswarm.ingest.sources.file import ingest_stdin

            self._thread(ingest_stdin, "agent-stdin", self.pipeline(), choose_format(cfg.stdin.format, "stdin"))
        if cfg.swarm.enabled:
            from healthswarm.agent.swarm import AgentSwarm

            self.swarm = AgentSwarm(cfg.swarm, self.workspace, self.organisation, self.store)
            self.swarm.on_accepted = self._watchlist_wake.set
            self.swarm.start()
            self.bound.swarm = cfg.swarm.listen
        if cfg.api.enabled:
            self._start_api()
        self.state.ready = True
        self.write_status()
        log.info("agent started", extra={"workspace": str(self.workspace), "bound": self.bound.__dict__,
                                         "detectors": [d.name for d in self.detectors]})

    def _start_api(self) -> None:
        import uvicorn

        from healthswarm.api import create_app
        from healthswarm.ingest.sources.syslog import parse_address
        from healthswarm.security.proxies import TrustedProxies
        from healthswarm.security.tls import uvicorn_options

        host, port = parse_address(self.config.api.listen, 8000)
        app = create_app(self.settings, engine=self.store.engine)
        # forwarded headers only from [api] trusted_proxies (uvicorn's default believes any loopback client)
        proxies = TrustedProxies(self.settings.api.trusted_proxies).uvicorn_options()
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               **uvicorn_options(self.settings.tls), **proxies))
        self.api_server = server
        thread = threading.Thread(target=server.run, name="agent-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.started and server.servers:
            sock = server.servers[0].sockets[0].getsockname()
            self.bound.api = f"{sock[0]}:{sock[1]}"

    # --- the detection loop ---------------------------------------------------------------------

    def _detect_loop(self) -> None:
        """Step until caught up, then wait for a wake-up; after a stop request, until the sources have committed
        their last batches and everything stored is judged, then flush once more."""
        from healthswarm.api.heap import TRIM_SECONDS, return_free_heap

        subscription = self.bus.subscribe(STORED_SUBJECT, "agent-detect")
        next_flush = time.monotonic() + self.config.detect.flush_interval
        next_status = 0.0
        next_trim = time.monotonic() + TRIM_SECONDS
        self._refresh_watchlist()  # the watchlist as stored before the first event is judged; then agent-watchlist
        self._thread(self._watchlist_loop, "agent-watchlist")
        while not self.state.stopping:
            now = time.monotonic()
            if now >= next_flush:
                self.detector.flush()
                next_flush = now + self.config.detect.flush_interval
            try:
                result = self.detector.step()
            except Exception as exc:
                metrics.FAILURES.labels("detect").inc()
                self.state.error(f"detect: {type(exc).__name__}: {exc}")
                log.warning("detection step failed; retried", exc_info=exc)
                time.sleep(0.5)
                continue
            if now >= next_status:
                self.write_status()
                next_status = now + 1.0
            if now >= next_trim:
                return_free_heap()
                next_trim = now + TRIM_SECONDS
            if result.events or result.alerts or result.incidents:
                for message in subscription.fetch(100_000, 0.0):  # wake-ups for what the steps already read
                    message.ack()
                continue  # more may be waiting: no wait until caught up
            if self._sources_done.is_set():
                self.detector.flush()
                self.detector.step()
                return
            for message in subscription.fetch(1_000, 0.5):
                message.ack()

    def _on_step(self, result: StepResult) -> None:
        self.discovery.advance(self.detector.cursor)
        self.state.last_step = time.time()
        metrics.EVENTS_JUDGED.inc(result.events)
        metrics.INCIDENTS.inc(len(result.incidents))
        for alert in result.found:
            metrics.ALERTS.labels(alert.detector).inc()
        metrics.STEP_SECONDS.observe(time.time() - result.born)
        if self.ingest is not None:  # room for the ingest process's sources that wait for detection
            self.ingest.judged(self.detector.cursor)
        if result.incidents:
            self.state.incidents_changed = True
            if self.risk is not None:
                self.risk.add(result.incidents)
            # latency: from when the events of this step were stored (the oldest batch it read) to now
            with self._stored_lock:
                judged = self.detector.stats.events
                stored_at = next((t for total, t in self._stored_at if total >= judged), None)
            if stored_at is not None:
                metrics.STORE_TO_INCIDENT.observe(max(time.time() - stored_at, 0.0))
        for listener in self.step_listeners:
            listener(result)

    # --- the watchlist --------------------------------------------------------------------------

    def _watchlist_loop(self) -> None:
        """Refreshes beside detection, not between its steps: a retro-hunt reads every stored event, which held
        detection up for as long as the store was large (9 CPU s over 30,000 events in the profile). Every
        `refresh` seconds (peers' indicators imported into the store, the responders' watchlist), and at once when
        the swarm node accepts a peer's warning (the poll was up to 5 s of a warning's way to a retro-hunt)."""
        while True:
            self._watchlist_wake.wait(self.config.watchlist.refresh)
            self._watchlist_wake.clear()
            if self.stop_event.is_set():
                return
            self._refresh_watchlist()

    def watches(self) -> list[Watch]:
        """Peers' indicators imported into the store, the responders' watchlist and the swarm's warnings."""
        floor = self.config.watchlist.min_confidence
        out = stored_watches(self.store, floor)
        if self.swarm is not None:
            out.extend(w for w in self.swarm.received() if w.confidence >= floor)
        return out

    def _refresh_watchlist(self) -> None:
        try:
            watches = self.watches()
        except Exception as exc:
            self.state.error(f"watchlist: {type(exc).__name__}: {exc}")
            return
        self.watchlist.replace(watches)
        metrics.WATCHLIST.set(len(self.watchlist))
        new = [w for w in self.watchlist.index.values() if f"{w.type}:{w.value}" not in self._hunted]
        if not new:
            return
        # what our own cases put on the watchlist came from our own incidents: hunting it again would only
        # report those incidents' events as "seen here before the warning"
        from_peers = [w for w in new if not w.origin.startswith("case:")]
        if self.config.watchlist.retro_hunt and from_peers:
            self.detector.add_alerts(self.retro_hunt(from_peers))
        self._hunted.update(f"{w.type}:{w.value}" for w in new)
        _write_json(self.folder / HUNTED, sorted(self._hunted))

    def retro_hunt(self, watches: list[Watch]) -> list[Alert]:
        """One pass over the stored events (swarm/retro.py) for values newly on the watchlist: an alert for each
        value found, at the first event that shows it, saying it was here before the warning."""
        from healthswarm.swarm.retro import retro_alerts

        metrics.RETRO_HUNTS.inc(len(watches))
        alerts = retro_alerts(self.store, watches)
        log.info("retro-hunt", extra={"values": len(watches), "found": len(alerts)})
        return alerts

    # --- playbooks and live risk ----------------------------------------------------------------

    def _stage_failed(self, stage: str, text: str) -> None:
        """A failed call of playbooks by policy ("respond") or pass of live risk ("risk"), in this process or the
        responder process: retried there; counted and shown here."""
        metrics.FAILURES.labels(stage).inc()
        self.state.error(f"{stage}: {text}")

    # --- health, status, stopping ---------------------------------------------------------------

    def readiness(self) -> tuple[dict[str, bool], dict[str, Any]]:
        try:
            with self.store.read() as conn:
                conn.execute(text("SELECT 1"))
            db = True
        except Exception:
            db = False
        detect_alive = any(t.name == "agent-detect" and t.is_alive() for t in self.threads)
        checks = {"database": db, "started": self.state.ready and not self.state.stopping, "detection": detect_alive}
        if self.swarm is not None:
            checks["swarm"] = not self.swarm.error
        if self.ingest is not None:
            checks["ingest"] = self.ingest.alive
        return checks, {"backlog": self.detector.backlog() if db else None, "errors": self.state.errors[-5:]}

    def status(self) -> dict[str, Any]:
        d = self.detector.stats
        stored = sum(p.stats.stored for p in self.pipelines) + (self.ingest.stored if self.ingest is not None else 0)
        syslog_received = self.syslog.stats.received if self.syslog is not None else 0
        if self.ingest is not None:
            syslog_received = self.ingest.stats.get("syslog_received", 0)
        return {
            "pid": os.getpid(), "started": self.state.started, "written": time.time(), "ready": self.state.ready,
            "organisation": self.organisation, "bound": self.bound.__dict__,
            "detectors": [det.name for det in self.detectors],
            "events_stored": stored, "events_judged": d.events, "alerts": d.alerts,
            "incidents_written": d.incidents_written, "per_detector": d.per_detector,
            "watchlist": len(self.watchlist), "watchlist_hits": self.watchlist.hits,
            "syslog_received": syslog_received,
            "ingest_process": None if self.ingest is None else {
                "pid": self.ingest.pid, "alive": self.ingest.alive, "restarts": self.ingest.restarts},
            "respond_process": None if self.responder is None else {
                "pid": self.responder.pid, "alive": self.responder.alive, "restarts": self.responder.restarts},
            "swarm": self.swarm.status() if self.swarm is not None else None,
            "errors": self.state.errors[-10:],
        }

    def write_status(self) -> None:
        if not self.config.status_file:
            return
        try:
            _write_json(self.folder / STATUS, self.status())
        except Exception as exc:  # a status file is never worth stopping detection for
            log.warning("status file: %s", exc)

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        """Sources first (their last batches commit), then detection catches up and flushes, then the rest."""
        self.stop_event.set()
        if self.risk is not None:
            self.risk.wake.set()
        self._watchlist_wake.set()
        if self.syslog is not None:
            self.syslog.stop()
        for thread in self.threads:
            if thread.name in SOURCE_THREADS:
                thread.join(10)
        if self.ingest is not None:  # its sources commit what they hold before detection catches up
            self.ingest.stop()
        for thread in list(self.threads):
            if thread.name == "agent-watchlist":  # a retro-hunt under way hands its alerts to the last steps
                thread.join(self.drain_timeout)
        self._sources_done.set()
        for thread in self.threads:
            if thread.name == "agent-detect":
                thread.join(self.drain_timeout)
                if thread.is_alive():
                    log.warning("detection did not catch up within %.0f s; the rest is judged after the restart",
                                self.drain_timeout)
        self.state.stopping = True  # a detection still catching up ends after its current step
        for thread in self.threads:
            if thread.name == "agent-detect":
                thread.join(30)
        self.discovery.save()
        for listener in self.step_listeners:  # the responder's own thread answers the last steps' incidents
            close = getattr(listener, "close", None)
            if close is not None:
                close(self.drain_timeout)
        for thread in self.threads:
            if thread.name == "agent-risk":
                thread.join(10)
        if self.swarm is not None:
            self.swarm.stop()
        if self.api_server is not None:
            self.api_server.should_exit = True
        self.write_status()
        if self.health_server is not None:
            self.health_server.shutdown()
        for pipeline in self.pipelines:
            pipeline.close()
        self.bus.close()
        log.info("agent stopped")

    def run(self, install_signals: bool = True) -> int:
        """Start, wait for SIGTERM/SIGINT (or `stop()`), shut down; the exit status."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda _s, _f: self.stop_event.set())
        self.start()
        while not self.stop_event.wait(1.0):
            pass
        log.info("stopping: sources, then detection catches up")
        self.shutdown()
        return 0


def stored_watches(store: Store, floor: int) -> list[Watch]:
    """Peers' indicators imported into the store (confidence `floor` or more) and the responders' watchlist."""
    from healthswarm.respond.watchlist import load_watchlist
    from healthswarm.share.indicators import load_indicators

    out: list[Watch] = []
    with store.read() as conn:
        for ind in load_indicators(conn):
            if ind.source and ind.confidence >= floor:
                out.append(Watch(ind.type, ind.value, f"peer:{ind.source}", ind.confidence, ind.techniques,
                                 ind.description))
        for row in load_watchlist(conn):
            out.append(Watch(str(row["type"]), str(row["value"]), f"case:{row['case_id']}", 90, (),
                             str(row.get("reason") or "")))
    return out
