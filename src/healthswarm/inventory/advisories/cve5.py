"""CVE JSON 5 records (CVE Record Format 5.x, `dataType: CVE_RECORD`) into `Advisory`.

One record is one vulnerability. Each `containers.cna.affected[]` item (vendor, product, cpes,
versions[], defaultStatus) becomes product entries whose rule is a `vers:` expression built from
`version` / `lessThan` / `lessThanOrEqual` (see `versions.cve5_rule`); the item's `status` picks
the CSAF-like status group. Metrics come from the CNA and from ADP containers (CISA-ADP adds
CVSS to records whose CNA gave none).

Not read: `versions[].changes` (status changes inside a range) and `platforms`/`modules`.
"""

from __future__ import annotations

import re
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories.jsonvalues import as_dict as _dict
from healthswarm.inventory.advisories.jsonvalues import as_list as _list
from healthswarm.inventory.advisories.jsonvalues import text as _text
from healthswarm.inventory.advisories.scoring import ScoreError, score_vector
from healthswarm.inventory.advisories.versions import cve5_rule
from healthswarm.model import Advisory, ProductEntry, ProductStatus, Remediation, Score, Vulnerability

_METRIC_KEYS = ("cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0")
_STATUS_GROUP = {
    "affected": ProductStatus.KNOWN_AFFECTED,
    "unaffected": ProductStatus.KNOWN_NOT_AFFECTED,
    "unknown": ProductStatus.UNDER_INVESTIGATION,
}
_NA = frozenset({"", "n/a", "na", "unknown", "-"})


def is_cve5(doc: Any) -> bool:
    return isinstance(doc, dict) and (doc.get("dataType") == "CVE_RECORD" or
                                      (isinstance(doc.get("cveMetadata"), dict) and "containers" in doc))


def _name(value: Any) -> str:
    text = _text(value)
    return "" if text.lower() in _NA else text


def parse_cve5(doc: dict[str, Any], source: str) -> tuple[Advisory, list[Problem]]:
    problems: list[Problem] = []
    meta = _dict(doc.get("cveMetadata"))
    cve = _text(meta.get("cveId"))
    if not re.fullmatch(r"CVE-\d{4}-\d{4,}", cve):
        raise InputError(Problem(Location(source, None, "cveMetadata.cveId"),
                                 f"CVE id {cve!r} is missing or malformed", "CVE-YYYY-NNNN"))
    if _text(meta.get("state")).upper() == "REJECTED":
        raise InputError(Problem(Location(source, None, "cveMetadata.state"),
                                 f"{cve} is a REJECTED record: it affects nothing", "a PUBLISHED record"))
    containers = _dict(doc.get("containers"))
    cna = _dict(containers.get("cna"))
    if not cna:
        raise InputError(Problem(Location(source, None, "containers.cna"), "the record has no CNA container",
                                 "containers.cna with affected products"))
    entries: list[ProductEntry] = []
    status: dict[str, list[str]] = {}
    for i, item in enumerate(_list(cna.get("affected"))):
        _affected(cve, i, _dict(item), entries, status, problems, source)
    scores: list[Score] = []
    metric_blocks = [("containers.cna.metrics", _list(cna.get("metrics")))]
    metric_blocks += [(f"containers.adp[{k}].metrics", _list(_dict(adp).get("metrics")))
                      for k, adp in enumerate(_list(containers.get("adp")))]
    for where, metrics in metric_blocks:
        for j, metric in enumerate(metrics):
            for key in _METRIC_KEYS:
                cvss = _dict(_dict(metric).get(key))
                if not cvss:
                    continue
                stated = cvss.get("baseScore")
                try:
                    score = score_vector(_text(cvss.get("vectorString")), _text(cvss.get("version")),
                                         float(stated) if isinstance(stated, int | float) else None)
                except ScoreError as exc:
                    problems.append(Problem(Location(source, None, f"{where}[{j}].{key}.vectorString"), str(exc),
                                            "a valid CVSS vector"))
                    continue
                if score not in scores:
                    scores.append(score)
    cwes: list[str] = []
    for pt in _list(cna.get("problemTypes")):
        for desc in _list(_dict(pt).get("descriptions")):
            d = _dict(desc)
            found = _text(d.get("cweId")) or next(iter(re.findall(r"CWE-\d+", _text(d.get("description")))), "")
            if found and found not in cwes:
                cwes.append(found)
    affected_ids = tuple(status.get(ProductStatus.KNOWN_AFFECTED, []))
    remediations = tuple(
        Remediation(category=category, details=_text(_dict(item).get("value")), product_ids=affected_ids)
        for key, category in (("solutions", "vendor_fix"), ("workarounds", "workaround"))
        for item in _list(cna.get(key)) if _text(_dict(item).get("value"))
    )
    title = _text(cna.get("title")) or next(
        (_text(_dict(d).get("value")) for d in _list(cna.get("descriptions")) if _text(_dict(d).get("value"))), cve)
    vuln = Vulnerability(cve=cve, title=title, cwe=tuple(cwes), scores=tuple(scores),
                         product_status={k: tuple(v) for k, v in status.items()}, remediations=remediations)
    advisory = Advisory(
        id=cve, title=title, source=source, format="cve5",
        published=_text(meta.get("datePublished")),
        publisher=_text(_dict(cna.get("providerMetadata")).get("shortName")) or _text(meta.get("assignerShortName")),
        products=tuple(entries), vulnerabilities=(vuln,),
    )
    return advisory, problems


