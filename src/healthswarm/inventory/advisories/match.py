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

from healthswarm.inventory.advisories.products import (
    Cpe,
    NameForm,
    compact,
    core_words,
    cpe_name_keys,
    model_codes,
    name_forms,
    parse_cpe,
    vendor_keys,
)
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


ASSET_MODEL_ATTRIBUTES = ("model", "model_number", "model-number", "sku", "part_number", "part-number")
SUBSET_MATCH = "vendor/product (the asset's words name one product)"


@dataclass(frozen=True, slots=True)
class Reach:
    """An asset an advisory product entry names, and why."""

    asset: Asset
    matched_on: str  # "cpe", "vendor/product", "vendor/model", "alias (model number)", SUBSET_MATCH, ...
    key: str  # "medtronic / valleylab ft10 energy platform"
    # which name forms met: "advisory '…' read without (VLFT10GEN), without 'software' = asset '…' as written"
    how: str = ""


@dataclass
class AssetIndex:
    """Assets by normalised (vendor key, name form), by model code and by CPE (vendor, product).

    Name forms are exact after normalisation (`products.name_forms`); a looser *word-subset* match
    ("FT10 Energy Platform" for "Valleylab FT10 Energy Platform (VLFT10GEN) software") is allowed
    only when `prepare` has seen the advisories and the asset's words name exactly one of the
    vendor's products there (see `_subset_targets`).
    """

    by_name: dict[tuple[str, str], list[tuple[Asset, NameForm]]] = field(default_factory=lambda: defaultdict(list))
    by_code: dict[tuple[str, str], list[tuple[Asset, str]]] = field(default_factory=lambda: defaultdict(list))
    by_cpe: dict[tuple[str, str], list[Asset]] = field(default_factory=lambda: defaultdict(list))
    cpes: dict[str, Cpe] = field(default_factory=dict)
    # (vendor key, the product's core words) -> assets whose words name only that product
    by_subset: dict[tuple[str, frozenset[str]], list[tuple[Asset, str]]] = field(
        default_factory=lambda: defaultdict(list))
    _words: dict[tuple[str, frozenset[str]], list[tuple[Asset, str]]] = field(
        default_factory=lambda: defaultdict(list))
    _prepared: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, assets: Iterable[Asset]) -> AssetIndex:
        index = cls()
        # fleets repeat a few (vendor, product) pairs: read each pair once
        named: dict[tuple[str, str], tuple[tuple[str, ...], dict[tuple[str, str], NameForm], frozenset[str]]] = {}
        for asset in assets:
            cpe = parse_cpe(asset.cpe) if asset.cpe else None
            if cpe is not None:
                index.cpes[asset.id] = cpe
                index.by_cpe[cpe.key].append(asset)
            entries: dict[tuple[str, str], NameForm] = {}
            vendors: tuple[str, ...] = ()
            if asset.vendor and asset.product:
                pair = (asset.vendor, asset.product)
                if pair not in named:
                    forms = name_forms(asset.product, asset.vendor)
                    vendor_ids = vendor_keys(asset.vendor)
                    named[pair] = (vendor_ids, {(v, form.key): form for v in vendor_ids for form in reversed(forms)},
                                   frozenset(forms[-1].text.split()) if forms else frozenset())
                vendors, entries, words = named[pair]
                if words:
                    for v in vendors:
                        index._words[(v, words)].append((asset, asset.product))
            elif cpe is not None:
                vendor, products = cpe_name_keys(cpe)
                vendors = (vendor,)
                for p in products:
                    entries.setdefault((vendor, p.replace(" ", "")), NameForm(p.replace(" ", ""), p, "from its CPE"))
            for key, form in entries.items():
                index.by_name[key].append((asset, form))
            codes = {compact(asset.product): "product"} if asset.product else {}
            for attribute in ASSET_MODEL_ATTRIBUTES if asset.attributes else ():
                value = str(asset.attributes.get(attribute, "") or "")
                if value and compact(value):
                    codes.setdefault(compact(value), f"attributes.{attribute}")
            for v in vendors:
                for code, where in codes.items():
                    index.by_code[(v, code)].append((asset, where))
        return index

    def prepare(self, advisories: Iterable[Advisory]) -> None:
        """Learn each vendor's product names from the advisories, for the word-subset match."""
        corpus: dict[str, set[frozenset[str]]] = defaultdict(set)
        for advisory in advisories:
            for entry in advisory.products:
                if entry.vendor and entry.product:
                    words = core_words(entry.product, entry.vendor)
                    for v in vendor_keys(entry.vendor):
                        if words:
                            corpus[v].add(words)
        fingerprint = repr(sorted((v, sorted(map(sorted, names))) for v, names in corpus.items()))
        if fingerprint in self._prepared:
            return
        self._prepared = {fingerprint}
        self.by_subset.clear()
        for (vendor, words), assets in self._words.items():
            target = _subset_target(words, corpus.get(vendor, set()))
            if target is not None:
                self.by_subset[(vendor, target)].extend(assets)

    def version_of(self, asset: Asset) -> str:
        """The asset's version, or the version its CPE names when the field is empty."""
        if asset.version.strip():
            return asset.version.strip()
        cpe = self.cpes.get(asset.id)
        return cpe.version if cpe is not None and cpe.has_version else ""

    def lookup(self, entry: ProductEntry) -> list[tuple[Asset, str, str]]:
        """The assets an entry names, each with how it matched and the key (see `reach`)."""
        return [(r.asset, r.matched_on, r.key) for r in self.reach(entry)]

    def reach(self, entry: ProductEntry) -> list[Reach]:
        """The assets an entry names, each with how it matched, strongest way first.

        How: "cpe"; "vendor/product" (a name form of the entry equals one of the asset's);
        "vendor/model" when CISA put the model in the version field ("Point of Care handheld
        medical devices" / "CoaguChek XS Plus": the asset's product is then that model, and every
        version of it is meant); "alias (…)" when the asset's product or model attribute is a model
        number, SKU or parenthesised model code of the entry; and the word-subset match.
        """
        found: dict[str, Reach] = {}
        entry_cpe = parse_cpe(entry.cpe) if entry.cpe else None
        if entry_cpe is not None:
            for asset in self.by_cpe.get(entry_cpe.key, ()):
                found.setdefault(asset.id, Reach(asset, "cpe", f"cpe {entry_cpe.vendor}:{entry_cpe.product}",
                                                 f"the asset's CPE names {entry_cpe.vendor}:{entry_cpe.product}"))
        if entry.vendor and entry.product:
            vendors = vendor_keys(entry.vendor)
            forms = name_forms(entry.product, entry.vendor)
            for v in vendors:
                for form in forms:
                    for asset, asset_form in self.by_name.get((v, form.key), ()):
                        found.setdefault(asset.id, Reach(
                            asset, "vendor/product", f"{v} / {form.text}",
                            f"advisory name {entry.product!r} read {form.how} = asset name {asset.product!r} "
                            f"read {asset_form.how}"))
            if parse_rule(entry.version_rule).kind is RuleKind.TEXT:
                for model_name in (entry.version_rule, f"{entry.product} {entry.version_rule}"):
                    for form in name_forms(model_name, entry.vendor):
                        for v in vendors:
                            for asset, asset_form in self.by_name.get((v, form.key), ()):
                                found.setdefault(asset.id, Reach(
                                    asset, MODEL_MATCH, f"{v} / {form.text}",
                                    f"the advisory's version field names the model {entry.version_rule!r}, read "
                                    f"{form.how} = asset name {asset.product!r} read {asset_form.how}"))
            for kind, alias in _aliases(entry):
                for v in vendors:
                    for asset, where in self.by_code.get((v, compact(alias)), ()):
                        found.setdefault(asset.id, Reach(
                            asset, f"alias ({kind})", f"{v} / {alias}",
                            f"the advisory's {kind} {alias!r} = the asset's {where} "
                            f"{asset.product if where == 'product' else asset.attributes.get(where[11:], '')!r}"))
            words = core_words(entry.product, entry.vendor)
            for v in vendors:
                for asset, product in self.by_subset.get((v, words), ()):
                    found.setdefault(asset.id, Reach(
                        asset, SUBSET_MATCH, f"{v} / {' '.join(sorted(words))}",
                        f"every word of the asset name {product!r} is in the advisory name {entry.product!r}, "
                        f"and of {v}'s products in the advisories only this one has them all"))
        elif entry_cpe is not None:
            vendor, products = cpe_name_keys(entry_cpe)
            for p in products:
                for asset, asset_form in self.by_name.get((vendor, p.replace(" ", "")), ()):
                    found.setdefault(asset.id, Reach(asset, "vendor/product", f"{vendor} / {p}",
                                                     f"the advisory's CPE product {p!r} = asset name "
                                                     f"{asset.product!r} read {asset_form.how}"))
        return list(found.values())


