"""STIX 2.1 export (validator-clean, equal to what `stix2` builds) and import (OASIS examples, invalid vectors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import stix2
from stix2validator import ValidationOptions, validate_parsed_json

from conftest import SHARED_DATA, shared
from healthswarm.errors import InputError
from healthswarm.model import Alert, Asset, AttackRef, EventRef, Finding, FindingStatus, Indicator
from healthswarm.share.ids import sco_id
from healthswarm.share.markings import TLP2_IDS, pap_marking, tlp_marking, tlp_of
from healthswarm.share.patterns import parse_simple, pattern_for
from healthswarm.share.stix_export import (
    INCIDENT_CORE_EXTENSION,
    BundleBuilder,
    ExportContext,
    build_bundle,
    reference_bundle,
)
from healthswarm.share.stix_import import import_bundle, read_json

NOW = datetime(2026, 11, 29, 3, 0, 0, 250000, tzinfo=UTC)


def full_bundle(tlp: str = "amber", pap: str | None = "green") -> dict:
    ctx = ExportContext("healthswarm-org-1", b"s" * 32, tlp=tlp, pap=pap, now=NOW)
    alerts = [
        Alert("sigma", "r1", "Suspicious PowerShell", "high", NOW,
              events=(EventRef("f", 1, "k"), EventRef("f", 2, "k2")),
              techniques=(AttackRef("T1059.001", "PowerShell"), AttackRef("T1105")),
              details={"source": {"ip": "203.0.113.9"}, "destination.ip": "2001:db8::7",
                       "url.full": "http://x.example/a'b",
                       "dns.question.name": "Evil.Example", "file.hash.md5": "D41D8CD98F00B204E9800998ECF8427E"}),
        Alert("sigma", "r2", "Beacon", "low", NOW, details={"destination.domain": "c2.example"}),
        Alert("sigma", "r3", "Nothing shareable", "informational", NOW),
    ]
    findings = [Finding("a1", "ICSMA-20-170-01", "CVE-2020-12345", FindingStatus.AFFECTED, 9.8, "CVSS:3.1/AV:N", "3.1",
                        "critical", remediation="Update to 2.0"),
                Finding("a1", "ICSMA-20-170-01", "", FindingStatus.POSSIBLY_AFFECTED)]
    indicators = [
        Indicator("evil.example", "domain", NOW - timedelta(days=1), NOW, techniques=("T1071",), labels=("c2",)),
        Indicator("e" * 64, "sha256", NOW, NOW), Indicator("198.51.100.7", "ipv4", NOW, NOW),
        Indicator("http://bad.example/p?q='1'", "url", NOW, NOW), Indicator("evil.exe", "filename", NOW, NOW),
        Indicator("CVE-2021-44228", "cve", NOW, NOW), Indicator("t1566", "attack-technique", NOW, NOW),
        Indicator("ja3hash", "ja3", NOW, NOW),
    ]
    builder = BundleBuilder(ctx)
    for ind in indicators:
        builder.indicator(ind)
    for alert in alerts:
        builder.alert(alert)
    for finding in findings:
        builder.finding(finding, Asset("a1", "o", "z", "infusion-pump", "p", vendor="BD", product="Alaris",
                                       version="9"))
    builder.incident("inc-1", "Phishing to PACS", NOW, determination="confirmed", investigation_status="open",
                     criticality=80, other_object_refs=list(builder.objects))
    builder.report("healthswarm test report")
    assert len(builder.skipped) == 3  # the ja3, the alert with nothing shareable, the finding without a CVE
    return builder.bundle()


def validator_errors(bundle: dict) -> list[str]:
    result = validate_parsed_json(bundle, ValidationOptions())
    results = result if isinstance(result, list) else [result]
    return [str(e) for r in results for e in r.errors]


@pytest.mark.parametrize("tlp,pap", [("amber", "green"), ("clear", None), ("amber+strict", "red"), ("red", "amber")])
def test_export_is_validator_clean(tlp: str, pap: str | None) -> None:
    bundle = full_bundle(tlp, pap)
    kinds = {o["type"] for o in bundle["objects"]}
    assert {"identity", "indicator", "observed-data", "sighting", "attack-pattern", "vulnerability", "course-of-action",
            "relationship", "report", "note", "incident", "marking-definition", "ipv4-addr", "ipv6-addr", "url",
            "domain-name", "file"} <= kinds
    assert validator_errors(bundle) == []


def test_fast_builder_equals_stix2_reference() -> None:
    bundle = full_bundle()
    reference = reference_bundle(bundle)
    assert len(reference["objects"]) == len(bundle["objects"])
    for ours, theirs in zip(bundle["objects"], reference["objects"], strict=True):
        assert ours == theirs, ours["id"]


def test_sco_ids_are_the_stix2_deterministic_ids() -> None:
    assert sco_id("ipv4-addr", {"value": "198.51.100.7"}) == stix2.IPv4Address(value="198.51.100.7").id
    assert sco_id("domain-name", {"value": "évil.example"}) == stix2.DomainName(value="évil.example").id
    hashes = {"SHA-256": "e" * 64}
    assert sco_id("file", {"hashes": hashes}) == stix2.File(hashes=hashes).id
    # what JSON must escape, and what it must not: controls, quote, backslash, DEL, U+2028, astral characters
    tricky = "https://x.example/a\x01\x1f\x7f\"\\/\b\f\n\r\t é 😀 \u2028'"
    assert sco_id("url", {"value": tricky}) == stix2.URL(value=tricky).id


def test_incident_records_export_validator_clean() -> None:
    from healthswarm.model.incident import Incident, IncidentState, Stage

    ctx = ExportContext("org", b"s" * 32, now=NOW)
    alert = Alert("sigma", "r", "Ransomware note", "critical", NOW, techniques=(AttackRef("T1486"),),
                  details={"destination.ip": "198.51.100.9"})
    states = [IncidentState.NEW, IncidentState.TRIAGED, IncidentState.CONTAINED, IncidentState.FALSE_POSITIVE]
    incidents = [Incident(f"i{n}", "Ransomware at the PACS", NOW - timedelta(hours=1), NOW, state=state,
                          stage=Stage.OBJECTIVES, severity=3, alert_ids=[alert.id], techniques={"T1486", "T1021"})
                 .as_dict() for n, state in enumerate(states)]
    bundle, _ = build_bundle(ctx, alerts=[alert], incidents=incidents)
    assert validator_errors(bundle) == []
    made = [o for o in bundle["objects"] if o["type"] == "incident"]
    ext = [o["extensions"][INCIDENT_CORE_EXTENSION] for o in made]
    assert [(e["determination"], e["investigation_status"]) for e in ext] == [
        ("suspected", "new"), ("suspected", "open"), ("confirmed", "open"), ("false-positive", "closed")]
    # the sighting, the observed data, two techniques
    assert ext[0]["criticality"] == 75 and len(ext[0]["other_object_refs"]) == 4
    assert made[0]["modified"] > made[0]["created"]
    assert all(o == t for o, t in zip(bundle["objects"], reference_bundle(bundle)["objects"], strict=True))


def test_deterministic_ids_and_attack_references() -> None:
    a, b = full_bundle(), full_bundle()
    ids = lambda bundle: {o["id"] for o in bundle["objects"] if o["type"] not in {"report"}}  # noqa: E731
    assert ids(a) == ids(b)
    patterns = [o for o in a["objects"] if o["type"] == "attack-pattern"]
    assert {p["external_references"][0]["external_id"] for p in patterns} == {"T1059.001", "T1105", "T1071", "T1566"}
    assert all(p["external_references"][0]["source_name"] == "mitre-attack" for p in patterns)
    incident = next(o for o in a["objects"] if o["type"] == "incident")
    assert incident["extensions"][INCIDENT_CORE_EXTENSION]["determination"] == "confirmed"


def test_tlp2_and_pap_markings() -> None:
    assert tlp_marking("amber")["id"] == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    assert tlp_marking("TLP:WHITE")["id"] == TLP2_IDS["clear"]
    assert pap_marking("red")["name"] == "PAP:RED"
    assert tlp_of([TLP2_IDS["green"], TLP2_IDS["red"]]) == "red"
    assert tlp_of(["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]) == "amber"  # TLP 1.0 amber
    with pytest.raises(ValueError):
        tlp_marking("purple")


@pytest.mark.parametrize("kind,value", [("ipv4", "1.2.3.4"), ("domain", "a.example"), ("url", "http://a/'x\\y"),
                                        ("sha256", "ab" * 32), ("md5", "cd" * 16), ("email", "a@b.example"),
                                        ("filename", "x.exe"), ("user-agent", "Mozilla/5.0 'x'")])
def test_patterns_round_trip(kind: str, value: str) -> None:
    pattern = pattern_for(kind, value)
    assert pattern is not None and parse_simple(pattern) == (kind, value)


EXAMPLES = sorted(p.name for p in (SHARED_DATA / "stix" / "examples").rglob("*.json")) or ["absent"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_import_accepts_oasis_examples(name: str) -> None:
    folder = shared("stix", "examples")
    path = next(folder.rglob(name))
    result = import_bundle(read_json(path), str(path))
    assert result.objects


def test_import_extracts_indicators_from_poison_ivy() -> None:
    path = shared("stix", "examples", "threat-reports", "poisonivy.json")
    result = import_bundle(read_json(path), str(path))
    kinds = {i.type for i in result.indicators}
    assert {"cve", "domain", "ipv4", "filename"} <= kinds
    assert "219.76.208.163" in {i.value for i in result.indicators}


@pytest.mark.parametrize("name,reason", [
    ("invalid_braces.json", "not valid JSON"),
    ("invalid_comma.json", "not valid JSON"),
    ("invalid_identity.json", "'modified' is a required property"),
    ("invalid_timestamp.json", "must be later than or equal to 'created'"),
])
def test_import_rejects_invalid_vectors_with_reasons(name: str, reason: str) -> None:
    path = shared("stix", "validator-vectors", name)
    with pytest.raises(InputError) as caught:
        import_bundle(read_json(path), str(path))
    assert any(reason in str(p) for p in caught.value.problems), caught.value.problems
    assert all(str(path) in str(p) for p in caught.value.problems)


@pytest.mark.parametrize("name", ["identity.json", "identity_custom.json", "identity_unicode.json",
                                  "identity_warning.json", "tlp-amber.json", "tool.json"])
def test_import_accepts_valid_vectors(name: str) -> None:
    path = shared("stix", "validator-vectors", name)
    assert import_bundle(read_json(path), str(path)).objects


def test_import_rejects_unknown_types_and_keeps_newest_duplicates() -> None:
    bundle = full_bundle()
    bundle["objects"].append({"type": "sandwich", "spec_version": "2.1", "id": "sandwich--6f1c2b34-5b8e-4f5a-9a4b-"
                              "2f0e8f6d1a11", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z"})
    with pytest.raises(InputError) as caught:
        import_bundle(bundle)
    assert "sandwich" in str(caught.value)
    bundle = full_bundle()
    indicator = next(o for o in bundle["objects"] if o["type"] == "indicator")
    newer = dict(indicator, modified="2026-12-01T00:00:00.000Z", confidence=99)
    bundle["objects"].append(newer)
    result = import_bundle(json.loads(json.dumps(bundle)))
    assert result.superseded == 1
    assert next(o for o in result.objects if o["id"] == indicator["id"])["confidence"] == 99


def test_export_bundle_round_trips_through_import() -> None:
    ctx = ExportContext("org", b"x" * 32, now=NOW)
    indicators = [Indicator("evil.example", "domain", NOW, NOW, confidence=70, tlp="amber")]
    bundle, _ = build_bundle(ctx, indicators=indicators)
    result = import_bundle(bundle)
    got = [i for i in result.indicators if i.type == "domain"]
    assert got and got[0].value == "evil.example" and got[0].confidence == 70 and got[0].tlp == "amber"
    assert got[0].source.startswith("identity--")
