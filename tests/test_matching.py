"""Matching advisories to assets: names and aliases, version rules, possibly-affected, explanations, scale."""

from __future__ import annotations

from functools import cache

import pytest

from conftest import shared
from healthswarm.inventory.advisories import AssetIndex, load_advisories, match_findings
from healthswarm.inventory.advisories.loader import parse_document
from healthswarm.inventory.advisories.products import parse_cpe, product_keys, vendor_key, vendor_keys
from healthswarm.model import Advisory, Asset, FindingStatus
from test_advisories import csaf_document, cve5_record


@cache
def icsma() -> tuple[Advisory, ...]:
    advisories, problems = load_advisories([shared("csaf-icsma")])
    assert problems == []
    return tuple(advisories)


def asset(asset_id: str, vendor: str, product: str, version: str = "", kind: str = "infusion-pump",
          cpe: str = "") -> Asset:
    return Asset(id=asset_id, organisation="h1", zone="iomt", kind=kind, name=asset_id, vendor=vendor,
                 product=product, version=version, cpe=cpe)


def findings_of(assets: list[Asset], advisories: tuple[Advisory, ...] | list[Advisory] | None = None):  # type: ignore[no-untyped-def]
    return match_findings(icsma() if advisories is None else advisories, assets)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Becton, Dickinson and Company (BD)", "bd"),
        ("BD", "bd"),
        ("Becton Dickinson", "bd"),
        ("GE Healthcare", "ge"),
        ("GE", "ge"),
        ("Koninklijke Philips N.V.", "philips"),
        ("Phillips", "philips"),
        ("Philips Healthcare", "philips"),
        ("Dräger", "draeger"),
        ("Drägerwerk AG & Co. KGaA", "draeger"),
        ("St. Jude Medical", "abbott"),
        ("Welch Allyn", "baxter"),
        ("Hillrom", "baxter"),
        ("Natus Medical, Inc.", "natus"),
        ("Medtronic ", "medtronic"),
        ("Smiths Medical", "smiths medical"),
        ("SOOIL Developments Co, Ltd.", "sooil"),
        ("Innokas YhtymÃ¤ Oy", "innokas"),
        ("Acme™ Corporation", "acme"),
    ],
)
def test_vendor_keys(name: str, key: str) -> None:
    assert vendor_key(name) == key or key in vendor_keys(name)


def test_joint_vendors_name_each_part() -> None:
    assert set(vendor_keys("Silex Technology and GE Healthcare")) >= {"silex", "ge"}
    assert set(vendor_keys("Hillrom and ELI, Baxter International Inc.")) >= {"baxter", "eli"}
    assert vendor_keys("Becton, Dickinson and Company (BD)") == ("bd",)


def test_product_keys_drop_vendor_prefix_and_asides_only() -> None:
    keys = product_keys("BD Pyxis MedStation ES", "Becton, Dickinson and Company (BD)")
    assert "pyxis medstation es" in keys and "bd pyxis medstation es" in keys
    keys = product_keys("Welch Allyn Connex Spot Monitor (CSM)", "Baxter")
    assert "connex spot monitor" in keys
    assert "connex spot" not in keys and "csm" not in keys


def test_cpe_parsing() -> None:
    cpe = parse_cpe(r"cpe:2.3:h:example\:co:pump_x:2.1:*:*:*:*:*:*:*")
    assert cpe is not None and (cpe.vendor, cpe.product, cpe.version) == ("example:co", "pump_x", "2.1")
    assert parse_cpe("cpe:/h:philips:intellivue_mx40:b.06") is not None
    assert parse_cpe("not a cpe") is None and parse_cpe("cpe:2.3:x:a:b") is None


