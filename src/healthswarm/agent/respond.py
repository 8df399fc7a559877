"""Playbooks by policy in the agent: a step listener (`Agent.step_listeners`) that hands the incidents each
detection step wrote to `respond.service.respond_by_policy` under the agent's `[respond]` policy.

Off the detection thread: a call only queues the step's incident ids and returns. The responder's own thread
(`agent-respond`, started by the first step) takes everything queued since its last call, in the order the
steps wrote it, once per incident, and responds to it in one call; the store's write lock is held only for
that call's commits (`respond_by_policy(lock=…)`), so detection commits in between.

Its first task is the look-back: every stored incident is queued, so one the policy covers whose playbooks
did not start before a kill -9 (the step's commit came, the responder's did not, or its id was still queued)
starts now; the case's audit log keeps any from starting twice. A failed call (the store busy, say) is
retried with the next batch, or after `retry` seconds when no step comes, so an incident is never dropped;
the incidents of a failed batch are retried one at a time, after the others, so one that fails every time
holds up no other; a failure never stops detection. `close()` (the agent's shutdown, once detection has
caught up) drains the queue and stops the thread; the thread is a daemon, so what a process that ends without
`close()` left queued waits for that look-back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from healthswarm.agent.config import RespondConfig
from healthswarm.agent.detect import StepResult
from healthswarm.errors import ConfigError, InputError
from healthswarm.model.words import counted
from healthswarm.respond.actions import ACTIONS
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.service import PolicyResponse, incident_ids, inventory_assets, respond_by_policy
from healthswarm.store import Store

log = logging.getLogger("healthswarm.agent.respond")


def check_policy(policy: RespondConfig, library: Library | None = None) -> Library:
    """The library the policy's playbooks come from; ConfigError for a playbook or an action it does not know."""
    library = library or Library.load()
    for name in policy.playbooks:
        if name != "auto":
            try:
                library.find(name)
            except InputError:
                raise ConfigError(f"respond.playbooks: no playbook {name!r} (expected \"auto\" or one of "
                                  f"{', '.join(sorted(library.stems))})") from None
    for kind in policy.auto_actions:
        if kind not in ACTIONS:
            raise ConfigError(f"respond.auto_actions: no action {kind!r} (expected one of "
                              f"{', '.join(ACTIONS.names())})")
    return library