def _affected(cve: str, i: int, item: dict[str, Any], entries: list[ProductEntry], status: dict[str, list[str]],
              problems: list[Problem], source: str) -> None:
    where = f"containers.cna.affected[{i}]"
    vendor, product = _name(item.get("vendor")), _name(item.get("product"))
    cpes = [c for c in (_text(c) for c in _list(item.get("cpes"))) if c.startswith("cpe:")]
    package = _text(item.get("packageName"))
    if not product and not package and not cpes:
        problems.append(Problem(Location(source, None, where), "affected item names no product",
                                "product, packageName or cpes"))
        return
    product = product or package
    cpe = cpes[0] if cpes else ""

    def add(suffix: str, rule: str, group: str) -> None:
        pid = f"{cve}:{i}{suffix}"
        entries.append(ProductEntry(product_id=pid, vendor=vendor, product=product, version_rule=rule, cpe=cpe,
                                    full_name=f"{vendor} {product} {rule}".strip()))
        status.setdefault(group, []).append(pid)

    versions = _list(item.get("versions"))
    default = _text(item.get("defaultStatus")).lower() or "unknown"  # the schema's default
    for j, v in enumerate(versions):
        v = _dict(v)
        state = _text(v.get("status")).lower()
        if state not in _STATUS_GROUP:
            problems.append(Problem(Location(source, None, f"{where}.versions[{j}].status"),
                                    f"status {state!r} is not known", "affected, unaffected or unknown"))
            continue
        version = _text(v.get("version"))
        if not version:
            problems.append(Problem(Location(source, None, f"{where}.versions[{j}].version"),
                                    "version entry without a version", "a version (or 0 for 'from the start')"))
            continue
        rule = cve5_rule(version, _text(v.get("lessThan")), _text(v.get("lessThanOrEqual")),
                         _text(v.get("versionType")))
        add(f":{j}", rule, _STATUS_GROUP[state])
    if not versions and default in ("affected", "unknown"):
        add(":default", "vers:all/*", ProductStatus.KNOWN_AFFECTED if default == "affected"
            else ProductStatus.UNDER_INVESTIGATION)
    elif versions and default == "affected":
        # "every version not listed": a complement we do not model, so the matcher reports it as
        # possibly affected, and an asset inside a listed unaffected range is not flagged at all
        add(":default", "vers:all/*", ProductStatus.UNDER_INVESTIGATION)
