"""Match advisories to assets: findings with the reason each one holds.

Assets are indexed once by normalised (vendor, product) keys and by CPE (vendor, product); each
advisory product entry then looks its keys up, so the cost is advisories × entries × keys plus the
assets actually named, never advisories × assets. Product keys are exact (after normalisation):
two products of one vendor never meet.

Per vulnerability and asset the product entries that reach the asset are weighed:
1. an entry in an affected group (known/first/last_affected) whose rule contains the asset's
   version gives AFFECTED;
2. otherwise, an entry in a not-affected group (fixed, first_fixed, known_not_affected) whose rule
   contains the version means the asset is explicitly not affected: no finding;
3. otherwise, an affected or under_investigation entry whose rule cannot be decided (unknown
   version, prose rule, unchecked condition, different version scheme) gives POSSIBLY_AFFECTED;
4. otherwise there is no finding. Products listed only as fixed / not affected raise nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from healthswarm.inventory.advisories.products import Cpe, cpe_name_keys, parse_cpe, product_keys, vendor_keys
from healthswarm.inventory.advisories.scoring import disagreement
from healthswarm.inventory.advisories.versions import Decision, RuleKind, Verdict, parse_rule, rule_matches
from healthswarm.model import Advisory, Asset, Finding, FindingStatus, ProductEntry, ProductStatus, Vulnerability

AFFECTED_GROUPS = (ProductStatus.KNOWN_AFFECTED, ProductStatus.FIRST_AFFECTED, ProductStatus.LAST_AFFECTED)
UNCERTAIN_GROUPS = (ProductStatus.UNDER_INVESTIGATION,)
NOT_AFFECTED_GROUPS = (ProductStatus.FIXED, ProductStatus.FIRST_FIXED, ProductStatus.KNOWN_NOT_AFFECTED)
SEVERITY_ORDER = {"critical": 4, "high": 3, "medium": 2, "low": 1, "none": 0, "": -1}
_REMEDIATION_ORDER = {"vendor_fix": 0, "mitigation": 1, "workaround": 2, "none_available": 3, "no_fix_planned": 4}
_MAX_REMEDIATION = 4000
MODEL_MATCH = "vendor/model"


@dataclass
class AssetIndex:
    """Assets by normalised (vendor key, product key) and by CPE (vendor, product)."""

    by_name: dict[tuple[str, str], list[Asset]] = field(default_factory=lambda: defaultdict(list))
    by_cpe: dict[tuple[str, str], list[Asset]] = field(default_factory=lambda: defaultdict(list))
    cpes: dict[str, Cpe] = field(default_factory=dict)

    @classmethod
    def build(cls, assets: Iterable[Asset]) -> AssetIndex:
        index = cls()
        for asset in assets:
            cpe = parse_cpe(asset.cpe) if asset.cpe else None
            if cpe is not None:
                index.cpes[asset.id] = cpe
                index.by_cpe[cpe.key].append(asset)
            keys: set[tuple[str, str]] = set()
            if asset.vendor and asset.product:
                products = product_keys(asset.product, asset.vendor)
                keys.update((v, p) for v in vendor_keys(asset.vendor) for p in products)
            elif cpe is not None:
                vendor, products = cpe_name_keys(cpe)
                keys.update((vendor, p) for p in products)
            for key in keys:
                index.by_name[key].append(asset)
        return index

    def version_of(self, asset: Asset) -> str:
        """The asset's version, or the version its CPE names when the field is empty."""
        if asset.version.strip():
            return asset.version.strip()
        cpe = self.cpes.get(asset.id)
        return cpe.version if cpe is not None and cpe.has_version else ""

    def lookup(self, entry: ProductEntry) -> list[tuple[Asset, str, str]]:
        """The assets an entry names, each with how it matched and the key.

        How: "cpe", "vendor/product", or "vendor/model" when CISA put the model in the version
        field ("Point of Care handheld medical devices" / "CoaguChek XS Plus"): the asset's
        product is then that model, and every version of it is meant.
        """
        found: dict[str, tuple[Asset, str, str]] = {}
        entry_cpe = parse_cpe(entry.cpe) if entry.cpe else None
        if entry_cpe is not None:
            for asset in self.by_cpe.get(entry_cpe.key, ()):
                found.setdefault(asset.id, (asset, "cpe", f"cpe {entry_cpe.vendor}:{entry_cpe.product}"))
        name_keys: list[tuple[tuple[str, str], str]] = []
        if entry.vendor and entry.product:
            vendors = vendor_keys(entry.vendor)
            name_keys = [((v, p), "vendor/product") for v in vendors for p in product_keys(entry.product, entry.vendor)]
            if parse_rule(entry.version_rule).kind is RuleKind.TEXT:
                models = product_keys(entry.version_rule, entry.vendor) + product_keys(
                    f"{entry.product} {entry.version_rule}", entry.vendor)
                name_keys += [((v, m), MODEL_MATCH) for v in vendors for m in models]
        elif entry_cpe is not None:
            vendor, products = cpe_name_keys(entry_cpe)
            name_keys = [((vendor, p), "vendor/product") for p in products]
        for key, how in name_keys:
            for asset in self.by_name.get(key, ()):
                found.setdefault(asset.id, (asset, how, f"{key[0]} / {key[1]}"))
        return list(found.values())


