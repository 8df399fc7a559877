"""Reading findings from a JSON file (the output of `healthswarm vulns list --format json`, or a list
of Finding fields) for when the store holds none or the user wants another set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Finding, FindingStatus


def finding_from_dict(row: dict[str, Any]) -> Finding:
    score = row.get("cvss_score")
    return Finding(
        asset_id=str(row["asset_id"]), advisory_id=str(row.get("advisory_id", "")), cve=str(row.get("cve", "")),
        status=FindingStatus(row.get("status", FindingStatus.AFFECTED.value)),
        cvss_score=float(score) if score not in (None, "") else None, cvss_vector=str(row.get("cvss_vector") or ""),
        cvss_version=str(row.get("cvss_version") or ""), severity=str(row.get("severity") or ""),
        cwe=tuple(row.get("cwe") or ()), remediation=str(row.get("remediation") or ""),
        explanation={str(k): str(v) for k, v in (row.get("explanation") or {}).items()},
    )


def load_findings_file(path: Path) -> list[Finding]:
    where = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(Problem(Location(where), f"cannot read: {exc.strerror}")) from None
    except json.JSONDecodeError as exc:
        raise InputError(Problem(Location(where, exc.lineno), f"not JSON: {exc.msg}")) from None
    rows = doc.get("findings", doc) if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise InputError(Problem(Location(where), "expected a list of findings", "a JSON array of objects"))
    out, problems = [], []
    for n, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise TypeError("not an object")
            out.append(finding_from_dict(row))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(Location(where, None, f"[{n}]"), f"bad finding: {exc}",
                                    "asset_id, cve, status affected|possibly-affected, cvss_vector"))
    if problems:
        raise InputError(problems)
    return out
