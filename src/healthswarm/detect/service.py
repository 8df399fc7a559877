"""What the CLI, the API and the dashboard call about alerts and incidents: a hunt over files, lists, one
incident with its history, moving an incident through its life cycle (audited), and the figures the overview
shows."""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from healthswarm.detect.sigma import SigmaDetector
from healthswarm.detect.sigma.cache import load_groups, save_groups
from healthswarm.detect.sigma.ruleset import RuleSet
from healthswarm.ingest.service import events_in_files
from healthswarm.inventory.service import count_assets_and_findings, most_exposed_assets
from healthswarm.model import LEVELS, Alert
from healthswarm.model.incident import OPEN_STATES, STAGE_NAMES, IncidentState
from healthswarm.store.alerts import (
    alert_counts,
    alert_span,
    alert_totals,
    count_alerts,
    incident_counts,
    incident_summaries,
    latest_incident_seen,
    load_alert,
    load_alerts,
    load_incident,
)
from healthswarm.store.alerts import set_incident_state as store_incident_state
from healthswarm.store.audit import latest_change, load_audit, record_change

# ATT&CK Enterprise tactics in matrix order (short names as alerts carry them)
TACTICS = ("reconnaissance", "resource-development", "initial-access", "execution", "persistence",
           "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
           "collection", "command-and-control", "exfiltration", "impact")
# bucket sizes for the alert volume, seconds: the smallest that gives at most `buckets` bars
VOLUME_STEPS = (60, 300, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)


# --- hunting over files --------------------------------------------------------------------------

#: Objects allocated (net) between two young garbage collections during a hunt (Python's default: 700).
HUNT_GC_YOUNG = 50_000


@dataclass
class Hunt:
    alerts: list[Alert]  # at the level asked for or above
    events: int  # events read


def hunt_files(ruleset: RuleSet, files: Iterable[Path], cache_dir: Path | None, min_level: str, problems: list[str],
               done: Callable[[Path], None] = lambda _path: None) -> Hunt:
    """Sigma rules (with their correlations) over the events of files in any ingest format and container, storing
    nothing. What cannot be read goes to `problems` (`ingest.service.events_in_files`); the rules' field groups
    learnt on the way are cached in `cache_dir` for the next hunt."""
    detector = SigmaDetector(ruleset)
    detector.engine.adopt_groups(load_groups(cache_dir, ruleset))
    floor = LEVELS.index(min_level)
    found = Hunt([], 0)
    # the rule set is hundreds of thousands of long-lived objects that every full collection walked again while
    # the events' short-lived dicts triggered them: set apart for the hunt (5 % of its time), given back after.
    # What the hunt keeps (alerts, memos) grows slowly and the events die young: collections every 700 new
    # objects walked the events in flight and the alerts again (5 % of the hunt in perf): now every HUNT_GC_YOUNG
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], HUNT_GC_YOUNG), *thresholds[1:])
    gc.freeze()
    try:
        for event in events_in_files(files, problems, done):
            found.events += 1
            alerts = detector.detect(event)
            if alerts:  # most events match nothing: no generator for them
                found.alerts.extend(a for a in alerts if a.severity >= floor)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    found.alerts.extend(a for a in detector.flush() if a.severity >= floor)
    if detector.engine.groups_built:
        save_groups(cache_dir, ruleset, detector.engine.groups())
    return found


# --- alerts --------------------------------------------------------------------------------------

