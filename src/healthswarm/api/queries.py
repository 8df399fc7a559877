"""What the API and the terminal views read and change: plain functions over a connection, returning dicts."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, func, literal, select, update

from healthswarm.api.auth import Principal, audit, load_audit
from healthswarm.model import LEVELS
from healthswarm.model.incident import IncidentState, Stage
from healthswarm.model.inventory import LEVEL_NAMES
from healthswarm.store.alerts import alert_totals
from healthswarm.store.events import search_events
from healthswarm.store.tables import alerts, assets, dependencies, findings, flows, incidents, organisations, zones
from healthswarm.store.vulns import load_findings

OPEN_STATES = tuple(str(s) for s in IncidentState if s not in (IncidentState.CLOSED, IncidentState.FALSE_POSITIVE))
STAGES = tuple(str(s) for s in Stage)
# ATT&CK Enterprise tactics in matrix order (short names as alerts carry them)
TACTICS = ("reconnaissance", "resource-development", "initial-access", "execution", "persistence",
           "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
           "collection", "command-and-control", "exfiltration", "impact")
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "none": 0, "": 0}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()


# --- assets and findings -------------------------------------------------------------------------

def asset_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "kind": r.kind, "organisation": r.organisation, "zone": r.zone,
            "vendor": r.vendor, "product": r.product, "version": r.version, "cpe": r.cpe,
            "addresses": list(r.addresses), "hostnames": list(r.hostnames),
            "criticality": {"safety": r.safety, "confidentiality": r.confidentiality, "availability": r.availability},
            # the inventory's level names (none … critical), as the infrastructure file writes them
            "criticality_levels": {k: LEVEL_NAMES[v] for k, v in (("safety", r.safety),
                                   ("confidentiality", r.confidentiality), ("availability", r.availability))},
            "records": r.records, "attributes": dict(r.attributes), "hl7": r.hl7}


def list_assets(conn: Connection, organisation: str | None = None, zone: str | None = None, kind: str | None = None,
                offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    where = []
    if organisation is not None:
        where.append(assets.c.organisation == organisation)
    if zone is not None:
        where.append(assets.c.zone == zone)
    if kind is not None:
        where.append(assets.c.kind == kind)
    total = conn.execute(select(func.count()).select_from(assets).where(*where)).scalar_one()
    rows = conn.execute(select(assets).where(*where).order_by(assets.c.id).offset(offset).limit(limit))
    return [asset_dict(r) for r in rows], total


def finding_dict(f: Any) -> dict[str, Any]:
    return {"asset_id": f.asset_id, "advisory_id": f.advisory_id, "cve": f.cve, "status": str(f.status),
            "cvss_score": f.cvss_score, "cvss_vector": f.cvss_vector, "cvss_version": f.cvss_version,
            "severity": f.severity, "cwe": list(f.cwe), "remediation": f.remediation,
            "explanation": dict(f.explanation)}


def get_asset(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(assets).where(assets.c.id == asset_id)).first()
    if row is None:
        return None
    out = asset_dict(row)
    out["findings"] = [finding_dict(f) for f in load_findings(conn, asset=asset_id)]
    out["incidents"] = [i for i in _incident_summaries(conn) if asset_id in (i["assets"] or ())]
    return out


def list_findings(conn: Connection, asset: str | None = None, severity: str | None = None,
                  status: str | None = None, advisory: str | None = None,
                  offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    found = load_findings(conn, asset=asset, severity=severity, status=status, advisory=advisory)
    return [finding_dict(f) for f in found[offset:offset + limit]], len(found)


# --- events and alerts ---------------------------------------------------------------------------

def find_events(conn: Connection, start: datetime | None, end: datetime | None, observer_type: str | None,
                asset: str | None, after_id: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page of events and the id to continue after (None on the last page)."""
    got = search_events(conn, start=start, end=end, observer_type=observer_type, asset_id=asset,
                        after_id=after_id, limit=limit + 1)
    more = len(got) > limit
    page = got[:limit]
    items = [{"id": s.id, "timestamp": s.event.timestamp.isoformat(), "source": s.event.source,
              "record": s.event.record, "key": s.event.key, "fields": s.event.fields} for s in page]
    return items, (page[-1].id if more and page else None)