def test_no_false_match_across_products_of_one_vendor() -> None:
    pump_8015 = asset("pump-8015", "BD", "Alaris 8015 PC unit", "9.7")
    pump_8000 = asset("pump-8000", "BD", "Alaris 8000 PC unit", "9.7")
    syringe = asset("syringe", "BD", "Alaris Syringe Module", "9.7")
    found = findings_of([pump_8015, pump_8000, syringe])
    by_asset: dict[str, set[str]] = {}
    for f in found:
        by_asset.setdefault(f.asset_id, set()).add(f.advisory_id)
    assert by_asset == {"pump-8015": {"ICSMA-17-017-02"}, "pump-8000": {"ICSMA-17-017-01"}}
    # Medtronic has dozens of products across the advisories; one pump model meets only its own
    minimed = findings_of([asset("mm640", "Medtronic", "MiniMed 640G", "MMT-1711")])
    assert {f.advisory_id for f in minimed} == {"ICSMA-22-263-01"}
    assert not findings_of([asset("mm630", "Medtronic", "MiniMed 630G", "MMT-1711")])


def test_aliases_match_the_same_advisories() -> None:
    spellings = [("BD", "Alaris 8015 PC unit"), ("Becton Dickinson", "Alaris 8015 PC unit"),
                 ("Becton, Dickinson and Company", "Alaris 8015 PC Unit"), ("BD", "BD Alaris 8015 PC unit")]
    results = [{(f.advisory_id, f.cve) for f in findings_of([asset(f"p{i}", v, p, "9.7")])}
               for i, (v, p) in enumerate(spellings)]
    assert results[0] and all(r == results[0] for r in results)
    # Welch Allyn (Hillrom, now Baxter): advisories name it under Hillrom and under Baxter
    csm = findings_of([asset("csm", "Welch Allyn", "Connex Spot Monitor", "1.40", kind="patient-monitor")])
    assert {f.advisory_id for f in csm} == {"ICSMA-21-152-01", "ICSMA-24-151-02"}
    assert all(f.explanation["matched_on"] == "vendor/product" for f in csm)


def test_version_rules_decide() -> None:
    t1 = findings_of([asset("t1-old", "Hamilton Medical AG", "T1 Ventilator", "2.2.3", kind="ventilator"),
                      asset("t1-new", "Hamilton Medical", "T1 Ventilator", "2.2.4", kind="ventilator")])
    assert {f.asset_id for f in t1} == {"t1-old"}
    assert all(f.status is FindingStatus.AFFECTED for f in t1)
    mx40 = findings_of([asset("mx40", "Philips", "IntelliVue MX40 Patient Worn Monitor", "B.06.10",
                              kind="patient-monitor"),
                        asset("mx40-fixed", "Philips", "IntelliVue MX40 Patient Worn Monitor", "B.06.18",
                              kind="patient-monitor")])
    assert {f.asset_id for f in mx40} == {"mx40"}


def test_unknown_version_is_possibly_affected_with_explanation() -> None:
    found = findings_of([asset("t1", "Hamilton Medical", "T1 Ventilator", "", kind="ventilator")])
    assert found and all(f.status is FindingStatus.POSSIBLY_AFFECTED for f in found)
    e = found[0].explanation
    assert e["asset_version"] == "(unknown)"
    assert e["version_rule"] == "<= 2.2.3"
    assert "unknown" in e["decision"]
    # a version of another scheme is not guessed either
    scheme = findings_of([asset("mx40", "Philips", "IntelliVue MX40 Patient Worn Monitor", "1.2")])
    assert scheme and all(f.status is FindingStatus.POSSIBLY_AFFECTED for f in scheme)
    assert "different version schemes" in scheme[0].explanation["decision"]
    # a rule with a condition we cannot check (the pump's hardware model) is not a certainty
    baxter = findings_of([asset("sigma", "Baxter", "Sigma Spectrum", "8.00.01")])
    assert baxter and all(f.status is FindingStatus.POSSIBLY_AFFECTED for f in baxter)
    assert baxter[0].explanation["rule_qualifier"] == "model 35700BAX2"


