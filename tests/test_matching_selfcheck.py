"""Self-check of advisory matching over every ICSMA advisory (../shared/data/csaf-icsma).

For every affected product leaf an asset is written as a person would write it: the vendor as it is
usually called ("BD" for "Becton, Dickinson and Company (BD)", no "Inc."), the product without
its model codes in parentheses and without a trailing "software", "application" or "firmware".
Each gets a version inside the leaf's range and, where the advisory leaves room, one outside.
Matching must find every inside asset and raise nothing on the outside ones, and no finding may
tie an asset to another product (a cross-product false match). The generator here is written
apart from the matcher's normaliser on purpose: it only knows what a person drops.

Run `python tests/test_matching_selfcheck.py` for the figures.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.inventory.advisories.match import AFFECTED_GROUPS
from healthswarm.inventory.advisories.products import vendor_keys
from healthswarm.inventory.advisories.versions import RuleKind, Verdict, parse_rule, rule_matches
from healthswarm.model import Advisory, Asset, ProductEntry

TRAILING = ("software", "application", "applications", "firmware", "app")
COMPANY = re.compile(r"[,\s]+(inc|incorporated|ltd|limited|llc|ag|gmbh|co|corp|corporation|oy|plc|s\.a|n\.v)\.?$",
                     re.IGNORECASE)


def person_product(name: str) -> str:
    """'Valleylab FT10 Energy Platform (VLFT10GEN) software' -> 'Valleylab FT10 Energy Platform'."""
    words = re.sub(r"\([^)]*\)", " ", name).split()
    while len(words) > 1 and words[-1].lower().strip(".,:;") in TRAILING:
        words.pop()
    return " ".join(words)


def person_vendor(vendor: str) -> str:
    """'Becton, Dickinson and Company (BD)' -> 'BD'; 'Natus Medical, Inc.' -> 'Natus Medical'."""
    short = re.search(r"\(([A-Za-z&.\s]{2,12})\)\s*$", vendor)
    if short:
        return short.group(1).strip()
    text = vendor.strip()
    while COMPANY.search(text):
        text = COMPANY.sub("", text).strip()
    return text or vendor


def same_name(a: str, b: str) -> bool:
    """The ground truth: two names a person would read as the same (case, spacing, punctuation, and
    word order: "CareLink 2090 Programmer" is the "2090 CareLink Programmer")."""
    if re.sub(r"[\W_]+", "", a.lower()) == re.sub(r"[\W_]+", "", b.lower()):
        return True
    return sorted(re.findall(r"[a-z0-9]+", a.lower())) == sorted(re.findall(r"[a-z0-9]+", b.lower()))


def _bump(text: str, step: int) -> str | None:
    """The version with its last number moved by `step` ('4.0.0', +1 -> '4.0.1'); None if it has none."""
    numbers = list(re.finditer(r"\d+", text))
    for m in reversed(numbers):
        value = int(m.group()) + step
        if value >= 0:
            return f"{text[:m.start()]}{value:0{len(m.group())}d}{text[m.end():]}"
    return None


def _major(text: str) -> str | None:
    m = re.search(r"\d+", text)
    return None if m is None else f"{text[:m.start()]}{int(m.group()) + 100}{text[m.end():]}"


def candidate_versions(rule_text: str) -> list[str]:
    rule = parse_rule(rule_text)
    out: list[str] = []
    for c in rule.constraints:
        v = c.version.text
        out += [v, *(x for x in (_bump(v, -1), _bump(v, 1), _major(v)) if x)]
    return [*out, "0.1", "1.0", "1.0.0", "99.0"]


@dataclass
class Leaf:
    advisory: Advisory
    entry: ProductEntry
    inside: str | None = None
    outside: str | None = None
    # the product name the asset carries: the product, or the model CISA wrote in the version field
    name: str = ""


@dataclass
class Figures:
    leaves: int = 0
    inside_total: int = 0
    inside_found: int = 0
    outside_total: int = 0
    outside_false: int = 0
    cross_false: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.leaves} affected product leaves in 144 advisories: inside found {self.inside_found}/"
                f"{self.inside_total}; outside false matches {self.outside_false}/{self.outside_total}; "
                f"cross-product false matches {self.cross_false}; leaves by rule kind {dict(self.by_rule)}")


def _leaves(advisories: list[Advisory]) -> list[Leaf]:
    leaves: list[Leaf] = []
    for advisory in advisories:
        entries = {e.product_id: e for e in advisory.products}
        affected: dict[str, ProductEntry] = {}
        for vuln in advisory.vulnerabilities:
            for group in AFFECTED_GROUPS:
                for pid in vuln.product_status.get(group, ()):
                    if pid in entries and entries[pid].vendor and entries[pid].product:
                        affected[pid] = entries[pid]
        for entry in affected.values():
            leaf = Leaf(advisory, entry, name=person_product(entry.product))
            kind = parse_rule(entry.version_rule).kind
            if kind is RuleKind.TEXT:
                leaf.name = person_product(entry.version_rule)  # the model is the product a person names
                leaf.inside = "1.0"
            elif kind is RuleKind.CONSTRAINTS:
                leaf.inside = next((v for v in candidate_versions(entry.version_rule)
                                    if rule_matches(entry.version_rule, v).verdict is not Verdict.NOT_AFFECTED), None)
                twins = [e for e in affected.values() if same_name(person_product(e.product), leaf.name)]
                if all(parse_rule(t.version_rule).kind is RuleKind.CONSTRAINTS for t in twins):
                    leaf.outside = next((v for v in candidate_versions(entry.version_rule)
                                         if all(rule_matches(t.version_rule, v).verdict is Verdict.NOT_AFFECTED
                                                for t in twins)), None)
            else:  # all versions, or a rule about dates: any version is inside, none outside
                leaf.inside = "1.0"
            leaves.append(leaf)
    return leaves


def _without_vendor(name: str, vendor: str) -> str:
    """'BD Alaris Systems Manager' under BD reads 'Alaris Systems Manager'."""
    short = person_vendor(vendor)
    if name.lower().startswith(short.lower() + " ") and len(name) > len(short) + 1:
        return name[len(short) + 1:]
    return name


def _right(finding_entry: ProductEntry, leaf: Leaf, written: str) -> bool:
    """Whether a finding's product is the product the asset was made from, or the product its name
    as written literally is (same vendor, same name as read, a leading vendor name aside)."""
    if not set(vendor_keys(finding_entry.vendor)) & set(vendor_keys(leaf.entry.vendor)):
        return False
    names = [person_product(finding_entry.product)]
    if parse_rule(finding_entry.version_rule).kind is RuleKind.TEXT:
        names.append(person_product(finding_entry.version_rule))
    mine = {_without_vendor(leaf.name, leaf.entry.vendor), _without_vendor(written, leaf.entry.vendor)}
    return any(same_name(_without_vendor(n, finding_entry.vendor), m) for n in names for m in mine)


def typed(name: str) -> str:
    """As typed in a hurry: lower case, hyphens and slashes as spaces ('MMT-522' -> 'mmt 522')."""
    return " ".join(re.sub(r"[-/]", " ", name.lower()).split())


def short(name: str) -> str:
    """The product line left off: 'Valleylab FT10 Energy Platform' -> 'FT10 Energy Platform'."""
    words = name.split()
    return " ".join(words[1:]) if len(words) >= 3 else name


VARIANTS = {"as a person writes it": lambda name: name, "typed": typed, "product line left off": short}


def self_check(folder: Path, variant: str = "as a person writes it") -> Figures:
    advisories, problems = load_advisories([folder])
    assert problems == []
    leaves = _leaves(advisories)
    by_id = {a.id: {e.product_id: e for e in a.products} for a in advisories}
    assets: list[Asset] = []
    owner: dict[str, tuple[Leaf, str]] = {}
    figures = Figures(leaves=len(leaves))
    for i, leaf in enumerate(leaves):
        figures.by_rule[str(parse_rule(leaf.entry.version_rule).kind)] += 1
        for side, version in (("inside", leaf.inside), ("outside", leaf.outside)):
            if version is None:
                continue
            asset_id = f"{side}-{i}"
            assets.append(Asset(id=asset_id, organisation="h", zone="z", kind="medical-device", name=asset_id,
                                vendor=person_vendor(leaf.entry.vendor), product=VARIANTS[variant](leaf.name),
                                version=version))
            owner[asset_id] = (leaf, side)
    findings = match_findings(advisories, assets)
    hits: dict[str, list] = {}
    for f in findings:
        hits.setdefault(f.asset_id, []).append(f)
    for asset_id, (leaf, side) in owner.items():
        written = VARIANTS[variant](leaf.name)
        own = [f for f in hits.get(asset_id, []) if f.advisory_id == leaf.advisory.id
               and _right(by_id[f.advisory_id][f.explanation["product_id"]], leaf, written)]
        wrong = {(f.advisory_id, f.explanation["product_id"]) for f in hits.get(asset_id, [])
                 if not _right(by_id[f.advisory_id][f.explanation["product_id"]], leaf, written)}
        figures.cross_false += len(wrong)
        figures.false += [f"{asset_id} {leaf.entry.vendor} / {leaf.name} -> {a} {pid} "
                          f"{by_id[a][pid].product!r}" for a, pid in sorted(wrong)]
        what = (f"{leaf.advisory.id} {leaf.entry.vendor!r} / {leaf.entry.product!r} rule "
                f"{leaf.entry.version_rule!r} as {leaf.name!r}")
        if side == "inside":
            figures.inside_total += 1
            if own:
                figures.inside_found += 1
            else:
                figures.missed.append(f"{what} @ {leaf.inside}")
        else:
            figures.outside_total += 1
            if own:
                figures.outside_false += 1
                figures.false.append(f"outside {what} @ {leaf.outside}")
    return figures


@cache
def figures(variant: str = "as a person writes it") -> Figures:
    from conftest import shared

    return self_check(shared("csaf-icsma"), variant)


@pytest.mark.parametrize("variant", ["as a person writes it", "typed"])
def test_every_inside_pair_is_found(variant: str) -> None:
    f = figures(variant)
    assert f.inside_total >= 550  # every affected leaf of the 144 advisories gets an inside asset
    assert f.inside_found == f.inside_total, "\n".join(f.missed)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_outside_pair_and_no_other_product_is_matched(variant: str) -> None:
    f = figures(variant)
    assert f.outside_total >= 200
    assert (f.outside_false, f.cross_false) == (0, 0), "\n".join(f.false)


def test_a_left_off_product_line_is_still_found_where_it_names_one_product() -> None:
    # "FT10 Energy Platform": the word-subset match, allowed only when the words name one product
    f = figures("product line left off")
    assert f.inside_found >= 0.5 * f.inside_total


def test_person_names() -> None:
    assert person_product("Valleylab FT10 Energy Platform (VLFT10GEN) software") == "Valleylab FT10 Energy Platform"
    assert person_product("MyCareLink Smart Monitor Application") == "MyCareLink Smart Monitor"
    assert person_vendor("Becton, Dickinson and Company (BD)") == "BD"
    assert person_vendor("Natus Medical, Inc.") == "Natus Medical"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / \
        "csaf-icsma"
    for name in VARIANTS:
        result = self_check(folder, name)
        print(f"{name}: {result.line()}")
        for line in result.missed[:10]:
            print("  missed:", line)
        for line in result.false[:40]:
            print("  false:", line)
