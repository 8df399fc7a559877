"""Live risk in the embedded agent (`[risk] live`): the incidents detection steps wrote are re-annotated with
their attacker's predicted next targets (risk/live.py `LiveAnnotator`), in passes at most `[risk] interval`
seconds apart, each over what changed since the last. It runs in the responder process when there is one
(agent/respond_process.py), else in the agent's thread `agent-risk`: its graph searches and incident reads held the
interpreter a tenth as long as detection did at 5,000 events/s, and its writes held the agent's write lock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from healthswarm.risk.live import LiveAnnotator
from healthswarm.store import Store

log = logging.getLogger("healthswarm.agent.risk")


class RiskPasses:
    def __init__(self, store: Store, write_lock: AbstractContextManager[Any], interval: float) -> None:
        self.annotator = LiveAnnotator(store, write_lock)
        self.interval = interval
        self.wake = threading.Event()
        # incidents written since the last pass; None: every open incident (the first pass after a start answers
        # what changed while the agent was down)
        self._due: set[str] | None = None
        self._lock = threading.Lock()
        self.wake.set()  # that first pass comes at the start, not with the first step that writes an incident

    def add(self, incidents: Iterable[str]) -> None:
        """Incidents a step wrote: annotated at the next pass."""
        with self._lock:
            if self._due is not None:
                self._due.update(incidents)
        self.wake.set()

    def run(self, stop: threading.Event, on_failure: Callable[[str], None]) -> None:
        """Passes until `stop` is set; a pass under way when it is finishes, and the wake-up that comes with a stop
        (`wake.set()` after it) runs one last pass."""
        while not stop.is_set():
            if not self.wake.wait(1.0):
                continue
            self.wake.clear()
            self.try_pass(on_failure)
            stop.wait(self.interval)

    def try_pass(self, on_failure: Callable[[str], None]) -> None:
        """One pass; a failure is logged and told to `on_failure` as text (the agent's metrics and status)."""
        try:
            self.run_pass()
        except Exception as exc:
            log.warning("live risk: a pass failed; its incidents are annotated at the next: %s: %s",
                        type(exc).__name__, exc)
            on_failure(f"a pass failed, its incidents annotated at the next: {type(exc).__name__}: {exc}")

    def run_pass(self) -> int:
        """Annotate the incidents due; a failed pass, or one before any inventory is stored, keeps them due for the
        next one."""
        with self._lock:
            due, self._due = self._due, set()
        try:
            annotated = self.annotator.annotate(due)
        except Exception:
            self._keep(due)
            raise
        if annotated is None:
            self._keep(due)
        return annotated or 0

    def _keep(self, due: set[str] | None) -> None:
        with self._lock:
            self._due = None if due is None or self._due is None else self._due | due