def _entry_rule(entry: ProductEntry, group: str) -> str:
    """The entry's rule; CSAF first_/last_affected turn one version into a bound."""
    rule = entry.version_rule
    if not rule and entry.cpe:
        cpe = parse_cpe(entry.cpe)
        if cpe is not None and cpe.has_version:
            rule = f"vers:generic/{cpe.version}"
    parsed = parse_rule(rule)
    single = parsed.kind is RuleKind.CONSTRAINTS and len(parsed.constraints) == 1 and parsed.constraints[0].op == "="
    if single and group == ProductStatus.FIRST_AFFECTED:
        return f">= {parsed.constraints[0].version}"
    if single and group == ProductStatus.LAST_AFFECTED:
        return f"<= {parsed.constraints[0].version}"
    return rule


@dataclass
class _Candidate:
    group: str
    entry: ProductEntry
    rule: str
    matched_on: str
    key: str
    decision: Decision


def match_findings(advisories: Iterable[Advisory], assets: Iterable[Asset] | AssetIndex) -> list[Finding]:
    """Every finding the advisories raise on the assets, most severe first."""
    index = assets if isinstance(assets, AssetIndex) else AssetIndex.build(assets)
    findings: list[Finding] = []
    for advisory in advisories:
        entries = {e.product_id: e for e in advisory.products}
        reach: dict[str, list[tuple[Asset, str, str]]] = {}
        for number, vuln in enumerate(advisory.vulnerabilities, start=1):
            per_asset: dict[str, list[_Candidate]] = defaultdict(list)
            assets_by_id: dict[str, Asset] = {}
            for group in (*AFFECTED_GROUPS, *UNCERTAIN_GROUPS, *NOT_AFFECTED_GROUPS):
                for pid in vuln.product_status.get(group, ()):
                    entry = entries.get(pid)
                    if entry is None:
                        continue
                    if pid not in reach:
                        reach[pid] = index.lookup(entry)
                    rule = _entry_rule(entry, group)
                    for asset, matched_on, key in reach[pid]:
                        # a model named in the version field covers every version of that model
                        applied = "" if matched_on == MODEL_MATCH else rule
                        decision = rule_matches(applied, index.version_of(asset))
                        assets_by_id[asset.id] = asset
                        per_asset[asset.id].append(_Candidate(group, entry, applied, matched_on, key, decision))
            cve = vuln.cve or f"{advisory.id}#{number}"
            remedies: dict[str, str] = {}  # per product id: many assets share one entry
            for asset_id, candidates in per_asset.items():
                finding = _decide(advisory, vuln, cve, assets_by_id[asset_id], index, candidates, remedies)
                if finding is not None:
                    findings.append(finding)
    findings.sort(key=lambda f: (-SEVERITY_ORDER.get(f.severity, -1), -(f.cvss_score or 0), f.asset_id,
                                 f.advisory_id, f.cve))
    return findings