def list_alerts(conn: Connection, incident: str | None = None, level: str | None = None,
                rule_id: str | None = None, offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    """A page of alerts, newest first, each with the incident it is in, and how many match in all."""
    found = load_alerts(conn, rule_id=rule_id, incident=incident, level=level, offset=offset, limit=limit)
    return [a.as_dict() for a in found], count_alerts(conn, rule_id=rule_id, incident=incident, level=level)


def get_alert(conn: Connection, alert_id: str) -> dict[str, Any] | None:
    found = load_alert(conn, alert_id)
    return None if found is None else found.as_dict()


def alert_volume(conn: Connection, buckets: int = 48) -> dict[str, Any]:
    """Stored alerts per detector over time: the span from the first to the last alert cut into at most `buckets`
    equal buckets (a round size: minutes, hours, days), counted in the database."""
    span = alert_span(conn)
    if span is None:
        return {"start": None, "end": None, "bucket_seconds": None, "buckets": [], "detectors": []}
    first, last = span
    seconds = last - first + 1
    longest = VOLUME_STEPS[-1]
    size = next((s for s in VOLUME_STEPS if seconds / s <= buckets), longest * -(-seconds // (longest * buckets)))
    start = first // size * size
    count = (last - start) // size + 1
    series: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    for detector, at, n in alert_counts(conn, start, size):
        series[detector][min(max(at, 0), count - 1)] += n
    detectors = sorted(({"detector": d, "total": sum(c), "counts": c} for d, c in series.items()),
                       key=lambda d: (-d["total"], d["detector"]))
    moment = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    return {"start": moment(start), "end": moment(start + count * size), "bucket_seconds": size,
            "buckets": [moment(start + i * size) for i in range(count)], "detectors": detectors}


def attack_matrix(conn: Connection) -> dict[str, Any]:
    """How often each ATT&CK technique was seen in alerts, under the tactics the alerts named.

    An alert with a technique but no tactic (a baseline deviation names only the technique) has no column on the
    map: it is counted in `without_tactic` rather than under a made-up tactic, as `hunt` leaves it out of its table.
    """
    cells: Counter[tuple[str, str]] = Counter()
    names: dict[str, str] = {}
    without_tactic = 0
    for stored in load_alerts(conn):
        tactics = [t.shortname or t.id for t in stored.alert.tactics]
        if not tactics:
            without_tactic += bool(stored.alert.techniques)
            continue
        for tech in stored.alert.techniques:
            names.setdefault(tech.id, tech.name)
            for tactic in tactics:
                cells[(tactic, tech.id)] += 1
    seen = {t for t, _ in cells}
    order = [t for t in TACTICS if t in seen] + sorted(seen - set(TACTICS))
    return {
        "tactics": [
            {"tactic": tactic, "techniques": sorted(
                ({"id": tech, "name": names.get(tech, ""), "count": n} for (ta, tech), n in cells.items()
                 if ta == tactic), key=lambda c: (-c["count"], c["id"]))}
            for tactic in order
        ],
        "max": max(cells.values(), default=0),
        "without_tactic": without_tactic,
    }


# --- incidents -----------------------------------------------------------------------------------

def list_incidents(conn: Connection, state: str | None = None, stage: str | None = None,
                   min_severity: int = 0, offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    """A page of incident summaries, most severe and most recent first, and how many match in all."""
    return incident_summaries(conn, state=state, stage=stage, min_severity=min_severity, offset=offset, limit=limit)


def get_incident(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    """One incident whole, with its audited history (newest first); None when it is unknown."""
    found = load_incident(conn, incident_id)
    if found is None:
        return None
    return {**found.as_dict(), "history": load_audit(conn, target_id=incident_id)}


def set_incident_state(conn: Connection, incident_id: str, state: IncidentState, actor: str, role: str,
                       note: str = "") -> dict[str, Any] | None:
    """Move an incident to `state`, audited with the state before and after as `actor` in `role`; returns the
    incident as `get_incident` does, None when it is unknown."""
    before = store_incident_state(conn, incident_id, state)
    if before is None:
        return None
    record_change(conn, actor, role, "incident.state", "incident", incident_id, {"state": before},
                  {"state": str(state)}, note)
    return get_incident(conn, incident_id)


# --- the overview --------------------------------------------------------------------------------

def summary(conn: Connection) -> dict[str, Any]:
    """Incidents by stage and severity, open ones, alert and event counts, the most exposed assets."""
    by_stage = {s: 0 for s in STAGE_NAMES}
    by_severity = {lvl: 0 for lvl in LEVELS}
    by_state: Counter[str] = Counter()
    for state, stage, severity in incident_counts(conn):
        by_state[state] += 1
        if state in OPEN_STATES:
            by_stage[stage] = by_stage.get(stage, 0) + 1
            by_severity[LEVELS[max(0, min(4, severity))]] += 1
    totals = alert_totals(conn)  # the figures `healthswarm detect` and the demo print, counted the same way
    n_assets, n_findings = count_assets_and_findings(conn)
    return {
        "incidents": totals["incidents"], "open_incidents": totals["open_incidents"],
        "by_state": dict(by_state), "open_by_stage": by_stage, "open_by_severity": by_severity,
        "alerts": totals["alerts"], "alerts_in_incidents": totals["in_incidents"],
        "assets": n_assets, "findings": n_findings, "most_exposed": most_exposed_assets(conn),
    }


def change_marker(conn: Connection) -> str:
    """A short text that changes whenever incidents, alerts or the audit log change (for live updates)."""
    totals = alert_totals(conn)
    last = latest_incident_seen(conn)
    return f"{totals['incidents']}:{last and last.isoformat()}:{totals['alerts']}:{latest_change(conn)}"
