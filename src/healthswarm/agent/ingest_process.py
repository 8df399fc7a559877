"""The embedded agent's sources in a process of their own (`[agent] ingest_process`), so that detection has a core
(and a GIL) to itself: followed files, the syslog receiver, MQTT and NATS parse and store their events there, with
the same pipelines and checkpoints as in the agent's process (agent/sources.py); stdin stays with the agent.

Why it stays exact: the ingest process commits each batch with its source's checkpoint in one transaction, as
before, and the agent's detection reads what was stored by its cursor (agent/detect.py), committed with its alerts
and incidents. SQLite has one writer at a time across processes as within one, so event ids still follow commit
order and the cursor misses nothing. On PostgreSQL ids come from a sequence, which follows commit order only
while one process writes events: with stdin also on, the agent keeps everything in one process (`wanted`).

Between the two processes, a pipe (multiprocessing, spawn):
- ingest → agent: ("ready", bound syslog addresses), ("stored", events, when) after each commit — the agent
  publishes it on its bus as the wake-up of the detection loop, counts it (metrics, status) and times it (stored →
  incident latency) —, ("stats", {...}) every second, ("error", text), ("failed", text) when a source cannot start
  (a configuration error: the agent stops), ("done", {...}) after a graceful stop;
- agent → ingest: ("judged", cursor) after each detection step, which is the room sources that can wait wait for
  (`JudgedRoom`: at most `ROOM` events stored and not judged yet); ("stop",).
Events are not handed over in memory across the pipe: detection decodes them from the store (what that costs
beside the in-process handoff: docs/agent.md, Measured).

Stopping: the agent asks the ingest process to stop; its sources commit what they hold, it answers "done" and
exits 0; then detection catches up (agent/runtime.py). The ingest process ignores SIGINT (a Ctrl-C reaches the
whole process group: the agent orders the stop); SIGTERM stops it gracefully too. If the agent dies (kill -9),
the pipe closes and the ingest process stops the same graceful way. If the ingest process dies, the agent
notices (the pipe closes), says so (readiness `ingest` false, the error in status.json,
`healthswarm_agent_failures{stage="ingest"}`) and starts a new one after a pause (1 s, doubling up to 30 s while
it keeps dying): what the dead one had not committed is read again from the checkpoints (syslog received but not
committed is lost, as on any kill of a syslog daemon).
A lock file (`<workspace>/agent/ingest.lock`) makes a new ingest process wait until an old one, whose agent was
killed, has committed its last batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from healthswarm.agent.config import AgentConfig
from healthswarm.agent.threads import start_guarded
from healthswarm.errors import ConfigError

log = logging.getLogger("healthswarm.agent.ingest")
LOCK = "ingest.lock"
ROOM = 20_000  # stored events not judged yet before sources that can wait wait (as Handoff's limit in-process)


def wanted(config: AgentConfig, db_url: str) -> bool:
    """Whether the sources run in an ingest process: `[agent] ingest_process` (auto: with 2 or more CPUs), and only
    where there is a source to move, and where event ids stay in commit order (SQLite; PostgreSQL while one process
    writes events, so not with stdin, which stays in the agent)."""
    setting = config.ingest_process
    has_sources = bool(config.files or config.syslog.enabled or config.mqtt.urls or config.nats.urls)
    shared = config.stdin.enabled and not db_url.startswith("sqlite")
    if setting is True and shared:
        raise ConfigError("agent.ingest_process: not with [sources.stdin] on PostgreSQL (event ids would not "
                          "follow commit order across two writing processes)")
    if setting == "auto":
        return has_sources and not shared and (os.cpu_count() or 1) >= 2
    return bool(setting) and has_sources


@dataclass(frozen=True)
class Spec:
    """What the ingest process is started with (pickled to it)."""

    config: AgentConfig
    db_url: str
    organisation: str
    folder: Path  # <workspace>/agent: the lock file
    log_level: int
    log_static: dict[str, Any] = field(default_factory=dict)


# --- the agent's side ---------------------------------------------------------------------------------------------

class IngestProcess:
    """Starts the ingest process, relays what it reports, and starts a new one when it dies (until `stop`)."""

    def __init__(self, spec: Spec, *, on_stored: Callable[[int, float], None], on_error: Callable[[str], None],
                 on_bound: Callable[[dict[str, str]], None]) -> None:
        self.spec = spec
        self.on_stored = on_stored
        self.on_error = on_error
        self.on_bound = on_bound
        self.stored = 0  # events the ingest processes stored, all of them (restarts included)
        self.stats: dict[str, Any] = {}  # the last "stats" of the running one
        self.restarts = 0
        self.ready = threading.Event()
        self.failed: str | None = None
        self._stopping = threading.Event()
        self._send_lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._relay: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive() and self.ready.is_set()

    def start(self, timeout: float = 120.0) -> None:
        """Start it and wait until its sources listen; ConfigError if one cannot start."""
        self._spawn()
        self._relay = threading.Thread(target=self._relay_loop, name="agent-ingest", daemon=True)
        self._relay.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.failed is not None:
                raise ConfigError(self.failed)
            if time.monotonic() > deadline or self._relay is None or not self._relay.is_alive():
                raise RuntimeError(f"the ingest process did not start within {timeout:.0f} s")

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process whose threads hold locks
        mine, theirs = context.Pipe(duplex=True)
        # daemon: should this process end without `stop` (an exception), multiprocessing's exit handler sends the
        # ingest process SIGTERM, which stops it gracefully, instead of waiting for it forever
        process = context.Process(target=child_main, args=(theirs, self.spec), name="healthswarm-ingest",
                                  daemon=True)
        process.start()
        theirs.close()
        self._conn, self._process = mine, process

    def _relay_loop(self) -> None:
        """What the ingest process says, until its pipe closes; then a new one unless stopping."""
        pause = 1.0
        while True:
            started = time.monotonic()
            self._relay_one()
            code = self._process.exitcode if self._process is not None else None
            if self.failed is not None and self.restarts:  # a new one that could not start its sources
                self.on_error(f"ingest: {self.failed}")
            if self._stopping.is_set() or self.failed is not None:
                return
            self.ready.clear()
            self.on_error(f"ingest process {self.pid} exited ({code}); starting a new one in {pause:.0f} s")
            log.error("the ingest process exited; starting a new one", extra={"exitcode": code, "pause_s": pause})
            if self._stopping.wait(pause):
                return
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, 30.0)
            self.restarts += 1
            self._spawn()

    def _relay_one(self) -> None:
        assert self._conn is not None and self._process is not None
        conn = self._conn
        try:
            while True:
                kind, *args = conn.recv()
                if kind == "stored":
                    self.stored += args[0]
                    self.on_stored(args[0], args[1])
                elif kind == "ready":
                    self.on_bound(args[0])
                    self.ready.set()
                elif kind == "stats":
                    self.stats = args[0]
                elif kind == "error":
                    self.on_error(f"ingest: {args[0]}")
                elif kind == "failed":
                    self.failed = args[0]
                elif kind == "done":
                    self.stats = args[0]
        except (EOFError, OSError):
            pass  # it exited (or was killed)
        self._process.join(30)
        conn.close()

    def judged(self, cursor: int) -> None:
        """Detection judged every event through `cursor`: room for the sources that wait for it."""
        self._send(("judged", cursor))

    def _send(self, message: tuple[Any, ...]) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, ValueError):
            pass  # it died: the relay notices and starts a new one

    def stop(self, timeout: float = 30.0) -> None:
        """Its sources stop and commit what they hold; it exits. Killed after `timeout` (what it had not committed is
        read again at the next start)."""
        self._stopping.set()
        self._send(("stop",))
        if self._relay is not None:
            self._relay.join(timeout)
        if self._process is not None and self._process.is_alive():
            log.warning("the ingest process did not stop within %.0f s: killed", timeout)
            self._process.kill()
            self._process.join(10)


# --- the ingest process -------------------------------------------------------------------------------------------

class JudgedRoom:
    """The room sources that can wait wait for in the ingest process: events stored (the largest id) but not judged
    yet (the detection cursor the agent last sent), at most `limit`; as Handoff.wait_for_room, a detection that
    judges nothing for `timeout` does not stop ingest."""

    def __init__(self, store: Any, limit: int = ROOM) -> None:
        self.store = store
        self.limit = limit
        self.cursor = -1  # unknown until the agent's first step: read from the store
        self._changed = threading.Condition()

    def judged(self, cursor: int) -> None:
        with self._changed:
            self.cursor = cursor
            self._changed.notify_all()

    def _held(self) -> int:
        from sqlalchemy import func, select

        from healthswarm.agent.detect import CURSOR
        from healthswarm.store.events import get_checkpoint
        from healthswarm.store.tables import events

        with self.store.read() as conn:
            top = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
            if self.cursor < 0:
                cp = get_checkpoint(conn, CURSOR)
                self.cursor = cp.position if cp is not None else 0
        return top - self.cursor

    def wait_for_room(self, count: int, stop: threading.Event | None, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (held := self._held()) > 0 and held + count > self.limit and not (stop is not None and stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._changed:
                self._changed.wait(min(left, 0.25))


class _Ingest:
    def __init__(self, conn: Connection, spec: Spec) -> None:
        from healthswarm.store import Store

        self.conn = conn
        self.spec = spec
        self.store = Store.open(spec.db_url)
        self.room = JudgedRoom(self.store)
        self.stop = threading.Event()
        self.write_lock = threading.Lock()
        self.pipelines: list[Any] = []
        self.threads: list[threading.Thread] = []
        self._send_lock = threading.Lock()

    def send(self, *message: Any) -> None:
        try:
            with self._send_lock:
                self.conn.send(message)
        except OSError:  # the agent is gone (`listen` notices too, once it runs): stop
            self.stop.set()

    def pipeline(self, can_wait: bool) -> Any:
        from healthswarm.agent.sources import AgentPipeline

        pipeline = AgentPipeline.for_store(self.store, self.spec.organisation, write_lock=self.write_lock,
                                           room=self.room)
        pipeline.on_stored = lambda n: self.send("stored", n, time.time())
        pipeline.stop = self.stop
        pipeline.waits_for_detection = can_wait
        self.pipelines.append(pipeline)
        return pipeline

    def thread(self, target: Any, name: str, *args: Any) -> None:
        self.threads.append(start_guarded(target, name, args, lambda text: self.send("error", text[:300])))

    def listen(self) -> None:
        """The agent's messages until "stop" or until its end of the pipe closes (it was killed): then stop."""
        try:
            while True:
                kind, *args = self.conn.recv()
                if kind == "judged":
                    self.room.judged(args[0])
                elif kind == "stop":
                    break
        except (EOFError, OSError):
            log.warning("the agent is gone: the sources stop")
        self.stop.set()

    def run(self) -> int:
        from healthswarm.agent.sources import SOURCE_THREADS, start_sources, syslog_bound
        from healthswarm.api.heap import TRIM_SECONDS, freeze_startup_heap, return_free_heap

        try:
            syslog = start_sources(self.spec.config, self.pipeline, self.thread, self.stop)
        except Exception as exc:  # a source that cannot start: the agent says so and stops (no restart)
            self.send("failed", str(exc) if isinstance(exc, ConfigError) else f"sources: {type(exc).__name__}: {exc}")
            return 2
        threading.Thread(target=self.listen, name="ingest-listen", daemon=True).start()
        freeze_startup_heap()  # as `agent run` does in the agent's process: full collections skip what lives on
        self.send("ready", syslog_bound(syslog) if syslog is not None else {})
        ticks = 0
        while not self.stop.wait(1.0):
            self.send("stats", self.stats(syslog))
            ticks += 1
            if ticks % TRIM_SECONDS == 0:
                return_free_heap()
        if syslog is not None:
            syslog.stop()
        for thread in self.threads:
            if thread.name in SOURCE_THREADS:
                thread.join(10)
        for pipeline in self.pipelines:
            pipeline.close()
        self.send("done", self.stats(syslog))
        self.store.close()
        return 0

    def stats(self, syslog: Any) -> dict[str, Any]:
        return {"pid": os.getpid(), "stored": sum(p.stats.stored for p in self.pipelines),
                "syslog_received": syslog.stats.received if syslog is not None else 0}


def child_main(conn: Connection, spec: Spec) -> None:
    """The ingest process (multiprocessing target)."""
    import fcntl

    from healthswarm.agent import logs

    # the agent orders the stop (sources first, then detection catches up): a Ctrl-C reaches the whole process
    # group and must not stop the sources on their own. SIGTERM (the agent's exit handler, or a service manager
    # stopping the group) stops them gracefully, as "stop" does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.setup({**spec.log_static, "pid": os.getpid(), "process": "ingest"}, spec.log_level)
    spec.folder.mkdir(parents=True, exist_ok=True)
    with (spec.folder / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # an ingest process whose agent was killed commits its last batch first
        ingest = _Ingest(conn, spec)
        signal.signal(signal.SIGTERM, lambda _s, _f: ingest.stop.set())
        code = ingest.run()
    conn.close()
    sys.stderr.flush()
    os._exit(code)  # daemon threads of the sources (a broker client) must not hold the exit up