def list_alerts(conn: Connection, incident: str | None = None, level: str | None = None,
                rule_id: str | None = None, offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    where = []
    if incident is not None:
        where.append(alerts.c.incident_id == incident)
    if level is not None:
        where.append(alerts.c.level == level)
    if rule_id is not None:
        where.append(alerts.c.rule_id == rule_id)
    total = conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()
    query = (select(alerts.c.document, alerts.c.incident_id).where(*where)
             .order_by(alerts.c.timestamp.desc(), alerts.c.id).offset(offset).limit(limit))
    return [{**r.document, "incident_id": r.incident_id} for r in conn.execute(query)], total


def get_alert(conn: Connection, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(alerts.c.document, alerts.c.incident_id).where(alerts.c.id == alert_id)).first()
    return None if row is None else {**row.document, "incident_id": row.incident_id}


# --- incidents -----------------------------------------------------------------------------------

_DOC_FIELDS = ("alerts", "assets", "organisations", "techniques", "tactics", "path")


def _summary_columns() -> list[Any]:
    # the summary's list fields come out of the JSON document in the database, not by decoding whole documents
    # (timelines and alert ids are most of a document's size)
    return [incidents.c.id, incidents.c.title, incidents.c.state, incidents.c.stage, incidents.c.severity,
            incidents.c.first_seen, incidents.c.last_seen,
            *(incidents.c.document[name].label(name) for name in _DOC_FIELDS)]


def _summary_row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "state": r.state, "stage": r.stage, "severity": r.severity,
            "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen),
            **{name: getattr(r, name) for name in _DOC_FIELDS}}


_ORDER = (incidents.c.severity.desc(), incidents.c.last_seen.desc(), incidents.c.id)


def _incident_summaries(conn: Connection, open_only: bool = False) -> list[dict[str, Any]]:
    query = select(*_summary_columns()).order_by(*_ORDER)
    if open_only:
        query = query.where(incidents.c.state.in_(OPEN_STATES))
    return [_summary_row(r) for r in conn.execute(query)]


def list_incidents(conn: Connection, state: str | None = None, stage: str | None = None,
                   min_severity: int = 0, offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    where = [incidents.c.severity >= min_severity]
    if state is not None:
        where.append(incidents.c.state == state)
    if stage is not None:
        where.append(incidents.c.stage == stage)
    total = conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one()
    # the page's ids first (sorting narrow rows), then the JSON fields of those rows only
    page = select(incidents.c.id).where(*where).order_by(*_ORDER).offset(offset).limit(limit).scalar_subquery()
    query = select(*_summary_columns()).where(incidents.c.id.in_(page)).order_by(*_ORDER)
    return [_summary_row(r) for r in conn.execute(query)], total


def get_incident(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(incidents.c.document, incidents.c.state)
                       .where(incidents.c.id == incident_id)).first()
    if row is None:
        return None
    doc = dict(row.document)
    doc["state"] = row.state
    doc["history"] = load_audit(conn, target_id=incident_id)
    return doc


def set_incident_state(conn: Connection, incident_id: str, state: IncidentState, actor: Principal,
                       note: str = "") -> dict[str, Any] | None:
    """Move an incident to `state`, audited with the state before and after; None when it is unknown."""
    row = conn.execute(select(incidents.c.document, incidents.c.state)
                       .where(incidents.c.id == incident_id)).first()
    if row is None:
        return None
    doc = {**row.document, "state": str(state)}
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(state=str(state), document=doc))
    audit(conn, actor, "incident.state", "incident", incident_id, {"state": row.state}, {"state": str(state)}, note)
    return get_incident(conn, incident_id)


# --- the ecosystem, ATT&CK, exposure, summary ------------------------------------------------------

