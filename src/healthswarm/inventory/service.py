"""What the CLI, the API and the dashboard call about the ecosystem: assets with their findings and incidents,
advisory findings, the map of organisations, zones, assets and flows, and exposure per organisation."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select

from healthswarm.inventory.advisories.match import SEVERITY_ORDER
from healthswarm.model.incident import OPEN_STATES
from healthswarm.model.inventory import LEVEL_NAMES
from healthswarm.store.alerts import incident_summaries
from healthswarm.store.inventory import count_assets
from healthswarm.store.tables import (
    assets,
    dependencies,
    findings,
    flows,
    incident_assets,
    incidents,
    organisations,
    zones,
)
from healthswarm.store.vulns import load_findings


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
    wanted = {"organisation": organisation, "zone": zone, "kind": kind}
    where = [assets.c[name] == value for name, value in wanted.items() if value is not None]
    total = conn.execute(select(func.count()).select_from(assets).where(*where)).scalar_one()
    rows = conn.execute(select(assets).where(*where).order_by(assets.c.id).offset(offset).limit(limit))
    return [asset_dict(r) for r in rows], total


def finding_dict(f: Any) -> dict[str, Any]:
    return {"asset_id": f.asset_id, "advisory_id": f.advisory_id, "cve": f.cve, "status": str(f.status),
            "cvss_score": f.cvss_score, "cvss_vector": f.cvss_vector, "cvss_version": f.cvss_version,
            "severity": f.severity, "cwe": list(f.cwe), "remediation": f.remediation,
            "explanation": dict(f.explanation)}


def get_asset(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    """One asset with its findings and the incidents it is in; None when it is unknown."""
    row = conn.execute(select(assets).where(assets.c.id == asset_id)).first()
    if row is None:
        return None
    out = asset_dict(row)
    out["findings"] = [finding_dict(f) for f in load_findings(conn, asset=asset_id)]
    out["incidents"] = incident_summaries(conn, asset=asset_id)[0]
    return out


def list_findings(conn: Connection, asset: str | None = None, severity: str | None = None,
                  status: str | None = None, advisory: str | None = None,
                  offset: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    found = load_findings(conn, asset=asset, severity=severity, status=status, advisory=advisory)
    return [finding_dict(f) for f in found[offset:offset + limit]], len(found)


_INCIDENT_ID = itemgetter(1)  # of an (asset_id, incident_id) row


def ecosystem(conn: Connection) -> dict[str, Any]:
    """Organisations, zones, assets (with the worst open incident on each), flows and dependencies."""
    # from incident_assets alone, never the incident documents: each asset's open incidents in the incident
    # board's order (one scan of a covering index, two columns: 10,000 open incidents are 10,000 rows), and its
    # worst one (one index seek per asset), so no Python runs per incident row beyond C-level grouping
    ia = incident_assets.c
    open_states = [str(s) for s in OPEN_STATES]
    rows = conn.execute(select(ia.asset_id, ia.incident_id).where(ia.state.in_(open_states))
                        .order_by(ia.asset_id, ia.severity.desc(), ia.last_seen.desc(), ia.incident_id)).all()
    on_asset = {asset_id: list(map(_INCIDENT_ID, of_asset)) for asset_id, of_asset in groupby(rows, key=itemgetter(0))}
    worst = (select(ia.incident_id).where(ia.asset_id == assets.c.id, ia.state.in_(open_states))
             .order_by(ia.severity.desc(), ia.stage_rank.desc(), ia.last_seen.desc(), ia.incident_id)
             .limit(1).scalar_subquery())
    finding_counts = dict(conn.execute(select(findings.c.asset_id, func.count()).group_by(findings.c.asset_id)).all())
    out_assets = []
    for r in conn.execute(select(assets.c.id, assets.c.name, assets.c.kind, assets.c.organisation, assets.c.zone,
                                 assets.c.safety, assets.c.confidentiality, assets.c.availability,
                                 incidents.c.id.label("worst_id"), incidents.c.severity, incidents.c.stage,
                                 incidents.c.state)
                          .select_from(assets.outerjoin(incidents, incidents.c.id == worst))
                          .order_by(assets.c.id)):
        out_assets.append({
            "id": r.id, "name": r.name, "kind": r.kind, "organisation": r.organisation, "zone": r.zone,
            "criticality": max(r.safety, r.confidentiality, r.availability), "safety": r.safety,
            "findings": finding_counts.get(r.id, 0),
            "incident": None if r.worst_id is None else {"id": r.worst_id, "severity": r.severity,
                                                         "stage": r.stage, "state": r.state},
            "incidents": on_asset.get(r.id, []),
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
    """The assets with the worst CVSS score among their findings (then the most findings)."""
    per: dict[str, dict[str, Any]] = {}
    for f in load_findings(conn):
        a = per.setdefault(f.asset_id, {"asset": f.asset_id, "findings": 0, "max_cvss": 0.0, "worst": ""})
        a["findings"] += 1
        a["max_cvss"] = max(a["max_cvss"], f.cvss_score or 0.0)
        # "none" (CVSS 0.0) is no worse than no severity at all: the worst word stays empty for it
        if SEVERITY_ORDER.get(f.severity, 0) > max(SEVERITY_ORDER.get(a["worst"], 0), 0):
            a["worst"] = f.severity
    return sorted(per.values(), key=lambda a: (-a["max_cvss"], -a["findings"], a["asset"]))[:limit]


def count_assets_and_findings(conn: Connection) -> tuple[int, int]:
    return count_assets(conn), conn.execute(select(func.count()).select_from(findings)).scalar_one()