def test_explanation_and_finding_fields() -> None:
    (f, *_) = findings_of([asset("pump", "BD", "Alaris 8015 PC unit", "9.19")])
    assert f.advisory_id == "ICSMA-17-017-02" and f.cve == "CVE-2016-9355"
    assert f.cvss_score == 6.8 and f.cvss_version == "3.0" and f.severity == "medium"
    assert f.cvss_vector.startswith("CVSS:3.0/")
    assert f.cwe == ("CWE-284",)
    assert f.remediation.startswith("[vendor_fix]")
    e = f.explanation
    assert e["product_id"] == "CSAFPID-0002"
    assert e["advisory_vendor"] == "Becton, Dickinson and Company (BD)"
    assert e["advisory_product"] == "Alaris 8015 PC unit"
    assert e["version_rule"] == "<= 9.33"
    assert e["matched_on"] == "vendor/product" and e["match_key"] == "bd / alaris 8015 pc unit"
    assert e["asset_version"] == "9.19"
    assert e["decision"] == "9.19 satisfies <= 9.33"
    assert e["status_group"] == "known_affected"


def test_fixed_and_not_affected_products_raise_nothing() -> None:
    advisory, _ = parse_document(csaf_document(), "doc.json")
    pump = "VitaFlow Infusion Pump"
    found = match_findings([advisory], [asset("fixed", "Example Medical", pump, "2.4.1"),
                                        asset("old", "Example Medical", pump, "2.0"),
                                        asset("unknown", "Example Medical", pump, "")])
    status = {f.asset_id: f.status for f in found}
    assert status == {"old": FindingStatus.AFFECTED, "unknown": FindingStatus.POSSIBLY_AFFECTED}
    # a product listed only as fixed raises nothing, not even for an unknown version
    only_fixed = csaf_document()
    only_fixed["vulnerabilities"][0]["product_status"] = {"fixed": ["P-FIXED"], "known_not_affected": ["P-OLD"]}
    advisory, _ = parse_document(only_fixed, "doc.json")
    assert match_findings([advisory], [asset("unknown", "Example Medical", pump, ""),
                                       asset("fixed", "Example Medical", pump, "2.4.1")]) == []


def test_cve5_ranges_default_status_and_cpe() -> None:
    advisory, _ = parse_document(cve5_record(), "rec.json")
    pump = "VitaFlow Infusion Pump"
    assets = [
        asset("v2.0", "Example Medical", pump, "2.0"),
        asset("v2.4.1", "Example Medical", pump, "2.4.1"),  # listed as unaffected
        asset("v3.1", "Example Medical", pump, "3.1"),
        asset("v3.3", "Example Medical", pump, "3.3"),  # outside every range, default unaffected
        asset("gw", "Example Medical", "VitaFlow Gateway", "7.0", kind="iomt-gateway"),
        # only a CPE, no vendor/product fields: matched through the CPE, version from it
        asset("cpe-only", "", "", "", cpe="cpe:2.3:h:example_medical:vitaflow_infusion_pump:1.5:*:*:*:*:*:*:*"),
    ]
    found = {f.asset_id: f for f in match_findings([advisory], assets)}
    assert set(found) == {"v2.0", "v3.1", "gw", "cpe-only"}
    assert all(f.status is FindingStatus.AFFECTED for f in found.values())
    assert found["cpe-only"].explanation["matched_on"] == "cpe"
    assert found["cpe-only"].explanation["asset_version"] == "1.5"
    assert found["v2.0"].cvss_version == "4.0" and found["v2.0"].severity == "critical"


def test_first_and_last_affected() -> None:
    doc = csaf_document()
    doc["vulnerabilities"][0]["product_status"] = {"first_affected": ["P-FIXED"]}
    advisory, _ = parse_document(doc, "doc.json")
    pump = "VitaFlow Infusion Pump"
    found = match_findings([advisory], [asset("a", "Example Medical", pump, "2.4.0"),
                                        asset("b", "Example Medical", pump, "2.5")])
    assert [f.asset_id for f in found] == ["b"]
    assert found[0].explanation["rule_applied"] == ">= 2.4.1"