class PolicyResponder:
    def __init__(self, store: Store, policy: RespondConfig, workspace: Path, write_lock: threading.Lock,
                 library: Library | None = None, *, retry: float = 2.0,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.store, self.policy, self.workspace, self.write_lock = store, policy, workspace, write_lock
        self.library = check_policy(policy, library)
        self.retry = retry
        self.on_failure = on_failure  # told each failed call, as text (the agent's metrics and status)
        with store.read() as conn:  # as the agent's detectors, the inventory it started with
            self.assets = inventory_assets(conn)
        self.calls = 0  # calls of respond_by_policy, each on everything queued since the one before
        self.failures = 0
        self._queued: dict[str, None] = {}  # incident ids in the order the steps wrote them, once each
        self._steps = 0  # steps that queued incidents (one after a failure retries at once)
        self._looked_back = False  # every stored incident queued (the thread's first task)
        self._suspects: set[str] = set()  # incidents of a batch that failed: tried one at a time
        self._busy = False  # a call under way
        self._closing = False  # close(): respond to what is queued, then end
        self._stop = False  # close() timed out: end after the call under way
        self._drained = False  # the thread ended with nothing left queued
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __call__(self, result: StepResult) -> None:
        """In the detection thread: queue the step's incidents (the first step starts the thread)."""
        with self._cond:
            self._queued.update(dict.fromkeys(result.incidents))
            self._steps += bool(result.incidents)
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._loop, name="agent-respond", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        """Incidents waiting for the next call (those of the call under way are not counted)."""
        with self._cond:
            return len(self._queued)

    def _idle(self) -> bool:
        return self._looked_back and not self._queued and not self._busy

    def join_idle(self, timeout: float) -> bool:
        """Wait until everything queued so far has been responded to (and the look-back done, once a step
        started the thread); False when that took longer than `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._thread is None or self._idle(), timeout)

    def close(self, timeout: float) -> bool:
        """Respond to what is queued, then stop the thread; False when it did not finish within `timeout`
        seconds (what is left is looked at again after the restart)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        with self._cond:
            if not self._drained:  # still at it, or stopped by an earlier close
                self._stop = True
                self._cond.notify_all()
                log.warning("playbooks by policy: not caught up within %.0f s (%d incidents queued%s); the "
                            "look-back after the restart takes them", timeout, len(self._queued),
                            ", a call under way" if self._busy else "")
            return self._drained

    def _loop(self) -> None:
        retry_at: float | None = None  # after a failure: when to try again if no step brings new incidents
        steps = 0  # self._steps when the last batch was taken
        while True:
            with self._cond:
                while not self._stop:
                    due = bool(self._queued) or not self._looked_back
                    if not due and self._closing:
                        break
                    if due and (retry_at is None or self._steps != steps or time.monotonic() >= retry_at):
                        break
                    self._cond.wait(None if retry_at is None else max(retry_at - time.monotonic(), 0.0))
                if self._stop:
                    return
                if not self._queued and self._looked_back:  # closed, and everything queued responded to
                    self._drained = True
                    self._cond.notify_all()
                    return
                batch: list[str] = []  # none: the look-back
                if self._looked_back:  # the incidents of a batch that failed go one at a time, after the
                    # others: one that fails every time (a malformed document, say) holds up no other
                    batch = [i for i in self._queued if i not in self._suspects] or [next(iter(self._queued))]
                    for incident in batch:
                        del self._queued[incident]
                self._busy, steps = True, self._steps
            ok = self._respond(batch)
            with self._cond:
                self._busy = False
                if ok:
                    retry_at = None
                    self._suspects.difference_update(batch)
                elif len(batch) == 1 and batch[0] in self._suspects:  # after the others, next time
                    self._queued = dict.fromkeys([*self._queued, *batch])
                    retry_at = time.monotonic() + self.retry
                else:  # first again, before what was queued meanwhile
                    if len(batch) > 1:
                        self._suspects.update(batch)
                    self._queued = dict.fromkeys([*batch, *self._queued])
                    retry_at = time.monotonic() + self.retry
                self._cond.notify_all()

    def _respond(self, batch: list[str]) -> bool:
        try:
            if not self._looked_back:  # every stored incident, before the steps' (they are among them)
                with self.store.read() as conn:
                    stored = incident_ids(conn)
                with self._cond:
                    self._queued = dict.fromkeys([*stored, *batch, *self._queued])
                    self._looked_back = True
                return True
            self.respond(batch)
        except Exception as exc:  # the agent's detection goes on; these incidents are tried again
            self.failures += 1
            log.warning("playbooks by policy failed on %d incidents; retried with the next batch: %s: %s",
                        len(batch), type(exc).__name__, exc)
            if self.on_failure is not None:
                self.on_failure(f"failed on {counted(len(batch), 'incident')}, retried: {type(exc).__name__}: {exc}")
            return False
        return True

    def respond(self, incidents: list[str]) -> list[PolicyResponse]:
        """Respond to these incidents now, in the caller's thread (the scale-out respond role calls this for each
        bus batch, and acks the batch once it returned); raises when the call failed."""
        self.calls += 1
        responses = respond_by_policy(self.store, self.policy, incidents, library=self.library,
                                      workspace=self.workspace, assets=self.assets, lock=self.write_lock)
        for response in responses:
            _log(response)
        return responses


def _log(response: PolicyResponse) -> None:
    if response.runs or response.failed or response.opened:
        log.info("playbooks by policy", extra={
            "incident": response.incident, "case": response.case, "reason": response.reason,
            "opened": response.opened, "playbooks": [r.name for r in response.runs],
            "executed": response.executed, "waiting": response.waiting, "failed": response.failed})
