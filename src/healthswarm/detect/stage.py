"""The detection stage: stored events → detectors → alerts → incidents → store.

Events are read in time order (a correlation needs the stream as it happened), every detector sees
every event, and the alerts are grouped into incidents by the correlator. Alerts and incidents are
written in one transaction; re-running over the same events stores nothing twice (alert ids are
deterministic).

A run continues the stored incidents: the alerts of open incidents are replayed into the correlator first
(their incidents keep their state), an alert already stored in an incident stays there, and only alerts not
placed yet join. So an incident's alert count is always the stored alerts it holds, whatever rules or options
an earlier run used, and `alert_totals` (what the CLI, the demo and the API print) adds up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from healthswarm.detect.base import Detector
from healthswarm.detect.correlate import Correlator
from healthswarm.model import Alert, Event
from healthswarm.model.incident import Incident, IncidentState
from healthswarm.store import Store
from healthswarm.store.alerts import (
    alert_totals,
    open_incident_alerts,
    open_incident_states,
    save_alerts,
    save_incidents,
)
from healthswarm.store.events import iter_events
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import alerts


@dataclass
class DetectionResult:
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)  # raised by this run (new or stored before)
    incidents: list[Incident] = field(default_factory=list)  # the incidents holding this run's alerts
    new_alerts: int = 0  # of `alerts`, those not stored before
    per_detector: Counter[str] = field(default_factory=Counter)
    totals: dict[str, int] = field(default_factory=dict)  # the store after the run (store.alerts.alert_totals)

    def summary_line(self) -> str:
        """What a run did and what the store holds, in the words every face uses."""
        return (f"This run: {len(self.alerts):,} alerts over {self.events:,} events ({self.new_alerts:,} new, "
                f"{len(self.alerts) - self.new_alerts:,} stored before), in {len(self.incidents):,} incidents.\n"
                f"Stored: {totals_text(self.totals)}")


def totals_text(t: dict[str, int]) -> str:
    """`157 alerts, 157 of them in 4 incidents (4 open)`: the store's figures (`alert_totals`) as every face
    words them."""
    return (f"{t.get('alerts', 0):,} alerts, {t.get('in_incidents', 0):,} of them in {t.get('incidents', 0):,} "
            f"incidents ({t.get('open_incidents', 0):,} open)")


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
    """Run `detectors` over the stored events (optionally filtered), correlate (continuing the stored open
    incidents) and store the results."""
    with store.read() as conn:
        events = sorted((s.event for s in iter_events(conn, **filters)), key=lambda e: (e.timestamp, e.key))
        if correlator is None:
            correlator = Correlator(load_inventory(conn).assets)
    result = DetectionResult()
    result.events, result.alerts = run_detectors(events, detectors)
    result.per_detector.update(a.detector for a in result.alerts)
    with store.read() as conn:
        placed = _placed(conn, [a.id for a in result.alerts])
        stored_in, states = _replay_open_incidents(conn, correlator)
    correlator.add_all(a for a in result.alerts if a.id not in placed)
    incident_of = {alert_id: i.id for i in correlator.incidents.values() for alert_id in i.alert_ids}
    for incident in correlator.incidents.values():
        # replaying in time order can name an incident after another first alert than the stored row: that row
        # is then recorded as merged into this one (and deleted), and its state carries over
        before = [stored_in[a] for a in incident.alert_ids if a in stored_in]
        stale = sorted(set(before) - {incident.id} - set(incident.merged_from))
        incident.merged_from.extend(stale)
        state = states.get(incident.id) or next((states[i] for i in before if i in states), None)
        if state is not None:
            incident.state = IncidentState(state)
    mine = {a.id for a in result.alerts}
    holding = {incident_of.get(a) or placed.get(a) for a in mine} - {None}
    with store.transaction() as conn:
        result.new_alerts = save_alerts(conn, result.alerts, incident_of)
        save_incidents(conn, correlator.incidents.values())
        result.totals = alert_totals(conn)
    result.incidents = sorted((i for i in correlator.incidents.values() if i.id in holding),
                              key=lambda i: (-i.severity, i.first_seen))
    return result


def _placed(conn: Connection, alert_ids: list[str]) -> dict[str, str]:
    """Of `alert_ids`, those stored in an incident already → that incident."""
    out: dict[str, str] = {}
    for start in range(0, len(alert_ids), 500):
        rows = conn.execute(select(alerts.c.id, alerts.c.incident_id).where(
            alerts.c.id.in_(alert_ids[start:start + 500]), alerts.c.incident_id.is_not(None)))
        out.update({r.id: r.incident_id for r in rows})
    return out


def _replay_open_incidents(conn: Connection, correlator: Correlator) -> tuple[dict[str, str], dict[str, str]]:
    """Feed the correlator every alert of the stored open incidents, in time order; returns (alert id → stored
    incident, stored incident → its state)."""
    states = open_incident_states(conn)
    stored = open_incident_alerts(conn)
    correlator.add_all(s.alert for s in stored)
    return {s.alert.id: s.incident_id for s in stored if s.incident_id}, states