def test_matching_100k_assets_is_indexed() -> None:
    advisories = icsma()
    models = [("BD", "Alaris 8015 PC unit", "9.19"), ("Hamilton Medical", "T1 Ventilator", "2.2.3"),
              ("Philips", "IntelliVue MX40 Patient Worn Monitor", "B.06.10"), ("Acme", "Office PC", "10"),
              ("Microsoft", "Windows 10", "22H2"), ("GE Healthcare", "Optima MR360", "")]
    assets = [asset(f"a{i:06d}", *models[i % len(models)]) for i in range(100_000)]
    index = AssetIndex.build(assets)
    # indexed: 100,000 assets sit under a handful of (vendor, name) keys, so an advisory entry is a few
    # dictionary look-ups, not a pass over the assets (its speed is bench/inventory.py's to measure)
    assert len(index.by_name) < 100
    found = match_findings(advisories, index)
    per_model: dict[str, int] = {}
    for f in found:
        per_model[f.explanation["asset_product"]] = per_model.get(f.explanation["asset_product"], 0) + 1
    n = 100_000 // len(models) + 1  # assets per model (first models get the remainder)
    assert per_model["Alaris 8015 PC unit"] == 2 * n  # two CVEs of ICSMA-17-017-02 at 9.19
    assert "Office PC" not in per_model and "Windows 10" not in per_model


def test_model_named_in_the_version_field() -> None:
    # ICSMA-18-310-01 lists Roche models as "versions" of "Point of Care handheld medical devices"
    coaguchek = findings_of([asset("coag", "Roche Diagnostics", "CoaguChek XS Plus", "", kind="lab-analyser")])
    assert coaguchek and {f.advisory_id for f in coaguchek} == {"ICSMA-18-310-01"}
    assert all(f.status is FindingStatus.AFFECTED for f in coaguchek)
    e = coaguchek[0].explanation
    assert e["matched_on"] == "vendor/model" and "CoaguChek XS Plus" in e["rule_applied"]
    # the family name with a version cannot be checked against model names: possibly affected, not dropped
    family = findings_of([asset("poc", "Roche", "Point of Care handheld medical devices", "1.0")])
    assert family and all(f.status is FindingStatus.POSSIBLY_AFFECTED for f in family)
    # another Roche model that the advisory does not name meets nothing
    assert not findings_of([asset("cobas", "Roche", "cobas 8000", "1.0", kind="lab-analyser")])


def test_product_names_as_people_write_them() -> None:
    # issue 17: the CSAF product is "Valleylab FT10 Energy Platform (VLFT10GEN) software", "<= 4.0.0"
    found = findings_of([asset("ft10", "Medtronic", "Valleylab FT10 Energy Platform", "2.0.1", kind="surgical")])
    assert {f.cve for f in found if f.advisory_id == "ICSMA-19-311-02"} == {
        "CVE-2019-13543", "CVE-2019-13539", "CVE-2019-3464"}
    e = next(f for f in found if f.advisory_id == "ICSMA-19-311-02").explanation
    assert e["matched_on"] == "vendor/product" and e["match_key"] == "medtronic / valleylab ft10 energy platform"
    assert "without (VLFT10GEN), without 'software'" in e["name_match"]
    assert "2.0.1 satisfies <= 4.0.0" in e["why"] and "'<= 4.0.0'" in e["why"]
    # case, hyphens and spacing do not matter; a version above the range meets nothing there
    assert {f.advisory_id for f in findings_of([asset("a", "MEDTRONIC", "valleylab ft-10 energy platform", "2.0.1")])} \
        >= {"ICSMA-19-311-02"}
    assert "ICSMA-19-311-02" not in {f.advisory_id for f in findings_of(
        [asset("b", "Medtronic", "Valleylab FT10 Energy Platform", "4.0.1")])}


