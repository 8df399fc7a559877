"""Sanitising and the leak check: canaries planted in alerts, events and indicators never leave.

The CANARY test plants patient ids, an MRN, an accession number, internal host names, user names,
internal addresses and a user's file path in alerts, events and indicators, exports, and proves with
the leak check (every encoded form included) and a plain substring search that none of them leaves,
while the public indicators do. The checker itself is proved to find each canary in each encoding.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from healthswarm.model import (
    Alert,
    Asset,
    AttackRef,
    EventRef,
    Finding,
    FindingStatus,
    Indicator,
    Inventory,
    Organisation,
    Zone,
)
from healthswarm.model.incident import Incident, IncidentState, Stage
from healthswarm.share.cryptopan import CryptoPAn
from healthswarm.share.egress import AUDIT, EgressGate, Refused, Selection
from healthswarm.share.leakcheck import LeakChecker
from healthswarm.share.sanitise import Policy, Sanitiser, policy_for, triggered
from healthswarm.share.secrets import Pseudonymiser
from healthswarm.share.sensitive import from_event_fields, from_inventory
from healthswarm.share.stix_export import ExportContext, build_bundle

NOW = datetime(2026, 11, 29, 3, 17, 42, 123000, tzinfo=UTC)

CANARY_PATIENT = "PAT-CANARY-77123"
CANARY_MRN = "889900771"
CANARY_ACCESSION = "ACC55501234"
CANARY_NAME = "Ermintrude Canaryfield"
CANARY_HOST = "ehr-canary01.sta.example"
CANARY_SHORT_HOST = "ehr-canary01"
CANARY_USER = "dr.canarysmith"
CANARY_ADDRESS = "10.10.7.77"
CANARY_EVENT_ADDRESS = "192.168.44.201"
CANARIES = [CANARY_PATIENT, CANARY_MRN, CANARY_ACCESSION, CANARY_NAME, CANARY_HOST, CANARY_SHORT_HOST, CANARY_USER,
            CANARY_ADDRESS, CANARY_EVENT_ADDRESS, "St Aurelia Canary Hospital"]

PUBLIC_IP = "185.220.101.47"
PUBLIC_DOMAIN = "evil-updates.example.net"
PUBLIC_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PUBLIC_CVE = "CVE-2020-25165"
PUBLIC_TECHNIQUE = "T1021.002"
DEVICE_MODEL = "Alaris 8015"

# The Crypto-PAn reference distribution's key and sample vectors (sample_trace_raw/sanitized.dat),
# as reproduced in Yawning/cryptopan's tests.
CRYPTOPAN_KEY = bytes([21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16,
                       216, 152, 143, 131, 121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2])
CRYPTOPAN_VECTORS = [
    ("128.11.68.132", "135.242.180.132"), ("129.118.74.4", "134.136.186.123"),
    ("130.132.252.244", "133.68.164.234"), ("141.223.7.43", "141.167.8.160"),
    ("192.102.249.13", "252.138.62.131"), ("24.0.250.221", "100.15.198.226"),
    ("64.14.118.196", "0.255.183.58"), ("10.185.25.118", "117.161.29.118"),
    ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"), ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
]


def inventory() -> Inventory:
    return Inventory(
        organisations=(Organisation("st-aurelia", "St Aurelia Canary Hospital", "hospital"),),
        zones=(Zone("sta-clinical", "st-aurelia", "Clinical", "clinical"),),
        assets=(
            Asset("sta-ehr-01", "st-aurelia", "sta-clinical", "ehr", "EHR", addresses=(CANARY_ADDRESS,),
                  hostnames=(CANARY_HOST,)),
            Asset("sta-pump-07", "st-aurelia", "sta-clinical", "infusion-pump", "Pump", vendor="BD",
                  product=DEVICE_MODEL, version="9.19", addresses=("10.30.0.0/24",),
                  attributes={"serial": "SN-CANARY-4411"}),
        ),
    )


def event_fields() -> list[dict[str, object]]:
    return [
        {"user.name": CANARY_USER, "host.name": CANARY_SHORT_HOST, "source.ip": CANARY_EVENT_ADDRESS,
         "destination.ip": PUBLIC_IP, "patient.id": CANARY_PATIENT, "patient.mrn": CANARY_MRN,
         "patient.name": CANARY_NAME, "patient.accession": CANARY_ACCESSION},
    ]


def known():
    k = from_inventory(inventory())
    k.merge(from_event_fields(event_fields(), base=k))
    return k


def canary_alerts() -> list[Alert]:
    description = (
        f"At St Aurelia Canary Hospital user {CANARY_USER} on {CANARY_HOST} ({CANARY_ADDRESS}) "
        f"opened the chart of {CANARY_NAME}, "
        f"patient id {CANARY_PATIENT}, MRN {CANARY_MRN}, accession {CANARY_ACCESSION}; dropped "
        f"C:\\Users\\{CANARY_USER}\\AppData\\Local\\Temp\\payload.exe and beaconed to {PUBLIC_IP} "
        f"from {CANARY_EVENT_ADDRESS}. Mail {CANARY_USER}@sta.example, host {CANARY_SHORT_HOST.upper()}, "
        f"ST-AURELIA\\{CANARY_USER}, /home/{CANARY_USER}/.bash_history.\n"
        f"PID|1||{CANARY_PATIENT}^^^STA||{CANARY_NAME.upper()}"
    )
    return [
        Alert("sigma", "lateral-smb", f"SMB lateral movement from {CANARY_SHORT_HOST}", "high", NOW,
              events=(EventRef("/var/log/sysmon.json", 12, "k1"),),
              techniques=(AttackRef(PUBLIC_TECHNIQUE, "SMB/Windows Admin Shares"),),
              description=description,
              details={"source.ip": CANARY_ADDRESS, "destination.ip": PUBLIC_IP, "dns.question.name": PUBLIC_DOMAIN,
                       "file.hash.sha256": PUBLIC_HASH, "user.name": CANARY_USER, "host.name": CANARY_HOST,
                       "related.ip": [CANARY_EVENT_ADDRESS, PUBLIC_IP], "destination.domain": CANARY_HOST}),
        Alert("sigma", "insider", f"{CANARY_USER} browsed {CANARY_PATIENT}", "medium", NOW,
              details={"url.full": f"https://{CANARY_HOST}/chart?mrn={CANARY_MRN}"}),
    ]


def canary_indicators() -> list[Indicator]:
    return [
        Indicator(PUBLIC_IP, "ipv4", NOW - timedelta(days=2), NOW, confidence=80, techniques=(PUBLIC_TECHNIQUE,)),
        Indicator(PUBLIC_DOMAIN, "domain", NOW - timedelta(days=1), NOW),
        Indicator(PUBLIC_HASH, "sha256", NOW, NOW),
        Indicator(CANARY_ADDRESS, "ipv4", NOW, NOW, description="internal beacon source"),
        Indicator(CANARY_HOST, "domain", NOW, NOW),
        Indicator(f"http://{CANARY_SHORT_HOST}/x", "url", NOW, NOW),
    ]


def canary_findings():
    finding = Finding("sta-pump-07", "ICSMA-20-296-02", PUBLIC_CVE, FindingStatus.AFFECTED, 7.5,
                      "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "3.1", "high",
                      remediation=f"Ask {CANARY_USER} to update the pump on {CANARY_HOST} to 12.1.1")
    return [finding], {a.id: a for a in inventory().assets}


def canary_incident(alerts: list[Alert]) -> dict[str, object]:
    incident = Incident(f"inc-{CANARY_SHORT_HOST}", f"Lateral movement from {CANARY_HOST} by {CANARY_USER}",
                        NOW - timedelta(hours=2), NOW, state=IncidentState.CONTAINED, stage=Stage.LATERAL_MOVEMENT,
                        severity=4, alert_ids=[a.id for a in alerts], assets={"sta-ehr-01"},
                        techniques={PUBLIC_TECHNIQUE}, entities={("user", CANARY_USER), ("host", CANARY_HOST)})
    return incident.as_dict()


def raw_bundle():
    ctx = ExportContext("healthswarm-org-test", b"s" * 32, tlp="amber", now=NOW)
    findings, assets = canary_findings()
    alerts = canary_alerts()
    bundle, _skipped = build_bundle(ctx, alerts=alerts, findings=findings, assets=assets,
                                    indicators=canary_indicators(), incidents=[canary_incident(alerts)])
    return bundle


def sanitise(policy: Policy, bundle=None):
    return Sanitiser(policy, known(), Pseudonymiser(b"k" * 32)).bundle(bundle or raw_bundle())


@pytest.mark.parametrize("group,tlp", [("sector", "amber"), ("sector", "green"), ("trusted", "amber"),
                                       ("trusted", "red"), ("public", "clear")])
def test_canary_never_leaves(group: str, tlp: str) -> None:
    raw = raw_bundle()
    checker = LeakChecker(known())
    assert checker.check(raw), "the unsanitised bundle holds the canaries: the checker must see them"
    clean = sanitise(policy_for(tlp, group), raw)
    assert checker.check(clean) == []
    text = json.dumps(clean).lower()
    for canary in [*CANARIES, "SN-CANARY-4411", "sta-ehr-01", "sta-pump-07", "sysmon.json"]:
        assert canary.lower() not in text, canary
    incident = next(o for o in clean["objects"] if o["type"] == "incident")
    assert incident["name"].startswith("Lateral movement from host-") or group == "public"
    assert any(r.startswith("sighting--") for r in
               incident["extensions"]["extension-definition--ef765651-680c-498d-9894-99799f2fa126"]["other_object_refs"])
    # public indicators survive
    for public in (PUBLIC_IP, PUBLIC_DOMAIN, PUBLIC_HASH, PUBLIC_CVE, PUBLIC_TECHNIQUE, DEVICE_MODEL):
        assert public.lower() in text, public


def test_export_pipeline_blocks_a_leak_and_passes_clean(tmp_path: Path) -> None:
    findings, assets = canary_findings()
    gate = EgressGate.in_workspace(tmp_path, "st-aurelia", known())
    selection = Selection(alerts=canary_alerts(), findings=findings, assets=assets, indicators=canary_indicators())
    released, _skipped = gate.stix(policy_for("amber", "sector"), selection, now=NOW)
    assert LeakChecker(known()).check(released.payload) == []
    assert released.removed["internal-indicator"] == 3
    # a value the sanitiser cannot know about (not in inventory or events) but the checker does: blocked
    leaky = known()
    leaky.users.add("svc-backup-canary")
    gate._checkers = {False: LeakChecker(leaky)}
    alert = Alert("sigma", "r", "x", "low", NOW, techniques=(AttackRef("T1078"),),
                  description="account " + base64.b64encode(b"xx svc-backup-canary").decode())
    with pytest.raises(Refused) as caught:
        gate.stix(policy_for("amber", "sector"), Selection(alerts=[alert]), now=NOW)
    assert any("description" in hit.path and hit.object_id.startswith("sighting--") for hit in caught.value.hits)
    audit = [json.loads(line) for line in (tmp_path / AUDIT).read_text().splitlines()]
    assert [(e["path"], e["outcome"]) for e in audit] == [("stix", "released"), ("stix", "refused")]
    assert "svc-backup-canary" not in (tmp_path / AUDIT).read_text()


def test_references_follow_renamed_objects_and_objects_left_without_one_go() -> None:
    """Dropping an internal address removes it from the observations; an observation left with nothing is
    dropped, and so are the relationship and the sighting's reference that pointed at it; a Crypto-PAn address is
    renamed and its references follow; objects nothing touched come out as they went in."""
    internal = "ipv4-addr--00000000-0000-5000-8000-000000000001"
    public = "ipv4-addr--00000000-0000-5000-8000-000000000002"
    marking = ["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]

    def sdo(kind: str, n: int, **props: object) -> dict[str, object]:
        return {"type": kind, "spec_version": "2.1", "id": f"{kind}--00000000-0000-4000-8000-00000000000{n}",
                "created": "2026-11-29T03:00:00.000Z", "modified": "2026-11-29T03:00:00.000Z",
                "object_marking_refs": marking, **props}

    both = sdo("observed-data", 1, object_refs=[internal, public], number_observed=1)
    alone = sdo("observed-data", 2, object_refs=[internal], number_observed=1)
    pattern = sdo("attack-pattern", 3, name="T1078")
    sighting = sdo("sighting", 4, sighting_of_ref=pattern["id"], observed_data_refs=[alone["id"], both["id"]])
    related = sdo("relationship", 5, relationship_type="related-to", source_ref=alone["id"], target_ref=pattern["id"],
                  external_references=[{"source_name": "x", "description": "about " + internal}])
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "ipv4-addr", "spec_version": "2.1", "id": internal, "value": "10.1.2.3"},
        {"type": "ipv4-addr", "spec_version": "2.1", "id": public, "value": "198.51.100.7"},
        both, alone, pattern, sighting, related]}
    pseudo = Pseudonymiser(b"k" * 32)
    sector = Sanitiser(policy_for("amber", "sector"), known(), pseudo)
    out = {o["id"]: o for o in sector.bundle(bundle)["objects"]}
    assert sorted(out) == sorted([public, both["id"], pattern["id"], sighting["id"]])
    assert out[both["id"]]["object_refs"] == [public]
    assert out[sighting["id"]]["observed_data_refs"] == [both["id"]]
    assert out[pattern["id"]] == pattern and out[public]["value"] == "198.51.100.7"
    assert sector.report.dropped["observed-data-orphaned"] == 1 and sector.report.dropped["relationship-orphaned"] == 1
    assert both["object_refs"] == [internal, public]   # the input is not changed
    trusted = Sanitiser(policy_for("amber", "trusted"), known(), pseudo)
    out = {o["id"]: o for o in trusted.bundle(bundle)["objects"]}
    renamed = next(i for i, o in out.items() if o["type"] == "ipv4-addr" and i not in {internal, public})
    assert out[both["id"]]["object_refs"] == [renamed, public] and out[alone["id"]]["object_refs"] == [renamed]
    assert out[related["id"]]["source_ref"] == alone["id"]


def test_a_release_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    """The gate pauses the cyclic collector while it works; after a release or a refusal it is on again if it
    was on, and still off if the caller had switched it off."""
    import gc

    gate = EgressGate.in_workspace(tmp_path, "st-aurelia", known())
    leaky = Alert("sigma", "r", "x", "low", NOW, techniques=(AttackRef("T1078"),), description="via ehr-canary01")
    assert gc.isenabled()
    gate.stix(policy_for("amber", "sector"), Selection(indicators=canary_indicators()), now=NOW)
    assert gc.isenabled()
    blind = Sanitiser(policy_for("amber", "sector"), from_event_fields([]), Pseudonymiser(b"k" * 32))
    gate._sanitisers = {policy_for("amber", "sector"): blind}   # a sanitiser that knows nothing: the check refuses
    with pytest.raises(Refused):
        gate.stix(policy_for("amber", "sector"), Selection(alerts=[leaky]), now=NOW)
    assert gc.isenabled()
    gate._sanitisers = {}
    gc.disable()
    try:
        gate.stix(policy_for("amber", "sector"), Selection(indicators=canary_indicators()), now=NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("encode,label", [
    (lambda v: v, "plain"),
    (lambda v: v.upper(), "upper"),
    (lambda v: quote(v, safe=""), "url"),
    (lambda v: quote(v, safe="").lower(), "url-lower"),
    (lambda v: base64.b64encode(v.encode()).decode(), "base64@0"),
    (lambda v: base64.b64encode(b"x" + v.encode()).decode(), "base64@1"),
    (lambda v: base64.b64encode(b"xy" + v.encode() + b"tail").decode(), "base64@2"),
    (lambda v: base64.urlsafe_b64encode(b"prefix:" + v.encode()).decode(), "base64url"),
    (lambda v: base64.b64encode(v.encode("utf-16-le")).decode(), "base64-utf16"),
    (lambda v: v.encode("utf-16-le").decode("latin-1"), "utf-16le"),
])
def test_leak_check_finds_every_encoding(encode, label: str) -> None:
    checker = LeakChecker(known())
    for canary in (CANARY_PATIENT, CANARY_HOST, CANARY_USER, CANARY_ADDRESS):
        bundle = {"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "note", "id": "note--1", "content": f"see {encode(canary)} here"}]}
        hits = checker.check(bundle)
        assert hits, f"{canary} {label}"
        assert hits[0].object_id == "note--1" and hits[0].path == "$.objects[0].content"
        assert canary not in str(hits[0])  # the report never repeats the value


@pytest.mark.parametrize("before,after", [("", ""), ("a", ""), ("", "b"), ("ab", "c"), ("7", "f00d")])
def test_leak_check_finds_a_value_in_a_hex_run(before: str, after: str) -> None:
    """Hex of a value inside a longer run of hex digits, of even or odd length, at either nibble offset."""
    checker = LeakChecker(known())
    for canary in (CANARY_PATIENT, CANARY_USER):
        text = f"blob {before}{canary.encode().hex()}{after} end"
        assert [h.path for h in checker.check({"type": "note", "id": "note--1", "content": text})] == [
            "$.content"], (canary, before, after)


def test_leak_check_short_values_stand_alone() -> None:
    k = known()
    k.users.add("ana")
    checker = LeakChecker(k)
    assert not checker.check({"a": "analysis of banana"})
    assert checker.check({"a": "logon by ana at 10:00"})


@pytest.mark.parametrize("document,path", [
    ({"objects": [{"id": "x--1", "type": "x", "identity_ref": "identity--889900771"}]}, "$.objects[0].identity_ref"),
    ({"objects": [{"id": "x--1", "type": "x", "x_counts": {"889900771": 1}}]}, "$.objects[0].x_counts.889900771 (key)"),
    ({"objects": [{"id": "x--1", "type": "x", "number": 889900771}]}, "$.objects[0].number"),
    ({"objects": [{"id": "x--1", "type": "x", "hashes": {"n": [1, 889900771]}}]}, "$.objects[0].hashes.n[1]"),
    ({"objects": [{"id": "x--1", "type": "x", "name": "İstanbul ana"}]}, "$.objects[0].name"),
    ({"objects": [{"id": "x--1", "type": "x", "name": "ana"}]}, "$.objects[0].name"),
    ({"objects": [{"id": "x--1", "type": "x", "name": ["a", ("ana",)]}]}, "$.objects[0].name[1][0]"),
])
def test_leak_check_searches_every_string_key_and_number(document: dict[str, object], path: str) -> None:
    """The first pass searches each distinct string once (not the whole JSON text): values in identifiers,
    keys, numbers and lists under structural properties, at a string's edge and after a character whose lower
    case is longer, are found all the same, and traced to where they are."""
    k = known()
    k.users.add("ana")
    hits = LeakChecker(k).check(document)
    assert [h.path for h in hits] == [path]


def test_the_cheap_probes_never_skip_a_pattern_that_matches() -> None:
    """`triggered` decides which patterns run on a string: on crafted and random strings, every pattern that
    matches on its own is among them."""
    import re

    sanitiser = Sanitiser(policy_for("amber", "sector"), known(), Pseudonymiser(b"k" * 32))
    compiled = {name: re.compile(rx) for name, rx in sanitiser._patterns.items()}
    crafted = ["C:\\Users\\bob\\x.exe", "c:/documents and settings/eve", "HOSP\\jdoe", "AB-1\\x.y", "fe80::1",
               "::ffff:10.1.2.3", "a:b:c", "MRN: 12345", "medical record no. 77", "ACC#5550", "Patient_ID=ab12",
               "patient-0123456789abcdef", "PID|1||x", "x@corp.example", "10.0.0.1", "/home/ana/", "ehr1.sta.example"]
    rng = random.Random(5)
    alphabet = "aAcCdDeEfFiImMnNoOpPrRsStTuUx019:./\\|@#=_- "
    crafted += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 40))) for _ in range(20000)]
    crafted += [rng.choice(["C:\\Users\\", "patient no ", "D0M\\", "1:2:3", "acc-9"]) + text for text in crafted[:3000]]
    for text in crafted:
        names = triggered(text, text.lower(), sanitiser._suffix_probe)
        for name, rx in compiled.items():
            if rx.search(text):
                assert name in names, (name, text)


def test_scrubbing_from_the_earliest_match_equals_every_pattern_over_the_whole_text() -> None:
    """`scrub` runs only the probed patterns, and from where their first match can start: on crafted and random
    strings it gives what all patterns substituted over the whole text give, and reports the same kinds."""
    from healthswarm.share.sensitive import Sensitive

    patterns_only = Sensitive(networks=[ipaddress.ip_network("198.51.100.0/24")])  # no words: the patterns alone
    sanitiser = Sanitiser(policy_for("amber", "sector"), patterns_only, Pseudonymiser(b"k" * 32))
    every = sanitiser._regex_for(tuple(sanitiser._patterns))
    rng = random.Random(11)
    alphabet = "aAcCdDeEfFiImMnNoOpPrRsStTuUx0125789:./\\|@#=_- "
    pieces = ["C:\\Users\\bob", "patient no 12345", "HOSP\\jdoe", "fe80::1", "10.1.2.3", "198.51.100.7",
              "MRN 4455", "accession 9x88", "/home/eve/", "PID|1||x", "a@b.local", "ws1.corp", "1.2.3.4.5"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 60))) for _ in range(5000)]
    texts += [" ".join(rng.choice(pieces + texts[:50]) for _ in range(rng.randrange(1, 6))) for _ in range(5000)]
    for text in texts:
        expected: set[str] = set()
        whole = every.sub(lambda m, kinds=expected: sanitiser._regex_sub(m, kinds), text)
        assert sanitiser.scrub(text) == (whole, expected), text


@pytest.mark.parametrize("text", ["PATİENT ID: 12345678", "pc9.ſta.example", "C:\\Uſers\\bob\\x"])
def test_case_folded_letters_cannot_hide_a_shape(text: str) -> None:
    """Case-insensitive patterns fold "İ" and "ſ" onto ASCII letters a lower-cased probe would not see."""
    sanitiser = Sanitiser(policy_for("amber", "sector"), known(), Pseudonymiser(b"k" * 32))
    _scrubbed, kinds = sanitiser.scrub(text)
    assert kinds
    assert LeakChecker(known()).check({"type": "note", "id": "note--1", "content": text})


def test_json_escapes_cannot_hide_a_value() -> None:
    text = '{"type": "bundle", "objects": [{"id": "x--1", "type": "x", "d": "\\u0064r.canarysmith"}]}'
    assert LeakChecker(known()).check_text(text)


def test_policies() -> None:
    with pytest.raises(ValueError, match="may not go"):
        policy_for("red", "sector")
    with pytest.raises(ValueError, match="may not go"):
        policy_for("amber", "public")
    with pytest.raises(ValueError, match="trusted"):
        Policy("sector", "amber", addresses="cryptopan")
    public = sanitise(policy_for("clear", "public"))
    assert all("description" not in o for o in public["objects"] if o["type"] == "sighting")
    assert all(o["created"].endswith("T00:00:00.000Z") for o in public["objects"] if "created" in o
               and o["type"] != "marking-definition")
    assert all(o["content"] == "[withheld by sharing policy]" for o in public["objects"] if o["type"] == "note")
    names = [o.get("description", "") for o in sanitise(policy_for("amber", "sector"))["objects"]]
    assert any("user-" in n and "host-" in n and "patient-" in n for n in names)


def test_trusted_group_gets_prefix_preserving_addresses() -> None:
    clean = sanitise(policy_for("amber", "trusted"))
    addresses = [o["value"] for o in clean["objects"] if o["type"] == "ipv4-addr"]
    assert PUBLIC_IP in addresses and CANARY_ADDRESS not in addresses
    anonymised = [a for a in addresses if a != PUBLIC_IP]
    assert anonymised and all(ipaddress.ip_address(a) for a in anonymised)
    indicator_patterns = [o["pattern"] for o in clean["objects"] if o["type"] == "indicator"]
    assert not any(CANARY_ADDRESS in p for p in indicator_patterns)
    assert len(indicator_patterns) == 4  # 3 public + the internal address, anonymised


def test_pseudonyms_are_keyed_and_stable() -> None:
    a, b = Pseudonymiser(b"a" * 32), Pseudonymiser(b"b" * 32)
    assert a.token("user", "Alice") == a.token("user", "alice") != b.token("user", "alice")
    assert a.token("user", "alice").startswith("user-") and "alice" not in a.token("user", "alice")


def test_cryptopan_reference_vectors() -> None:
    cp = CryptoPAn(CRYPTOPAN_KEY)
    for original, anonymised in CRYPTOPAN_VECTORS:
        assert cp.anonymise(original) == anonymised


def test_cryptopan_preserves_prefixes() -> None:
    cp = CryptoPAn(b"\x07" * 32)
    rng = random.Random(7)
    for _ in range(200):
        a = rng.getrandbits(32)
        shared = rng.randrange(33)
        b = a ^ (1 << (31 - shared)) if shared < 32 else a
        if shared < 32:
            b ^= rng.getrandbits(31 - shared) if shared < 31 else 0
        xa = int(ipaddress.IPv4Address(cp.anonymise(str(ipaddress.IPv4Address(a)))))
        xb = int(ipaddress.IPv4Address(cp.anonymise(str(ipaddress.IPv4Address(b)))))
        common = 32 - (a ^ b).bit_length()
        assert 32 - (xa ^ xb).bit_length() == common