def _aliases(entry: ProductEntry) -> list[tuple[str, str]]:
    """(kind, alias): the CSAF product_identification_helper's model numbers and SKUs, and the
    model codes the product name gives in parentheses."""
    out = [tuple(a.split(":", 1)) for a in entry.aliases if ":" in a]
    out += [("model code in the name", code) for code in model_codes(entry.product)]
    return [(k.replace("_", " "), v) for k, v in out if compact(v)]  # type: ignore[misc]


def _subset_target(words: frozenset[str], names: set[frozenset[str]]) -> frozenset[str] | None:
    """The one product name (core words) of a vendor that the asset's words name, or None.

    The asset's words must all be in that name and in no other of the vendor's names ("Energy
    Platform" names both the FX8 and the FT10 platform: nothing), one of them must be in no other
    name of the vendor (a distinctive word such as "FT10"), they must be at least half the name's
    words, and two words or one with a digit ("T34"): a bare "Exchange" names nothing.
    """
    if not words or (len(words) < 2 and not any(c.isdigit() for w in words for c in w)):
        return None
    holders = [n for n in names if words <= n]
    if len(holders) != 1 or holders[0] == words:
        return None  # none, several, or the same name (an exact match already)
    target = holders[0]
    if 2 * len(words) < len(target):
        return None
    others = [n for n in names if n != target]
    if not any(all(w not in n for n in others) for w in words):
        return None
    return target


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
    how: str = ""