def test_model_code_in_parentheses_is_an_alias() -> None:
    found = findings_of([asset("ft10", "Medtronic", "VLFT10GEN", "2.0.1", kind="surgical")])
    e = next(f for f in found if f.advisory_id == "ICSMA-19-311-02").explanation
    assert e["matched_on"] == "alias (model code in the name)" and "VLFT10GEN" in e["name_match"]
    # an acronym in parentheses is not a model code: "CSM" alone names nothing
    assert not findings_of([asset("csm", "Welch Allyn", "CSM", "1.40")])


def test_word_subset_names_one_product_or_nothing() -> None:
    # the product line left off: the words name one Medtronic product, so it matches, explained
    found = findings_of([asset("ft10", "Medtronic", "FT10 Energy Platform", "2.0.1")])
    assert {f.advisory_id for f in found} == {"ICSMA-19-311-01", "ICSMA-19-311-02"}
    assert all(f.explanation["matched_on"].startswith("vendor/product (the asset's words name one product)")
               for f in found)
    assert "FT10" in found[0].explanation["name_match"]
    # "Energy Platform" is in the FX8 and the FT10 names: it names neither
    assert not findings_of([asset("ep", "Medtronic", "Energy Platform", "2.0.1")])
    # one word without a digit names nothing; words of two products name nothing
    assert not findings_of([asset("x", "Medtronic", "Valleylab", "1.0")])
    assert not findings_of([asset("y", "Medtronic", "Valleylab Energy Platform", "1.0")])
    # a subset needs the vendor: another vendor's "FT10 Energy Platform" meets nothing
    assert not findings_of([asset("z", "Acme", "FT10 Energy Platform", "2.0.1")])


@pytest.mark.parametrize("vendor", ["GE", "General Electric (GE)", "GE Healthcare", "General Electric Company",
                                    "GE Medical Systems"])
def test_vendor_aliases_from_the_data_file(vendor: str) -> None:
    found = findings_of([asset("ct", vendor, "Optima CT580W", "1.0", kind="ct")])
    assert {f.advisory_id for f in found} == {"ICSMA-20-343-01"}


def test_vendor_alias_file_is_data() -> None:
    from healthswarm.inventory.advisories.products import ALIASES_FILE, VENDOR_ALIASES

    assert ALIASES_FILE.suffix == ".toml" and ALIASES_FILE.is_file()
    assert "general electric" in VENDOR_ALIASES["ge"] and "welch allyn" in VENDOR_ALIASES["baxter"]


def test_identification_helper_model_numbers_and_skus_are_aliases() -> None:
    from healthswarm.store.vulns import advisory_from_dict, advisory_to_dict

    doc = csaf_document()
    leaf = doc["product_tree"]["branches"][0]["branches"][0]["branches"][0]["branches"][0]["product"]
    leaf["product_identification_helper"] = {"model_numbers": ["VF-200"], "skus": ["8015-100-EU"]}
    advisory, problems = parse_document(doc, "doc.json")
    assert problems == []
    entry = next(p for p in advisory.products if p.product_id == "P-OLD")
    assert entry.aliases == ("model_number:VF-200", "sku:8015-100-EU")
    assert advisory_from_dict(advisory_to_dict(advisory)) == advisory  # stored and read back whole
    by_model = Asset(id="m", organisation="h1", zone="iomt", kind="infusion-pump", name="m",
                     vendor="Example Medical", product="VitaFlow", version="2.0", attributes={"model": "VF 200"})
    by_sku = asset("s", "Example Medical", "8015-100-EU", "2.0")
    other = asset("o", "Example Medical", "VF-300", "2.0")
    found = {f.asset_id: f for f in match_findings([advisory], [by_model, by_sku, other])}
    assert set(found) == {"m", "s"}
    assert found["m"].explanation["matched_on"] == "alias (model number)"
    assert "attributes.model" in found["m"].explanation["name_match"]
    assert found["s"].explanation["matched_on"] == "alias (sku)"
