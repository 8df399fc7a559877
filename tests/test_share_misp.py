"""MISP feeds: a sanitised bundle written as a feed and read back; a feed in MISP's own shape read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthswarm.errors import InputError
from healthswarm.model import Alert, AttackRef, Indicator
from healthswarm.share.egress import EgressGate, Selection
from healthswarm.share.misp import read_feed, write_feed
from healthswarm.share.sanitise import policy_for
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import TrustStore, verify_document

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def test_bundle_to_feed_and_back(tmp_path: Path) -> None:
    indicators = [Indicator("evil.example", "domain", NOW, NOW), Indicator("203.0.113.9", "ipv4", NOW, NOW),
                  Indicator("a" * 64, "sha256", NOW, NOW), Indicator("CVE-2020-25165", "cve", NOW, NOW)]
    alerts = [Alert("sigma", "r", "Lateral movement", "high", NOW, techniques=(AttackRef("T1021.002", "SMB"),))]
    gate = EgressGate.in_workspace(tmp_path / "ws", "org-x", Sensitive())
    released = gate.misp(policy_for("green", "sector"), Selection(alerts=alerts, indicators=indicators), now=NOW,
                         pap="amber")
    assert write_feed(tmp_path, released) == 1
    event_uuid = released.payload[0]
    # the event file is what the gate signed; a peer verifies it like a bundle
    assert TrustStore(tmp_path / "t.json").trust("x", gate.keys.public_text) and verify_document(
        json.loads((tmp_path / f"{event_uuid}.json").read_text()), TrustStore(tmp_path / "t.json"), now=NOW).name == "x"
    with pytest.raises(TypeError):
        write_feed(tmp_path, gate.taxii(policy_for("green", "sector"), Selection(indicators=indicators), now=NOW))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest[event_uuid]["Tag"][0] == {"name": "tlp:green"}
    assert len((tmp_path / "hashes.csv").read_text().splitlines()) == 4
    back = {(i.type, i.value): i for i in read_feed(tmp_path)}
    assert set(back) == {("domain", "evil.example"), ("ipv4", "203.0.113.9"), ("sha256", "a" * 64),
                         ("cve", "CVE-2020-25165")}
    domain = back[("domain", "evil.example")]
    assert domain.tlp == "green" and domain.extra["pap"] == "amber" and domain.techniques == ("T1021.002",)


def test_reads_a_feed_in_misps_shape(tmp_path: Path) -> None:
    event_uuid = "5e7b3a5c-0b6c-4b5a-9d3e-0242ac120002"
    event = {"Event": {
        "uuid": event_uuid, "info": "Ransomware C2", "date": "2026-11-20", "timestamp": "1763600000",
        "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "Tag": [{"name": "tlp:white"}, {"name": "PAP:GREEN"},
                {"name": 'misp-galaxy:mitre-attack-pattern="Data Encrypted for Impact - T1486"'}],
        "Attribute": [
            {"uuid": "a1", "type": "ip-dst|port", "value": "198.51.100.1|443", "timestamp": "1763600000"},
            {"uuid": "a2", "type": "ip-dst", "value": "198.51.100.2", "timestamp": "1763600000",
             "Tag": [{"name": "tlp:amber"}]},
            {"uuid": "a3", "type": "domain", "value": "Bad.Example", "first_seen": "2026-11-19T10:00:00Z",
             "last_seen": "2026-11-20T10:00:00Z"},
            {"uuid": "a4", "type": "comment", "value": "seen at two hospitals"},
        ]}}
    (tmp_path / "manifest.json").write_text(json.dumps({event_uuid: {"info": "Ransomware C2"}}))
    (tmp_path / f"{event_uuid}.json").write_text(json.dumps(event))
    got = read_feed(tmp_path)
    assert [(i.type, i.value, i.tlp) for i in got] == [("ipv4", "198.51.100.1", "clear"),
                                                       ("ipv4", "198.51.100.2", "amber"),
                                                       ("domain", "bad.example", "clear")]
    assert got[2].first_seen == datetime(2026, 11, 19, 10, tzinfo=UTC) and got[2].techniques == ("T1486",)
    assert got[0].source == "misp:55f6ea5e-2c60-40e5-964f-47a8950d210f"


def test_bad_feeds_name_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"manifest\.json: missing"):
        read_feed(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"e1": {}, "e2": {}}))
    (tmp_path / "e1.json").write_text("{not json")
    (tmp_path / "e2.json").write_text(json.dumps({"Event": {"Attribute": [
        {"type": "ip-dst", "value": "1.2.3.4", "first_seen": "yesterday"}]}}))
    with pytest.raises(InputError) as caught:
        read_feed(tmp_path)
    text = [str(p) for p in caught.value.problems]
    assert any("e1.json" in t and "not a MISP event" in t for t in text)
    assert any("e2.json: Event.Attribute[0]" in t for t in text)
