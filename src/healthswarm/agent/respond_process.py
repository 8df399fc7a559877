"""What the agent does with the incidents detection wrote — playbooks by policy (`[respond]`) and live risk
(`[risk] live`) — in a process of their own (`[agent] respond_process`; auto: with 2 or more CPUs), so that they
do not take the GIL from detection: in the agent's process the responder used a quarter of the interpreter at
5,000 events/s of the bench's stream (40 new cases a second), live risk a tenth, and each of their reads made
detection wait for the GIL (docs/agent.md, Measured).

The process runs the same `PolicyResponder` (agent/respond.py) on its own connection to the store: its thread, its
look-back over every stored incident when it starts, its retries; and live risk's passes (agent/live_risk.py) in a
thread of their own, the first over every open incident. The two share a write lock, as in the agent's process;
the store has one writer at a time across processes as within one (SQLite's lock, PostgreSQL's rows), so the
agent's write lock is not needed between them.

Between the two processes, a pipe (multiprocessing, spawn):
- agent → responder: ("step", incident ids) after each detection step that wrote incidents; ("idle", number,
  timeout) and ("close", number, timeout), each answered with its number and whether it finished in time;
- responder → agent: ("ready",) once it is built, or ("failed", text) when the policy is wrong (a playbook or an
  action that does not exist: the agent does not start); then the answers, and ("failure", stage, text) for each
  failed call of playbooks ("respond") or pass of live risk ("risk"), which the agent counts in its metrics
  (`failures{stage}`) and shows among its status's errors, as when they run in its own process. A thread of the
  agent's (`agent-respond-relay`) reads them.
If the responder process dies, the agent starts a new one at its next step (whose look-back responds to what the
dead one had queued). If the agent dies (kill -9), the pipe closes and the responder process ends at once: a call
under way is rolled back whole, and the look-back after the restart starts what it did not (the case's audit log
keeps any playbook from starting twice). The process ignores SIGINT: the agent orders the stop, after detection
caught up.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from healthswarm.agent.config import AgentConfig, RespondConfig
from healthswarm.agent.detect import StepResult
from healthswarm.agent.respond import check_policy
from healthswarm.errors import ConfigError

log = logging.getLogger("healthswarm.agent.respond")


def wanted(config: AgentConfig) -> bool:
    """Whether playbooks by policy and live risk run in a process of their own: `[agent] respond_process` (auto:
    with 2 or more CPUs), when either is on."""
    if not (config.respond.enabled or config.risk.live):
        return False
    if config.respond_process == "auto":
        return (os.cpu_count() or 1) >= 2
    return bool(config.respond_process)


ENDED = -1  # what the relay puts among the answers when the process's pipe closed


@dataclass(frozen=True)
class Spec:
    """What the responder process is started with (pickled to it)."""

    db_url: str
    policy: RespondConfig  # playbooks by policy when `policy.enabled`
    risk_interval: float | None  # live risk's `[risk] interval`; None: live risk is off
    workspace: Path
    log_level: int
    log_static: dict[str, Any]


class ResponderProcess:
    """The agent's side: a step listener (`Agent.step_listeners`) that hands each step's incidents over, and a
    thread that relays what the process says (answers, failures)."""

    def __init__(self, spec: Spec, on_failure: Callable[[str, str], None] | None = None) -> None:
        if spec.policy.enabled:
            check_policy(spec.policy)  # a wrong policy stops the agent before it starts anything
        self.spec = spec
        self.on_failure = on_failure  # (stage, text) of each failed call or pass in the process
        self.process: Any = None
        self._conn: Connection | None = None
        self._answers: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._asked = 0  # the number of the last question: an answer that came after its wait ended is dropped
        self._lock = threading.Lock()  # the detection thread sends steps, the agent's shutdown closes
        self._closed = False
        self.restarts = 0

    def start(self, timeout: float = 120.0) -> None:
        """Start the process (the agent's start); ConfigError when it could not be built."""
        context = multiprocessing.get_context("spawn")  # no fork of a process whose threads hold locks
        self._conn, child = context.Pipe()
        self.process = context.Process(target=child_main, args=(child, self.spec), name="healthswarm-respond",
                                       daemon=True)
        self.process.start()
        child.close()
        try:
            reply = self._conn.recv() if self._conn.poll(timeout) else ("failed", "did not start in time")
        except EOFError:
            reply = ("failed", "the responder process ended as it started (its error is in the log)")
        if reply[0] != "ready":
            self.process.join(5)
            self._closed = True
            raise ConfigError(f"playbooks by policy: {reply[1]}")
        threading.Thread(target=self._relay, args=(self._conn,), name="agent-respond-relay", daemon=True).start()

    def _relay(self, conn: Connection) -> None:
        """What this process says, until its pipe closes (it ended, or a new one replaced it)."""
        try:
            while True:
                kind, *args = conn.recv()
                if kind == "failure":
                    if self.on_failure is not None:
                        self.on_failure(*args)
                else:  # ("idle" | "closed", question number, answer)
                    self._answers.put((args[0], args[1]))
        except (EOFError, OSError):
            self._answers.put((ENDED, conn))

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def __call__(self, result: StepResult) -> None:
        if result.incidents:
            self._send("step", list(result.incidents))

    def join_idle(self, timeout: float) -> bool:
        """Wait until everything handed over so far has been responded to; False after `timeout` seconds."""
        return bool(self._ask("idle", timeout))

    def close(self, timeout: float) -> bool:
        """Respond to what was handed over, then end the process; False when that took longer than `timeout`
        seconds (the look-back after the restart takes the rest)."""
        if self._closed or self.process is None:
            return True
        drained = bool(self._ask("close", timeout))
        self._closed = True
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        return drained

    def _send(self, *message: Any, last: bool = False) -> None:
        """Send; `last`: nothing after it (a step handed over after "close" must not start a new process)."""
        with self._lock:
            if self._closed or self._conn is None:
                return
            try:
                self._conn.send(message)
            except (BrokenPipeError, OSError):  # it died (killed, out of memory): a new one looks back over every
                # stored incident, so what the dead one had queued is responded to
                self.process.join(5)
                log.warning("playbooks by policy: the responder process is gone (exit code %s); starting a new one",
                            self.process.exitcode)
                self.restarts += 1
                try:
                    self.start()
                except ConfigError as exc:
                    log.error("playbooks by policy stop: %s", exc)
                    self._closed = True
            if last:
                self._closed = True

    def _ask(self, kind: str, timeout: float) -> Any:
        """Its answer, or False when none came in time or the process ended first."""
        with self._lock:
            self._asked += 1
            number, conn = self._asked, self._conn
        self._send(kind, number, timeout, last=kind == "close")
        deadline = time.monotonic() + timeout + 10  # it answers once that wait ended there; the margin is the pipe's
        while True:
            try:
                asked, answer = self._answers.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return False
            if asked == number:
                return answer
            if asked == ENDED and answer is conn:  # the process asked ended (one that ended before was replaced)
                return False


def child_main(conn: Connection, spec: Spec) -> None:
    """The responder process (multiprocessing target)."""
    from healthswarm.agent import logs
    from healthswarm.agent.live_risk import RiskPasses
    from healthswarm.agent.respond import PolicyResponder
    from healthswarm.api.heap import freeze_startup_heap
    from healthswarm.errors import HealthswarmError
    from healthswarm.store import Store

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the group: the agent orders the stop
    logs.setup({**spec.log_static, "pid": os.getpid(), "process": "respond"}, spec.log_level)
    store = Store.open(spec.db_url)
    write_lock = threading.Lock()
    send_lock = threading.Lock()  # the main thread answers, the responder's and live risk's threads tell failures

    def send(*message: Any) -> None:
        with send_lock, contextlib.suppress(OSError):  # the agent is gone: the main thread's recv says so and ends
            conn.send(message)

    try:
        responder = (PolicyResponder(store, spec.policy, spec.workspace, write_lock,
                                     on_failure=partial(send, "failure", "respond"))
                     if spec.policy.enabled else None)
    except HealthswarmError as exc:
        conn.send(("failed", str(exc)))
        return
    stop_risk = threading.Event()
    risk, risk_thread = None, None
    if spec.risk_interval is not None:
        risk = RiskPasses(store, write_lock, spec.risk_interval)
        risk_thread = threading.Thread(target=risk.run, args=(stop_risk, partial(send, "failure", "risk")),
                                       name="respond-risk", daemon=True)
        risk_thread.start()
    freeze_startup_heap()
    conn.send(("ready",))
    if responder is not None:
        responder(StepResult())  # the look-back over every stored incident starts now
    try:
        while True:
            kind, *args = conn.recv()
            if kind == "step":
                if risk is not None:
                    risk.add(args[0])
                if responder is not None:
                    responder(StepResult(incidents=args[0]))
            elif kind == "idle":
                number, timeout = args
                send("idle", number, responder.join_idle(timeout) if responder is not None else True)
            elif kind == "close":
                number, timeout = args
                closed = responder.close(timeout) if responder is not None else True
                stop_risk.set()
                if risk is not None and risk_thread is not None:  # a last pass over what the last steps wrote
                    risk_thread.join(timeout)
                    if risk_thread.is_alive():  # a pass still under way ends with the process, rolled back whole
                        log.warning("live risk: a pass took over %.0f s; the next start annotates again", timeout)
                    else:
                        risk.try_pass(partial(send, "failure", "risk"))
                send("closed", number, closed)
                break
    except (EOFError, OSError):  # the agent is gone: what is queued waits for the look-back after its restart
        log.warning("the agent is gone: playbooks by policy and live risk stop")
    store.close()
    sys.stderr.flush()
    os._exit(0)  # the responder's daemon thread may be in a call: it is rolled back whole