def _decide(advisory: Advisory, vuln: Vulnerability, cve: str, asset: Asset, index: AssetIndex,
            candidates: list[_Candidate], remedies: dict[str, str]) -> Finding | None:
    affected = [c for c in candidates if c.group in AFFECTED_GROUPS and c.decision.verdict is Verdict.AFFECTED]
    if affected:
        return _finding(advisory, vuln, cve, asset, index, affected[0], FindingStatus.AFFECTED, remedies)
    if any(c.group in NOT_AFFECTED_GROUPS and c.decision.verdict is Verdict.AFFECTED for c in candidates):
        return None  # the advisory lists this very version as fixed / not affected
    uncertain = [c for c in candidates if c.group not in NOT_AFFECTED_GROUPS and
                 (c.decision.verdict is Verdict.UNKNOWN or
                  (c.group in UNCERTAIN_GROUPS and c.decision.verdict is Verdict.AFFECTED))]
    if uncertain:
        return _finding(advisory, vuln, cve, asset, index, uncertain[0], FindingStatus.POSSIBLY_AFFECTED, remedies)
    return None


def _finding(advisory: Advisory, vuln: Vulnerability, cve: str, asset: Asset, index: AssetIndex, c: _Candidate,
             status: FindingStatus, remedies: dict[str, str]) -> Finding:
    score = vuln.best_score
    rule = parse_rule(c.rule)
    explanation = {
        "product_id": c.entry.product_id,
        "advisory_vendor": c.entry.vendor,
        "advisory_product": c.entry.product,
        "advisory_product_name": c.entry.full_name,
        "status_group": c.group,
        "version_rule": c.entry.version_rule or "(none: the whole product)",
        "rule_read_as": _describe(c.rule),
        "matched_on": c.matched_on,
        "match_key": c.key,
        "asset_vendor": asset.vendor,
        "asset_product": asset.product,
        "asset_version": index.version_of(asset) or "(unknown)",
        "decision": c.decision.how,
    }
    if c.matched_on == MODEL_MATCH:
        explanation["rule_applied"] = f"the version field names the model {c.entry.version_rule!r}: all its versions"
    elif c.rule != c.entry.version_rule and c.entry.version_rule:
        explanation["rule_applied"] = c.rule
    if rule.qualifier:
        explanation["rule_qualifier"] = rule.qualifier
    if asset.cpe:
        explanation["asset_cpe"] = asset.cpe
    if c.group in UNCERTAIN_GROUPS:
        explanation["note"] = "the advisory lists this product as under investigation"
    if score is not None and disagreement(score):
        explanation["score_note"] = disagreement(score)
    return Finding(
        asset_id=asset.id,
        advisory_id=advisory.id,
        cve=cve,
        status=status,
        cvss_score=score.base_score if score else None,
        cvss_vector=score.vector if score else "",
        cvss_version=score.version if score else "",
        severity=score.severity if score else "",
        cwe=vuln.cwe,
        remediation=remedies.get(c.entry.product_id) or remedies.setdefault(
            c.entry.product_id, _remediation(vuln, c.entry.product_id)),
        explanation=explanation,
    )


@lru_cache(maxsize=8192)
def _describe(rule: str) -> str:
    return parse_rule(rule).describe()


def _remediation(vuln: Vulnerability, product_id: str) -> str:
    relevant = [r for r in vuln.remediations if not r.product_ids or product_id in r.product_ids]
    relevant.sort(key=lambda r: _REMEDIATION_ORDER.get(r.category, 9))
    lines: list[str] = []
    for r in relevant:
        line = f"[{r.category}] {r.details}" + (f" ({r.url})" if r.url else "")
        if line not in lines:
            lines.append(line)
    text = "\n".join(lines)
    return text if len(text) <= _MAX_REMEDIATION else text[: _MAX_REMEDIATION - 1] + "…"
