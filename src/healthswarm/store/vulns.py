"""Repository of advisories and findings: upsert advisories, replace findings, read both back.

An advisory is stored whole as JSON (`document`), since matching reads advisories whole; findings
are rows, filtered by asset, severity and status in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from healthswarm.model import Advisory, Finding, FindingStatus, ProductEntry, Remediation, Score, Vulnerability
from healthswarm.store.tables import advisories, findings

_CHUNK = 2_000


def advisory_to_dict(a: Advisory) -> dict[str, Any]:
    return {
        "id": a.id, "title": a.title, "source": a.source, "format": a.format, "published": a.published,
        "publisher": a.publisher,
        "products": [
            {"product_id": p.product_id, "vendor": p.vendor, "product": p.product, "version_rule": p.version_rule,
             "cpe": p.cpe, "purl": p.purl, "full_name": p.full_name, "aliases": list(p.aliases)}
            for p in a.products
        ],
        "vulnerabilities": [
            {
                "cve": v.cve, "title": v.title, "cwe": list(v.cwe),
                "scores": [{"version": s.version, "vector": s.vector, "base_score": s.base_score,
                            "severity": s.severity, "stated_score": s.stated_score} for s in v.scores],
                "product_status": {k: list(ids) for k, ids in v.product_status.items()},
                "remediations": [{"category": r.category, "details": r.details, "product_ids": list(r.product_ids),
                                  "url": r.url} for r in v.remediations],
            }
            for v in a.vulnerabilities
        ],
    }


def advisory_from_dict(d: dict[str, Any]) -> Advisory:
    return Advisory(
        id=d["id"], title=d.get("title", ""), source=d.get("source", ""), format=d.get("format", ""),
        published=d.get("published", ""), publisher=d.get("publisher", ""),
        products=tuple(ProductEntry(**{**p, "aliases": tuple(p.get("aliases", ()))}) for p in d.get("products", ())),
        vulnerabilities=tuple(
            Vulnerability(
                cve=v.get("cve", ""), title=v.get("title", ""), cwe=tuple(v.get("cwe", ())),
                scores=tuple(Score(**s) for s in v.get("scores", ())),
                product_status={k: tuple(ids) for k, ids in v.get("product_status", {}).items()},
                remediations=tuple(Remediation(category=r["category"], details=r["details"],
                                               product_ids=tuple(r.get("product_ids", ())), url=r.get("url", ""))
                                   for r in v.get("remediations", ())),
            )
            for v in d.get("vulnerabilities", ())
        ),
    )


def save_advisories(conn: Connection, items: Iterable[Advisory]) -> int:
    """Insert or update (by id) the advisories, inside the caller's transaction; returns how many."""
    rows = [{"id": a.id, "title": a.title, "source": a.source, "format": a.format, "published": a.published,
             "document": advisory_to_dict(a)} for a in items]
    if not rows:
        return 0
    dialect = conn.dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else None
    if insert_fn is None:  # another backend: delete then insert, still one transaction
        conn.execute(delete(advisories).where(advisories.c.id.in_([r["id"] for r in rows])))
        conn.execute(insert(advisories), rows)
        return len(rows)
    for start in range(0, len(rows), _CHUNK):
        stmt = insert_fn(advisories)
        stmt = stmt.on_conflict_do_update(
            index_elements=[advisories.c.id],
            set_={c: stmt.excluded[c] for c in ("title", "source", "format", "published", "document")},
        )
        conn.execute(stmt, rows[start: start + _CHUNK])
    return len(rows)


def load_advisories(conn: Connection, ids: Sequence[str] | None = None) -> list[Advisory]:
    query = select(advisories.c.document).order_by(advisories.c.id)
    if ids is not None:
        query = query.where(advisories.c.id.in_(list(ids)))
    return [advisory_from_dict(row.document) for row in conn.execute(query)]


def count_advisories(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(advisories)).scalar_one()


def _finding_row(f: Finding) -> dict[str, Any]:
    return {
        "asset_id": f.asset_id, "advisory_id": f.advisory_id, "cve": f.cve, "status": str(f.status),
        "cvss_score": f.cvss_score, "cvss_vector": f.cvss_vector, "cvss_version": f.cvss_version,
        "severity": f.severity, "cwe": list(f.cwe), "remediation": f.remediation,
        "explanation": dict(f.explanation),
    }


def replace_findings(conn: Connection, items: Iterable[Finding]) -> int:
    """Replace every stored finding with `items`, inside the caller's transaction."""
    conn.execute(delete(findings))
    rows = [_finding_row(f) for f in items]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(findings), rows[start: start + _CHUNK])
    return len(rows)


def load_findings(
    conn: Connection,
    asset: str | None = None,
    severity: str | Sequence[str] | None = None,
    status: FindingStatus | str | None = None,
    advisory: str | None = None,
) -> list[Finding]:
    """Stored findings, optionally only one asset's, of some severities, of one status or advisory."""
    query = select(findings).order_by(findings.c.cvss_score.desc().nulls_last(), findings.c.asset_id,
                                      findings.c.advisory_id, findings.c.cve)
    if asset is not None:
        query = query.where(findings.c.asset_id == asset)
    if severity is not None:
        wanted = [severity] if isinstance(severity, str) else list(severity)
        query = query.where(findings.c.severity.in_([s.lower() for s in wanted]))
    if status is not None:
        query = query.where(findings.c.status == str(status))
    if advisory is not None:
        query = query.where(findings.c.advisory_id == advisory)
    return [
        Finding(
            asset_id=r.asset_id, advisory_id=r.advisory_id, cve=r.cve, status=FindingStatus(r.status),
            cvss_score=r.cvss_score, cvss_vector=r.cvss_vector, cvss_version=r.cvss_version, severity=r.severity,
            cwe=tuple(r.cwe), remediation=r.remediation, explanation=dict(r.explanation),
        )
        for r in conn.execute(query)
    ]