def ecosystem(conn: Connection) -> dict[str, Any]:
    """Organisations, zones, assets (with the worst open incident on each), flows and dependencies."""
    on_asset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    query = (select(incidents.c.id, incidents.c.severity, incidents.c.stage, incidents.c.state,
                    incidents.c.document["assets"].label("assets"))
             .where(incidents.c.state.in_(OPEN_STATES)).order_by(*_ORDER))
    for doc in conn.execute(query).mappings():
        for asset_id in doc["assets"] or ():
            on_asset[asset_id].append(doc)
    finding_counts = dict(conn.execute(select(findings.c.asset_id, func.count()).group_by(findings.c.asset_id)).all())
    out_assets = []
    for r in conn.execute(select(assets.c.id, assets.c.name, assets.c.kind, assets.c.organisation, assets.c.zone,
                                 assets.c.safety, assets.c.confidentiality, assets.c.availability)
                          .order_by(assets.c.id)):
        docs = on_asset.get(r.id, [])
        worst = max(docs, key=lambda d: (d["severity"], STAGES.index(d["stage"])), default=None)
        out_assets.append({
            "id": r.id, "name": r.name, "kind": r.kind, "organisation": r.organisation, "zone": r.zone,
            "criticality": max(r.safety, r.confidentiality, r.availability), "safety": r.safety,
            "findings": finding_counts.get(r.id, 0),
            "incident": None if worst is None else {"id": worst["id"], "severity": worst["severity"],
                                                    "stage": worst["stage"], "state": worst["state"]},
            "incidents": [d["id"] for d in docs],
        })
    return {
        "organisations": [{"id": r.id, "name": r.name, "kind": r.kind, "country": r.country}
                          for r in conn.execute(select(organisations).order_by(organisations.c.id))],
        "zones": [{"id": r.id, "organisation": r.organisation, "name": r.name, "exposure": r.exposure}
                  for r in conn.execute(select(zones).order_by(zones.c.id))],
        "assets": out_assets,
        "flows": [{"source": r.source, "target": r.target, "protocol": r.protocol, "port": r.port}
                  for r in conn.execute(select(flows).order_by(flows.c.id))],
        "dependencies": [{"source": r.source, "target": r.target, "kind": r.kind}
                         for r in conn.execute(select(dependencies).order_by(dependencies.c.id))],
    }


# bucket sizes for the alert volume, seconds: the smallest that gives at most `buckets` bars
VOLUME_STEPS = (60, 300, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)


