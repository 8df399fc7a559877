"""Exploit likelihood from the outside world: EPSS scores and the CISA KEV catalogue (CSV or JSON).

Both only ever *raise* the CVSS-derived probability of an exploit: EPSS (chance of exploitation in the
wild within 30 days) is combined as an independent second reason, `1 - (1-p)(1-epss)`; a CVE in KEV
is known to be exploited, so its probability is at least `KEV_FLOOR`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem

KEV_FLOOR = 0.95


@dataclass(frozen=True, slots=True)
class Likelihood:
    epss: dict[str, float] = field(default_factory=dict)
    kev: frozenset[str] = frozenset()

    def adjust(self, cve: str, p: float) -> tuple[float, str]:
        """(raised probability, why) for one CVE."""
        key = cve.upper()
        why = []
        if key in self.epss:
            p = 1 - (1 - p) * (1 - self.epss[key])
            why.append(f"EPSS {self.epss[key]:.3f}")
        if key in self.kev and p < KEV_FLOOR:
            p = KEV_FLOOR
            why.append("in CISA KEV")
        elif key in self.kev:
            why.append("in CISA KEV")
        return p, ", ".join(why)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read: {exc.strerror}")) from None


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(Location(str(path), exc.lineno), f"not JSON: {exc.msg}")) from None


def _rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(io.StringIO("\n".join(lines)))]


def load_epss(path: Path) -> dict[str, float]:
    """EPSS as published (CSV `cve,epss,percentile`, `#model_version` line allowed) or the API's JSON."""
    text = _text(path)
    if text.lstrip().startswith(("{", "[")):
        doc = _json(path, text)
        rows = doc.get("data", []) if isinstance(doc, dict) else doc
        rows = [{str(k).lower(): str(v) for k, v in r.items()} for r in rows if isinstance(r, dict)]
    else:
        rows = _rows(text)
    out: dict[str, float] = {}
    problems = []
    for n, row in enumerate(rows, start=1):
        cve, value = row.get("cve", ""), row.get("epss", "")
        try:
            score = float(value)
            if not cve or not 0 <= score <= 1:
                raise ValueError
        except ValueError:
            problems.append(Problem(Location(str(path), None, f"row {n}"), f"bad EPSS row {row!r}",
                                    "a cve and an epss between 0 and 1"))
            continue
        out[cve.upper()] = score
    if problems:
        raise InputError(problems)
    return out


def load_kev(path: Path) -> frozenset[str]:
    """CISA KEV as JSON (`vulnerabilities[].cveID`) or CSV (a `cveID` column)."""
    text = _text(path)
    if text.lstrip().startswith(("{", "[")):
        doc = _json(path, text)
        rows = doc.get("vulnerabilities", []) if isinstance(doc, dict) else doc
        ids = {str(r.get("cveID", "")).upper() for r in rows if isinstance(r, dict)}
    else:
        ids = {r.get("cveid", "").upper() for r in _rows(text)}
    ids.discard("")
    if not ids:
        raise InputError(Problem(Location(str(path)), "no CVE ids found", "KEV JSON or CSV with a cveID column"))
    return frozenset(ids)


def load_likelihood(epss: Path | None = None, kev: Path | None = None) -> Likelihood:
    return Likelihood(load_epss(epss) if epss else {}, load_kev(kev) if kev else frozenset())
