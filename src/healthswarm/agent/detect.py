"""Streaming detection for the embedded agent: newly stored events → the detect stage (every detector of the
suite: detect/stream_stage.py) → alerts → the correlate stage (detect/correlate_stage.py) → incidents, committed
with the step's cursor in one transaction. The scale-out detect and correlate roles run the same two stages.

Events come from the ingest commits that stored them, still in memory (a claim check per batch,
agent/sources.Handoff), or — after a restart, for a batch that held duplicates, or when detection has fallen
too far behind to keep them — from the store, by the cursor.

The cursor is the id of the last stored event the stage has judged (SQLite assigns ids in commit order: the
store has one writer at a time), kept in the `checkpoints` table under `CURSOR`. A step reads the events after
it, page by page, never the whole store; its alerts, the incident rows they change and the new cursor commit
together, so after a kill -9 the next run starts exactly after the last step that committed: no event judged
twice, no alert or incident written twice (alert ids are deterministic and the correlator skips an alert the
store already shows in an incident). Detector state (Sigma correlation windows, baselines) lives in memory
and starts afresh after a restart, as in a scale-out detect worker: a window cut by a crash may miss, never
fire twice.

Correlation is `CorrelateStage.place` and its `Changes`, whose state is rebuilt from the store after a restart or
a failed commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from healthswarm.detect.base import Detector
from healthswarm.detect.correlate_stage import CorrelateStage
from healthswarm.detect.stream_stage import DetectStage
from healthswarm.model import Alert, Event
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.store.events import get_checkpoint, search_events, set_checkpoint

log = logging.getLogger("healthswarm.agent.detect")
CURSOR = "agent:detect"


@dataclass
class StepResult:
    events: int = 0
    alerts: int = 0  # newly stored
    incidents: list[str] = field(default_factory=list)  # ids of incidents written
    born: float = 0.0  # wall time the step started (latency figures)
    found: list[Alert] = field(default_factory=list)  # every alert of the step (new or already stored)


@dataclass
class DetectStats:
    events: int = 0
    alerts: int = 0
    incidents_written: int = 0
    steps: int = 0
    failures: int = 0
    per_detector: dict[str, int] = field(default_factory=dict)


class StreamDetector:
    """One instance per agent; `step()` is called from one thread (the detection loop)."""

    def __init__(self, store: Store, detectors: Sequence[Detector], write_lock: threading.Lock, *,
                 batch: int = 2_000, correlate: CorrelateStage | None = None,
                 on_commit: Callable[[StepResult], None] | None = None,
                 handed: Callable[[int], tuple[list[Event], int] | None] | None = None) -> None:
        self.store = store
        self.handed = handed  # the events stored right after a cursor, still in memory (agent/sources.Handoff)
        self.stage = DetectStage(detectors)
        self.detectors = self.stage.detectors
        self.write_lock = write_lock
        self.batch = batch
        self.correlate = correlate or CorrelateStage(store)
        self.on_commit = on_commit
        self.stats = DetectStats()
        with store.read() as conn:
            cp = get_checkpoint(conn, CURSOR)
        self.cursor = cp.position if cp is not None else 0
        self._pending: list[Alert] = []  # alerts from flushes and retro-hunts, committed with the next step
        self._pending_lock = threading.Lock()  # retro-hunts add theirs from another thread

    def add_alerts(self, found: Sequence[Alert]) -> None:
        """Alerts from outside the event stream (a retro-hunt, from any thread): committed and correlated with the
        next step."""
        with self._pending_lock:
            self._pending.extend(found)

    def backlog(self) -> int:
        """Stored events not judged yet."""
        from sqlalchemy import func, select

        from healthswarm.store.tables import events

        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)
                                    .where(events.c.id > self.cursor)).scalar_one())

    def step(self) -> StepResult:
        """Judge up to `batch` events after the cursor (and whatever alerts are pending); commit."""
        result = StepResult(born=time.time())
        held = self.handed(self.cursor) if self.handed is not None else None
        if held is not None:
            batch, cursor = list(held[0]), held[1]
            while len(batch) < self.batch and (more := self.handed(cursor)) is not None:  # one step, one commit
                batch.extend(more[0])
                cursor = more[1]
        else:
            with self.store.read() as conn:
                stored = search_events(conn, after_id=self.cursor, limit=self.batch)
            batch, cursor = [s.event for s in stored], (stored[-1].id if stored else self.cursor)
        found = self.stage.detect(batch)
        with self._pending_lock:
            pending, self._pending = self._pending, []
        found.extend(pending)
        if not batch and not found:
            return result
        result.events = len(batch)
        result.found = found
        try:
            result.alerts, result.incidents = self._commit(found, cursor)
        except Exception:
            with self._pending_lock:  # committed with the next step
                self._pending[:0] = pending
            raise
        self.cursor = cursor
        self.stats.events += len(batch)
        self.stats.steps += 1
        for alert in found:
            self.stats.per_detector[alert.detector] = self.stats.per_detector.get(alert.detector, 0) + 1
        if self.on_commit is not None:
            self.on_commit(result)
        return result

    def _commit(self, found: list[Alert], cursor: int) -> tuple[int, list[str]]:
        try:
            changes = self.correlate.place(sorted(found, key=lambda a: a.timestamp)) if found else None
            with self.write_lock, self.store.transaction() as conn:
                new = save_alerts(conn, found)
                if changes is not None and changes.write:
                    changes.save(conn)
                set_checkpoint(conn, CURSOR, "", cursor)
        except Exception:
            self.correlate.correlator = None  # ahead of the store now: rebuilt from it next time
            self.stats.failures += 1
            raise
        written = [i.id for i in changes.write] if changes is not None else []
        self.stats.alerts += new
        self.stats.incidents_written += len(written)
        return new, written

    def stream_time(self) -> datetime | None:
        return self.stage.stream_time()

    def flush(self) -> None:
        """Judge what only the passing of stream time completes (Sigma correlations with lt/lte/neq); the
        alerts are committed with the next step."""
        self.add_alerts(self.stage.flush())
