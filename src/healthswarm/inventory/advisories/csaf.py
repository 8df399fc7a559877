"""CSAF 2.0 advisories (OASIS CSAF v2.0, category csaf_security_advisory / csaf_vex / ...) into `Advisory`.

Read: `document` (tracking id, title, publisher, dates), the `product_tree` (branches vendor →
product_family/product_name → product_version / product_version_range, `full_product_names`,
`relationships`, `product_groups`) and each vulnerability's cve, cwe, CVSS scores (`scores` in
2.0, `metrics` in 2.1), product_status groups and remediations. Everything else is skipped.

A document that lacks what identifies it raises InputError; a flaw inside an otherwise usable
document (a bad CVSS vector, a branch without a name) is returned as a Problem and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories.jsonvalues import as_dict as _dict
from healthswarm.inventory.advisories.jsonvalues import as_list as _list
from healthswarm.inventory.advisories.jsonvalues import text as _text
from healthswarm.inventory.advisories.scoring import ScoreError, score_vector
from healthswarm.model import Advisory, ProductEntry, Remediation, Score, Vulnerability

_VERSION_CATEGORIES = ("product_version", "product_version_range")
_NAME_CATEGORIES = ("product_name", "product_family")


def is_csaf(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("document"), dict) and "csaf_version" in doc["document"]


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, field: str, message: str, expected: str | None = None) -> None:
        self.problems.append(Problem(Location(self.source, None, field), message, expected))


def parse_csaf(doc: dict[str, Any], source: str) -> tuple[Advisory, list[Problem]]:
    """One CSAF document as an Advisory, with the problems found in its parts."""
    reader = _Reader(source)
    document = _dict(doc.get("document"))
    version = _text(document.get("csaf_version"))
    if not version.startswith("2."):
        raise InputError(Problem(Location(source, None, "document.csaf_version"),
                                 f"CSAF version {version!r} is not supported", "2.0"))
    tracking = _dict(document.get("tracking"))
    advisory_id = _text(tracking.get("id"))
    if not advisory_id:
        raise InputError(Problem(Location(source, None, "document.tracking.id"),
                                 "the advisory has no tracking id", "a non-empty document.tracking.id"))
    products = _products(_dict(doc.get("product_tree")), reader)
    groups = {
        _text(g.get("group_id")): tuple(_text(p) for p in _list(g.get("product_ids")))
        for g in _list(_dict(doc.get("product_tree")).get("product_groups")) if isinstance(g, dict)
    }
    vulns = tuple(
        _vulnerability(v, f"vulnerabilities[{i}]", groups, reader)
        for i, v in enumerate(_list(doc.get("vulnerabilities"))) if isinstance(v, dict)
    )
    advisory = Advisory(
        id=advisory_id,
        title=_text(document.get("title")) or advisory_id,
        source=source,
        format="csaf",
        published=_text(tracking.get("initial_release_date")),
        publisher=_text(_dict(document.get("publisher")).get("name")),
        products=tuple(products.values()),
        vulnerabilities=vulns,
    )
    return advisory, reader.problems


def _products(tree: dict[str, Any], reader: _Reader) -> dict[str, ProductEntry]:
    entries: dict[str, ProductEntry] = {}
    for entry in _walk(_list(tree.get("branches")), "product_tree.branches", {}, reader):
        entries.setdefault(entry.product_id, entry)
    for i, fpn in enumerate(_list(tree.get("full_product_names"))):
        entry = _full_product_name(fpn, f"product_tree.full_product_names[{i}]", reader)
        if entry:
            entries.setdefault(entry.product_id, entry)
    for i, rel in enumerate(_list(tree.get("relationships"))):
        where = f"product_tree.relationships[{i}]"
        rel = _dict(rel)
        fpn = _dict(rel.get("full_product_name"))
        pid = _text(fpn.get("product_id"))
        component = entries.get(_text(rel.get("product_reference")))
        if not pid:
            reader.problem(where, "relationship without full_product_name.product_id")
            continue
        if component is None:
            # the component is unknown here: keep the name, so a CPE/helper may still match it
            entry = _full_product_name(fpn, where + ".full_product_name", reader)
            if entry:
                entries.setdefault(pid, entry)
            continue
        entries.setdefault(pid, ProductEntry(
            product_id=pid, vendor=component.vendor, product=component.product,
            version_rule=component.version_rule, cpe=component.cpe, purl=component.purl,
            full_name=_text(fpn.get("name")) or component.full_name, aliases=component.aliases,
        ))
    return entries


_ALIAS_FIELDS = (("model_numbers", "model_number"), ("skus", "sku"))


def _helper(product: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """CPE, purl and the other identifiers ("model_number:…", "sku:…") of a product_identification_helper."""
    helper = _dict(product.get("product_identification_helper"))
    aliases = [f"{kind}:{_text(value)}" for field, kind in _ALIAS_FIELDS for value in _list(helper.get(field))
               if _text(value)]
    return _text(helper.get("cpe")), _text(helper.get("purl")), tuple(dict.fromkeys(aliases))


def _full_product_name(fpn: Any, where: str, reader: _Reader) -> ProductEntry | None:
    fpn = _dict(fpn)
    pid, name = _text(fpn.get("product_id")), _text(fpn.get("name"))
    if not pid:
        reader.problem(where, "full_product_name without product_id")
        return None
    cpe, purl, aliases = _helper(fpn)
    # no branch tells the vendor: only a CPE or purl can match this product to assets
    return ProductEntry(product_id=pid, vendor="", product=name, cpe=cpe, purl=purl, full_name=name, aliases=aliases)


def _walk(branches: list[Any], where: str, path: dict[str, str], reader: _Reader) -> Iterator[ProductEntry]:
    for i, branch in enumerate(branches):
        here = f"{where}[{i}]"
        if not isinstance(branch, dict):
            reader.problem(here, "a branch is not an object", "an object with category and name")
            continue
        category, name = _text(branch.get("category")), _text(branch.get("name"))
        step = dict(path)
        if category == "vendor":
            step["vendor"] = name
        elif category in _NAME_CATEGORIES:
            # a product_name under a product_family is the more precise name; keep the deepest
            step["product"] = name if category == "product_name" or "product" not in step else step["product"]
        elif category in _VERSION_CATEGORIES:
            step["version"] = name
        product = branch.get("product")
        if isinstance(product, dict):
            pid = _text(product.get("product_id"))
            if not pid:
                reader.problem(here + ".product", "product without product_id")
            else:
                cpe, purl, aliases = _helper(product)
                yield ProductEntry(
                    product_id=pid,
                    vendor=step.get("vendor", ""),
                    product=step.get("product", "") or (name if category in _NAME_CATEGORIES else ""),
                    version_rule=step.get("version", ""),
                    cpe=cpe,
                    purl=purl,
                    full_name=_text(product.get("name")),
                    aliases=aliases,
                )
        yield from _walk(_list(branch.get("branches")), here + ".branches", step, reader)


def _vulnerability(v: dict[str, Any], where: str, groups: dict[str, tuple[str, ...]], reader: _Reader) -> Vulnerability:
    cwes: list[str] = []
    for cwe in [v.get("cwe"), *_list(v.get("cwes"))]:
        cwe_id = _text(_dict(cwe).get("id"))
        if cwe_id and cwe_id not in cwes:
            cwes.append(cwe_id)
    scores: list[Score] = []
    # CSAF 2.0: scores[].cvss_v2/cvss_v3; CSAF 2.1: metrics[].content.cvss_v2/v3/v4
    score_blocks = [(f"{where}.scores[{i}]", _dict(s)) for i, s in enumerate(_list(v.get("scores")))]
    score_blocks += [(f"{where}.metrics[{i}].content", _dict(_dict(m).get("content")))
                     for i, m in enumerate(_list(v.get("metrics")))]
    for block_where, block in score_blocks:
        for key in ("cvss_v4", "cvss_v3", "cvss_v2"):
            cvss = block.get(key)
            if not isinstance(cvss, dict):
                continue
            stated = cvss.get("baseScore")
            try:
                score = score_vector(_text(cvss.get("vectorString")), _text(cvss.get("version")),
                                     float(stated) if isinstance(stated, int | float) else None)
            except ScoreError as exc:
                reader.problem(f"{block_where}.{key}.vectorString", str(exc), "a valid CVSS vector")
                continue
            if score not in scores:
                scores.append(score)
    status = {
        group: tuple(_text(p) for p in _list(ids) if _text(p))
        for group, ids in _dict(v.get("product_status")).items()
    }
    remediations = []
    for r in _list(v.get("remediations")):
        r = _dict(r)
        ids = [_text(p) for p in _list(r.get("product_ids"))]
        for gid in _list(r.get("group_ids")):
            ids.extend(groups.get(_text(gid), ()))
        remediations.append(Remediation(
            category=_text(r.get("category")), details=_text(r.get("details")),
            product_ids=tuple(dict.fromkeys(p for p in ids if p)), url=_text(r.get("url")),
        ))
    return Vulnerability(
        cve=_text(v.get("cve")),
        title=_text(v.get("title")),
        cwe=tuple(cwes),
        scores=tuple(scores),
        product_status=status,
        remediations=tuple(remediations),
    )