def alert_volume(conn: Connection, buckets: int = 48) -> dict[str, Any]:
    """Stored alerts per detector over time: the span from the first to the last alert cut into at most `buckets`
    equal buckets (a round size: minutes, hours, days), counted in the database."""
    epoch = func.cast(func.extract("epoch", alerts.c.timestamp), BigInteger)
    first, last = conn.execute(select(func.min(epoch), func.max(epoch))).one()
    if first is None:
        return {"start": None, "end": None, "bucket_seconds": None, "buckets": [], "detectors": []}
    span = int(last) - int(first) + 1
    longest = VOLUME_STEPS[-1]
    size = next((s for s in VOLUME_STEPS if span / s <= buckets), longest * -(-span // (longest * buckets)))
    start = int(first) // size * size
    count = (int(last) - start) // size + 1
    slot = ((epoch - literal(start, BigInteger)) / literal(size, BigInteger)).label("slot")
    rows = conn.execute(select(alerts.c.detector, slot, func.count()).group_by(alerts.c.detector, slot)).all()
    series: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    for detector, at, n in rows:
        series[detector][min(max(int(at), 0), count - 1)] += int(n)
    detectors = sorted(({"detector": d, "total": sum(c), "counts": c} for d, c in series.items()),
                       key=lambda d: (-d["total"], d["detector"]))
    moment = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    return {"start": moment(start), "end": moment(start + count * size), "bucket_seconds": size,
            "buckets": [moment(start + i * size) for i in range(count)], "detectors": detectors}


def attack_matrix(conn: Connection) -> dict[str, Any]:
    """How often each ATT&CK technique was seen in alerts, under the tactics the alerts named."""
    cells: Counter[tuple[str, str]] = Counter()
    names: dict[str, str] = {}
    for (doc,) in conn.execute(select(alerts.c.document)):
        tactics = [t.get("shortname") or t.get("id", "") for t in doc.get("tactics", ())] or ["unknown"]
        for tech in doc.get("techniques", ()):
            names.setdefault(tech["id"], tech.get("name", ""))
            for tactic in tactics:
                cells[(tactic, tech["id"])] += 1
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
    }


def exposure(conn: Connection) -> list[dict[str, Any]]:
    """Per organisation: findings by severity, assets affected, safety-critical assets affected, worst CVSS."""
    rows = conn.execute(select(findings.c.asset_id, findings.c.severity, findings.c.cvss_score, assets.c.organisation,
                               assets.c.safety).join(assets, assets.c.id == findings.c.asset_id)).all()
    out = {r.id: {"organisation": r.id, "name": r.name, "findings": 0, "by_severity": {}, "assets_affected": 0,
                  "safety_critical_affected": 0, "max_cvss": None}
           for r in conn.execute(select(organisations).order_by(organisations.c.id))}
    affected: dict[str, set[str]] = defaultdict(set)
    critical: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        org = out.setdefault(r.organisation, {"organisation": r.organisation, "name": r.organisation, "findings": 0,
                                              "by_severity": {}, "assets_affected": 0,
                                              "safety_critical_affected": 0, "max_cvss": None})
        org["findings"] += 1
        sev = r.severity or "unknown"
        org["by_severity"][sev] = org["by_severity"].get(sev, 0) + 1
        if r.cvss_score is not None:
            org["max_cvss"] = max(org["max_cvss"] or 0.0, r.cvss_score)
        affected[r.organisation].add(r.asset_id)
        if r.safety >= 3:
            critical[r.organisation].add(r.asset_id)
    for org_id, org in out.items():
        org["assets_affected"] = len(affected[org_id])
        org["safety_critical_affected"] = len(critical[org_id])
    return sorted(out.values(), key=lambda o: (-o["findings"], o["organisation"]))


def most_exposed_assets(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for f in load_findings(conn):
        a = per.setdefault(f.asset_id, {"asset": f.asset_id, "findings": 0, "max_cvss": 0.0, "worst": ""})
        a["findings"] += 1
        a["max_cvss"] = max(a["max_cvss"], f.cvss_score or 0.0)
        if SEVERITY_RANK.get(f.severity, 0) > SEVERITY_RANK.get(a["worst"], 0):
            a["worst"] = f.severity
    return sorted(per.values(), key=lambda a: (-a["max_cvss"], -a["findings"], a["asset"]))[:limit]


def summary(conn: Connection) -> dict[str, Any]:
    """Incidents by stage and severity, open ones, alert and event counts, the most exposed assets."""
    by_stage = {s: 0 for s in STAGES}
    by_severity = {lvl: 0 for lvl in LEVELS}
    by_state: Counter[str] = Counter()
    for r in conn.execute(select(incidents.c.stage, incidents.c.severity, incidents.c.state)):
        by_state[r.state] += 1
        if r.state in OPEN_STATES:
            by_stage[r.stage] = by_stage.get(r.stage, 0) + 1
            by_severity[LEVELS[max(0, min(4, r.severity))]] += 1
    totals = alert_totals(conn)  # the figures `healthswarm detect` and the demo print, counted the same way
    return {
        "incidents": totals["incidents"], "open_incidents": totals["open_incidents"],
        "by_state": dict(by_state), "open_by_stage": by_stage, "open_by_severity": by_severity,
        "alerts": totals["alerts"], "alerts_in_incidents": totals["in_incidents"],
        "assets": conn.execute(select(func.count()).select_from(assets)).scalar_one(),
        "findings": conn.execute(select(func.count()).select_from(findings)).scalar_one(),
        "most_exposed": most_exposed_assets(conn),
    }


def change_marker(conn: Connection) -> str:
    """A short text that changes whenever incidents, alerts or the audit log change (for live updates)."""
    from healthswarm.store.api_tables import audit_log

    n_inc, last = conn.execute(select(func.count(), func.max(incidents.c.last_seen)).select_from(incidents)).one()
    n_alerts = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
    n_audit = conn.execute(select(func.max(audit_log.c.id))).scalar_one()
    return f"{n_inc}:{_iso(last)}:{n_alerts}:{n_audit}"