def match_findings(advisories: Iterable[Advisory], assets: Iterable[Asset] | AssetIndex) -> list[Finding]:
    """Every finding the advisories raise on the assets, most severe first."""
    advisories = list(advisories)
    index = assets if isinstance(assets, AssetIndex) else AssetIndex.build(assets)
    index.prepare(advisories)
    findings: list[Finding] = []
    for advisory in advisories:
        entries = {e.product_id: e for e in advisory.products}
        reach: dict[str, list[Reach]] = {}
        for number, vuln in enumerate(advisory.vulnerabilities, start=1):
            per_asset: dict[str, list[_Candidate]] = defaultdict(list)
            assets_by_id: dict[str, Asset] = {}
            for group in (*AFFECTED_GROUPS, *UNCERTAIN_GROUPS, *NOT_AFFECTED_GROUPS):
                for pid in vuln.product_status.get(group, ()):
                    entry = entries.get(pid)
                    if entry is None:
                        continue
                    if pid not in reach:
                        reach[pid] = index.reach(entry)
                    rule = _entry_rule(entry, group)
                    for r in reach[pid]:
                        # a model named in the version field covers every version of that model
                        applied = "" if r.matched_on == MODEL_MATCH else rule
                        decision = rule_matches(applied, index.version_of(r.asset))
                        assets_by_id[r.asset.id] = r.asset
                        per_asset[r.asset.id].append(_Candidate(group, entry, applied, r.matched_on, r.key,
                                                                decision, r.how))
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
        "name_match": c.how,
        "asset_vendor": asset.vendor,
        "asset_product": asset.product,
        "asset_version": index.version_of(asset) or "(unknown)",
        "decision": c.decision.how,
    }
    explanation["why"] = (f"{c.matched_on}: {c.how or c.key}; version rule {c.entry.version_rule or 'all versions'!r}"
                          f" read as {explanation['rule_read_as']}: {c.decision.how}")
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
