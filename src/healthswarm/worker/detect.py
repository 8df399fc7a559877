"""The detect role: events → Sigma rules and the sensors' own alerts → alerts stored exactly once (their ids are
deterministic), announced to the correlate role through the outbox in the same transaction.

State: single-event Sigma rules and the sensor detector are stateless, so any worker may see any event. Sigma
correlation rules (event_count, value_count, temporal) keep per-group windows in the worker's memory: they are
exact when one worker sees every event of a group, i.e. with `--partition k` (events are partitioned by
organisation, else host, else source address); without it they count what this worker saw. Their alert ids are
deterministic too, so two workers that both complete a window store one alert.

What only the passing of time completes (correlations with `lt`/`lte`/`neq` conditions, judged when a window
closes) comes out of `flush()`, which the stage loop calls every `--flush-interval` seconds and once more at a
graceful stop. It closes only the windows whose timespan has passed in stream time — the latest event time seen,
advanced by the wall-clock time since it was seen (so an idle stream still moves on, and a replay of old logs
is judged by its own clock, not cut short by ours). Windows still open when a worker stops are lost with it, as
in a crash: an `lt` rule may then miss, never fire early. Those alerts take the same transaction and outbox
path as the others; if the commit fails they are kept and committed with the next flush.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from healthswarm.bus.codec import event_from_bytes
from healthswarm.detect.base import Detector
from healthswarm.detect.sigma import CACHE_SUBDIR, SigmaDetector
from healthswarm.detect.suite import SuiteSpec, build_suite
from healthswarm.errors import ConfigError
from healthswarm.model import Alert
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.delivery import Delivery

log = logging.getLogger("healthswarm.worker.detect")


def detectors(config: WorkerConfig, workspace: Path | None) -> list[Detector]:
    """Sigma (the healthcare pack, or `--rules` instead) and the sensors' own alerts: the stateless part of the
    agent's detector suite. Baselines, clinical analytics and privacy monitoring keep state per asset, interface
    or user, which one worker holds only with partitions by those keys (not yet)."""
    suite = build_suite(SuiteSpec(rules=config.rules, healthcare_rules=not config.rules,
                                  placeholders=config.placeholders, baseline=None, clinical=False,
                                  cache_dir=workspace / CACHE_SUBDIR if workspace is not None else None))
    missing = [p for p in suite.ruleset.problems if p.message == "no such file or folder"]
    if missing:
        raise ConfigError(f"--rules: {missing[0]}")
    return suite.detectors


class DetectStage:
    def __init__(self, store: Store, config: WorkerConfig, workspace: Path | None) -> None:
        self.store = store
        self.config = config
        self.detectors = detectors(config, workspace)
        self._flushed: list[Alert] = []  # completed by a flush, not yet committed
        self._latest: float | None = None  # the latest event time seen (epoch seconds) …
        self._seen_at = 0.0  # … and when (monotonic): stream time advances with idle wall time

    def active(self) -> bool:
        return True

    def handle(self, batch: Sequence[Delivery]) -> None:
        # a batch in event time, as the stage over stored events reads them (correlations need the order)
        items = sorted(((event_from_bytes(d.data), d) for d in batch), key=lambda p: (p[0].timestamp, p[0].key))
        found: list[tuple[Alert, float, int]] = []
        if items:
            last = items[-1][0].timestamp.timestamp()
            self._latest = last if self._latest is None else max(self._latest, last)
            self._seen_at = time.monotonic()
        for event, d in items:
            partition = int(d.subject.split(".")[-2].removeprefix("p") or 0)
            for detector in self.detectors:
                found.extend((alert, d.born, partition) for alert in detector.detect(event))
        messages, new = self._commit(found)
        now = time.time()
        metrics.EVENTS_IN.labels(Role.detect.value).inc(len(batch))
        for m in messages:
            if m.msg_id in new:
                metrics.EVENT_TO_ALERT.observe(max(now - m.born, 0.0))
                new.discard(m.msg_id)

    def stream_time(self) -> datetime | None:
        if self._latest is None:
            return None
        return datetime.fromtimestamp(self._latest + (time.monotonic() - self._seen_at), UTC)

    def flush(self) -> None:
        """Commit what the detectors complete with the passing of stream time. Their windows are gone once
        judged, so alerts whose commit failed are kept for the next call rather than lost."""
        if (now := self.stream_time()) is not None:
            for detector in self.detectors:
                if isinstance(detector, SigmaDetector):
                    self._flushed.extend(detector.expire(now))
        if not self._flushed:
            return
        # no delivery to take a partition from: the worker's own (the events of a pinned worker are all in it)
        partition = self.config.partition or 0
        born = time.time()  # not an event's latency: these alerts wait for time by design
        self._commit([(a, born, partition) for a in self._flushed])
        self._flushed = []

    def _commit(self, found: list[tuple[Alert, float, int]]) -> tuple[list[outbox.OutboxMessage], set[str]]:
        """Alerts and their announcements in one transaction; returns the messages and the ids newly queued."""
        messages = [outbox.OutboxMessage(a.id, self.config.alert_subject(p), orjson.dumps(a.as_dict()), born)
                    for a, born, p in found]
        with self.store.transaction() as conn:
            save_alerts(conn, [a for a, _, _ in found])
            new = outbox.add(conn, messages)
        metrics.ALERTS.inc(len(new))
        return messages, new

    def close(self) -> None:
        if self._flushed:
            log.error("alerts completed by a flush were never stored", extra={"alerts": len(self._flushed)})
