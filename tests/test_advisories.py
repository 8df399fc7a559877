"""Reading advisories: all real CISA ICSMA CSAF files, hand-built CVE JSON 5 records, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import shared
from healthswarm.inventory.advisories import load_advisories
from healthswarm.inventory.advisories.loader import parse_document
from healthswarm.inventory.advisories.scoring import ScoreError, disagreement, score_vector
from healthswarm.model import ProductStatus


def test_all_icsma_advisories_load() -> None:
    folder = shared("csaf-icsma")
    files = sorted(folder.glob("*.json"))
    advisories, problems = load_advisories([folder])
    assert problems == []
    assert len(files) == 144
    assert len(advisories) == 144
    ids = {a.id for a in advisories}
    assert len(ids) == 144 and all(i.startswith("ICSMA-") for i in ids)
    for advisory in advisories:
        assert advisory.format == "csaf" and advisory.title and advisory.published
        assert advisory.products, advisory.id
        assert advisory.vulnerabilities, advisory.id
        known = {p.product_id for p in advisory.products}
        for vuln in advisory.vulnerabilities:
            affected = vuln.product_status.get(ProductStatus.KNOWN_AFFECTED, ())
            assert affected and set(affected) <= known, (advisory.id, vuln.cve)
            assert vuln.scores, (advisory.id, vuln.cve)
            for score in vuln.scores:
                # the score is computed from the vector, and in these files agrees with the stated one
                assert score.severity in ("none", "low", "medium", "high", "critical")
                assert disagreement(score) == ""
    entries = [p for a in advisories for p in a.products]
    assert len(entries) == 607
    assert all(p.vendor and p.product for p in entries)


def test_icsma_product_tree_details() -> None:
    path = shared("csaf-icsma", "icsma-17-017-02.json")
    (advisory,), problems = load_advisories([path])
    assert problems == []
    assert advisory.id == "ICSMA-17-017-02"
    rules = {p.product_id: p.version_rule for p in advisory.products}
    assert rules == {"CSAFPID-0001": "9.7", "CSAFPID-0002": "<= 9.33", "CSAFPID-0003": "<= 9.5"}
    entry = advisory.products[1]
    assert entry.vendor == "Becton, Dickinson and Company (BD)"
    assert entry.product == "Alaris 8015 PC unit"
    assert entry.full_name == "Alaris 8015 PC unit: Versions 9.33 and prior"
    vuln = next(v for v in advisory.vulnerabilities if v.cve == "CVE-2016-8375")
    assert vuln.cwe == ("CWE-522",)
    assert vuln.best_score is not None and vuln.best_score.base_score == 4.9
    assert vuln.best_score.vector == "CVSS:3.0/AV:P/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N"
    assert any(r.category == "vendor_fix" and "8015" in r.details for r in vuln.remediations)


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_broken_json_reports_its_line_and_the_rest_still_loads(tmp_path: Path) -> None:
    good = shared("csaf-icsma", "icsma-21-047-01.json")
    (tmp_path / "good.json").write_bytes(good.read_bytes())
    _write(tmp_path / "broken.json", '{\n  "document": {\n    "csaf_version": "2.0",\n    "title": oops\n  }\n}\n')
    advisories, problems = load_advisories([tmp_path])
    assert [a.id for a in advisories] == ["ICSMA-21-047-01"]
    assert len(problems) == 1
    problem = problems[0]
    assert problem.location.file.endswith("broken.json")
    assert problem.location.line == 4
    assert "not valid JSON" in problem.message
    assert problem.expected and "CSAF 2.0" in problem.expected
    assert str(problem).startswith(f"{tmp_path / 'broken.json'}:4: not valid JSON")


def test_folder_with_non_json_files_and_wrong_documents(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.json").write_bytes(shared("csaf-icsma", "icsma-18-037-02.json").read_bytes())
    _write(tmp_path / "README.md", "# notes\n")
    _write(tmp_path / ".hidden.json", "{}")  # hidden files are not ours to read
    _write(tmp_path / "stix.json", {"type": "bundle", "objects": []})
    _write(tmp_path / "list.json", [1, 2])
    _write(tmp_path / "empty.json", "")
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    advisories, problems = load_advisories([tmp_path, tmp_path / "missing"])
    assert [a.id for a in advisories] == ["ICSMA-18-037-02"]
    by_file = {Path(p.location.file.split("[")[0]).name: p for p in problems}
    assert set(by_file) == {"README.md", "stix.json", "list.json", "empty.json", "latin1.json", "missing"}
    assert "not a JSON file" in by_file["README.md"].message
    assert "not an advisory" in by_file["stix.json"].message
    assert "keys objects, type" in by_file["stix.json"].message
    assert by_file["empty.json"].message == "the file is empty"
    assert "not UTF-8" in by_file["latin1.json"].message
    assert by_file["missing"].message == "no such file or folder"


def test_duplicate_advisory_is_reported(tmp_path: Path) -> None:
    data = shared("csaf-icsma", "icsma-21-047-01.json").read_bytes()
    (tmp_path / "a.json").write_bytes(data)
    (tmp_path / "b.json").write_bytes(data)
    advisories, problems = load_advisories([tmp_path])
    assert len(advisories) == 1
    assert len(problems) == 1 and "also in" in problems[0].message


def cve5_record(**cna_overrides: Any) -> dict[str, Any]:
    """A CVE JSON 5.1 record built by hand after the CVE Record Format schema."""
    cna: dict[str, Any] = {
        "providerMetadata": {"orgId": "7d14cffa-0d7d-4270-9dc0-52cabd5a23a6", "shortName": "icscert"},
        "title": "Example infusion pump missing authentication",
        "descriptions": [{"lang": "en", "value": "The pump's maintenance port accepts commands without login."}],
        "affected": [
            {
                "vendor": "Example Medical Inc.",
                "product": "VitaFlow Infusion Pump",
                "cpes": ["cpe:2.3:h:example_medical:vitaflow_infusion_pump:*:*:*:*:*:*:*:*"],
                "defaultStatus": "unaffected",
                "versions": [
                    {"version": "1.0", "lessThan": "2.4.1", "status": "affected", "versionType": "custom"},
                    {"version": "3.0", "lessThanOrEqual": "3.2", "status": "affected", "versionType": "custom"},
                    {"version": "2.4.1", "status": "unaffected"},
                ],
            },
            {"vendor": "Example Medical Inc.", "product": "VitaFlow Gateway", "defaultStatus": "affected"},
        ],
        "problemTypes": [{"descriptions": [{"lang": "en", "type": "CWE", "cweId": "CWE-306",
                                            "description": "CWE-306 Missing Authentication for Critical Function"}]}],
        "metrics": [
            {"format": "CVSS", "cvssV3_1": {"version": "3.1", "baseScore": 9.8, "baseSeverity": "CRITICAL",
                                            "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
            {"format": "CVSS", "cvssV4_0": {"version": "4.0", "baseScore": 9.3, "baseSeverity": "CRITICAL",
                                            "vectorString": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/"
                                                            "SC:N/SI:N/SA:N"}},
        ],
        "solutions": [{"lang": "en", "value": "Update to firmware 2.4.1 or later."}],
        "workarounds": [{"lang": "en", "value": "Block TCP port 2323 at the IoMT firewall."}],
    }
    cna.update(cna_overrides)
    return {
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
        "cveMetadata": {"cveId": "CVE-2099-0001", "assignerOrgId": "7d14cffa-0d7d-4270-9dc0-52cabd5a23a6",
                        "assignerShortName": "icscert", "state": "PUBLISHED",
                        "datePublished": "2099-01-02T00:00:00.000Z"},
        "containers": {"cna": cna},
    }


def test_cve5_record() -> None:
    advisory, problems = parse_document(cve5_record(), "rec.json")
    assert problems == []
    assert advisory.id == "CVE-2099-0001" and advisory.format == "cve5" and advisory.publisher == "icscert"
    rules = {p.product_id: (p.product, p.version_rule) for p in advisory.products}
    assert rules == {
        "CVE-2099-0001:0:0": ("VitaFlow Infusion Pump", "vers:custom/>=1.0|<2.4.1"),
        "CVE-2099-0001:0:1": ("VitaFlow Infusion Pump", "vers:custom/>=3.0|<=3.2"),
        "CVE-2099-0001:0:2": ("VitaFlow Infusion Pump", "vers:generic/2.4.1"),
        "CVE-2099-0001:1:default": ("VitaFlow Gateway", "vers:all/*"),
    }
    assert advisory.products[0].cpe.startswith("cpe:2.3:h:example_medical:")
    (vuln,) = advisory.vulnerabilities
    assert vuln.cwe == ("CWE-306",)
    assert vuln.product_status[ProductStatus.KNOWN_AFFECTED] == (
        "CVE-2099-0001:0:0", "CVE-2099-0001:0:1", "CVE-2099-0001:1:default")
    assert vuln.product_status[ProductStatus.KNOWN_NOT_AFFECTED] == ("CVE-2099-0001:0:2",)
    assert {s.version for s in vuln.scores} == {"3.1", "4.0"}
    assert vuln.best_score is not None and vuln.best_score.version == "4.0" and vuln.best_score.base_score == 9.3
    assert [r.category for r in vuln.remediations] == ["vendor_fix", "workaround"]


def test_cve5_rejected_and_malformed(tmp_path: Path) -> None:
    rejected = cve5_record()
    rejected["cveMetadata"]["state"] = "REJECTED"
    bad_id = cve5_record()
    bad_id["cveMetadata"]["cveId"] = "CVE-99"
    bad_vector = cve5_record(metrics=[{"cvssV3_1": {"version": "3.1", "vectorString": "CVSS:3.1/AV:Q"}}])
    bad_vector["cveMetadata"]["cveId"] = "CVE-2099-0002"
    for name, data in (("rejected", rejected), ("bad_id", bad_id), ("bad_vector", bad_vector)):
        _write(tmp_path / f"{name}.json", data)
    advisories, problems = load_advisories([tmp_path])
    # the bad vector is reported, but the record still loads (without that score)
    assert [a.id for a in advisories] == ["CVE-2099-0002"]
    assert advisories[0].vulnerabilities[0].scores == ()
    messages = {Path(p.location.file).stem: (p.location.field, p.message) for p in problems}
    assert messages["rejected"][0] == "cveMetadata.state"
    assert messages["bad_id"][0] == "cveMetadata.cveId"
    assert messages["bad_vector"][0] == "containers.cna.metrics[0].cvssV3_1.vectorString"


def csaf_document(**extra: Any) -> dict[str, Any]:
    """A small CSAF 2.0 document with the parts the ICSMA files do not use."""
    doc: dict[str, Any] = {
        "document": {"category": "csaf_security_advisory", "csaf_version": "2.0", "title": "Test advisory",
                     "publisher": {"name": "Example PSIRT", "category": "vendor", "namespace": "https://example.org"},
                     "tracking": {"id": "EX-2099-001", "initial_release_date": "2099-01-01T00:00:00Z",
                                  "current_release_date": "2099-01-01T00:00:00Z", "status": "final",
                                  "version": "1", "revision_history": []}},
        "product_tree": {
            "branches": [{"category": "vendor", "name": "Example Medical", "branches": [
                {"category": "product_family", "name": "VitaFlow", "branches": [
                    {"category": "product_name", "name": "VitaFlow Infusion Pump", "branches": [
                        {"category": "product_version_range", "name": "vers:generic/>=1.0|<2.4.1",
                         "product": {"name": "VitaFlow Infusion Pump < 2.4.1", "product_id": "P-OLD"}},
                        {"category": "product_version", "name": "2.4.1",
                         "product": {"name": "VitaFlow Infusion Pump 2.4.1", "product_id": "P-FIXED"}},
                    ]},
                ]},
            ]}],
            "full_product_names": [{"name": "VitaFlow Cloud", "product_id": "P-CLOUD",
                                    "product_identification_helper": {
                                        "cpe": "cpe:2.3:a:example_medical:vitaflow_cloud:*:*:*:*:*:*:*:*"}}],
            "relationships": [{"category": "installed_on", "product_reference": "P-OLD",
                               "relates_to_product_reference": "P-CLOUD",
                               "full_product_name": {"name": "VitaFlow Pump < 2.4.1 on VitaFlow Cloud",
                                                     "product_id": "P-OLD-ON-CLOUD"}}],
            "product_groups": [{"group_id": "G-ALL", "product_ids": ["P-OLD", "P-CLOUD"]}],
        },
        "vulnerabilities": [{
            "cve": "CVE-2099-0003", "cwe": {"id": "CWE-798", "name": "Use of Hard-coded Credentials"},
            "scores": [{"products": ["P-OLD"],
                        "cvss_v2": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:C/I:C/A:C", "baseScore": 10.0},
                        "cvss_v3": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": 7.5}}],
            "product_status": {"known_affected": ["P-OLD", "P-OLD-ON-CLOUD", "P-CLOUD"], "fixed": ["P-FIXED"]},
            "remediations": [{"category": "vendor_fix", "details": "Update to 2.4.1.", "group_ids": ["G-ALL"]}],
        }],
    }
    doc.update(extra)
    return doc


def test_csaf_relationships_full_product_names_groups_and_v2() -> None:
    advisory, problems = parse_document(csaf_document(), "doc.json")
    assert problems == []
    products = {p.product_id: p for p in advisory.products}
    assert set(products) == {"P-OLD", "P-FIXED", "P-CLOUD", "P-OLD-ON-CLOUD"}
    assert products["P-OLD"].product == "VitaFlow Infusion Pump"  # product_name wins over product_family
    assert products["P-OLD-ON-CLOUD"].version_rule == "vers:generic/>=1.0|<2.4.1"
    assert products["P-OLD-ON-CLOUD"].full_name == "VitaFlow Pump < 2.4.1 on VitaFlow Cloud"
    assert products["P-CLOUD"].cpe.startswith("cpe:2.3:a:example_medical:vitaflow_cloud")
    (vuln,) = advisory.vulnerabilities
    assert vuln.remediations[0].product_ids == ("P-OLD", "P-CLOUD")
    by_version = {s.version: s for s in vuln.scores}
    assert by_version["2.0"].base_score == 10.0 and by_version["2.0"].severity == "high"
    # the document says 7.5 but the vector computes 9.8: the vector wins, the difference is told
    assert by_version["3.1"].base_score == 9.8 and by_version["3.1"].stated_score == 7.5
    assert disagreement(by_version["3.1"]) == "the document states 7.5, the vector computes 9.8"


def test_csaf_without_tracking_id_is_a_problem(tmp_path: Path) -> None:
    doc = csaf_document()
    del doc["document"]["tracking"]["id"]
    _write(tmp_path / "noid.json", doc)
    advisories, problems = load_advisories([tmp_path / "noid.json"])
    assert advisories == []
    assert problems[0].location.field == "document.tracking.id"


@pytest.mark.parametrize(
    ("vector", "version", "score", "severity"),
    [
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", 9.8, "critical"),
        ("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", 8.8, "high"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3, "critical"),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0", 7.5, "high"),
    ],
)
def test_scores_come_from_the_vector(vector: str, version: str, score: float, severity: str) -> None:
    result = score_vector(vector)
    assert (result.version, result.base_score, result.severity) == (version, score, severity)


@pytest.mark.parametrize("vector", ["", "CVSS:3.1/AV:N", "CVSS:4.0/AV:Z", "nonsense"])
def test_bad_vectors_raise_score_error(vector: str) -> None:
    with pytest.raises(ScoreError):
        score_vector(vector)
