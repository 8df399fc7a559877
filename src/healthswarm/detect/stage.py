"""The detection stage: stored events → detectors → alerts → incidents → store.

Events are read in time order (a correlation needs the stream as it happened), every detector sees
every event, and the alerts are grouped into incidents by the correlator. Alerts and incidents are
written in one transaction; re-running over the same events stores nothing twice (alert ids are
deterministic).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from healthswarm.detect.base import Detector
from healthswarm.detect.correlate import Correlator
from healthswarm.model import Alert, Event
from healthswarm.model.incident import Incident
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents
from healthswarm.store.events import iter_events
from healthswarm.store.inventory import load_inventory


@dataclass
class DetectionResult:
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    new_alerts: int = 0
    per_detector: Counter[str] = field(default_factory=Counter)


def run_detectors(events: Iterable[Event], detectors: Sequence[Detector]) -> tuple[int, list[Alert]]:
    """(events seen, alerts) of every detector over `events`, flushed at the end."""
    alerts: list[Alert] = []
    count = 0
    for event in events:
        count += 1
        for detector in detectors:
            alerts.extend(detector.detect(event))
    for detector in detectors:
        alerts.extend(detector.flush())
    return count, alerts


def detect_stored(store: Store, detectors: Sequence[Detector], correlator: Correlator | None = None,
                  **filters: object) -> DetectionResult:
    """Run `detectors` over the stored events (optionally filtered), correlate and store the results."""
    with store.read() as conn:
        events = sorted((s.event for s in iter_events(conn, **filters)), key=lambda e: (e.timestamp, e.key))
        if correlator is None:
            correlator = Correlator(load_inventory(conn).assets)
    result = DetectionResult()
    result.events, result.alerts = run_detectors(events, detectors)
    result.per_detector.update(a.detector for a in result.alerts)
    result.incidents = correlator.add_all(result.alerts)
    incident_of = {alert_id: i.id for i in result.incidents for alert_id in i.alert_ids}
    with store.transaction() as conn:
        result.new_alerts = save_alerts(conn, result.alerts, incident_of)
        save_incidents(conn, result.incidents)
    return result
