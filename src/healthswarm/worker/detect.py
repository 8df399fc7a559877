"""The detect role: events → Sigma rules and the sensors' own alerts → alerts stored exactly once (their ids are
deterministic), announced to the correlate role through the outbox in the same transaction.

State: single-event Sigma rules and the sensor detector are stateless, so any worker may see any event. Sigma
correlation rules (event_count, value_count, temporal) keep per-group windows in the worker's memory: they are
exact when one worker sees every event of a group, i.e. with `--partition k` (events are partitioned by
organisation, else host, else source address); without it they count what this worker saw. Their alert ids are
deterministic too, so two workers that both complete a window store one alert.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from healthswarm.bus.codec import event_from_bytes
from healthswarm.detect.base import Detector
from healthswarm.detect.sensor import SensorAlertDetector
from healthswarm.detect.sigma import CACHE_SUBDIR, HEALTHCARE_RULES, SigmaDetector, load_rules
from healthswarm.errors import ConfigError
from healthswarm.model import Alert
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.delivery import Delivery


def detectors(config: WorkerConfig, workspace: Path | None) -> list[Detector]:
    ruleset = load_rules(list(config.rules) or [HEALTHCARE_RULES],
                         cache_dir=workspace / CACHE_SUBDIR if workspace is not None else None,
                         placeholders=config.placeholders)
    missing = [p for p in ruleset.problems if p.message == "no such file or folder"]
    if missing:
        raise ConfigError(f"--rules: {missing[0]}")
    return [SigmaDetector(ruleset), SensorAlertDetector()]


class DetectStage:
    def __init__(self, store: Store, config: WorkerConfig, workspace: Path | None) -> None:
        self.store = store
        self.config = config
        self.detectors = detectors(config, workspace)

    def active(self) -> bool:
        return True

    def handle(self, batch: Sequence[Delivery]) -> None:
        # a batch in event time, as the stage over stored events reads them (correlations need the order)
        items = sorted(((event_from_bytes(d.data), d) for d in batch), key=lambda p: (p[0].timestamp, p[0].key))
        found: list[tuple[Alert, float, int]] = []
        for event, d in items:
            partition = int(d.subject.split(".")[-2].removeprefix("p") or 0)
            for detector in self.detectors:
                found.extend((alert, d.born, partition) for alert in detector.detect(event))
        messages = [outbox.OutboxMessage(a.id, self.config.alert_subject(p), orjson.dumps(a.as_dict()), born)
                    for a, born, p in found]
        with self.store.transaction() as conn:
            save_alerts(conn, [a for a, _, _ in found])
            new = outbox.add(conn, messages)
        now = time.time()
        metrics.EVENTS_IN.labels(Role.detect.value).inc(len(batch))
        metrics.ALERTS.inc(len(new))
        for m in messages:
            if m.msg_id in new:
                metrics.EVENT_TO_ALERT.observe(max(now - m.born, 0.0))
                new.discard(m.msg_id)

    def close(self) -> None:
        return None
