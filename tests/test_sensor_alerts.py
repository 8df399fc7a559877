"""Suricata signatures and Zeek notices become alerts with levels, ATT&CK references and entities."""

from __future__ import annotations

from conftest import shared
from healthswarm.demo import LOGS
from healthswarm.detect.sensor import SensorAlertDetector
from healthswarm.ingest.formats import get_format
from healthswarm.model import Event


def events_of(fmt: str, path) -> list[Event]:  # type: ignore[no-untyped-def]
    with path.open("rb") as stream:
        return [e for e in get_format(fmt).parse(stream, str(path)) if isinstance(e, Event)]


def test_suricata_alerts_of_the_demo_scenario() -> None:
    events = events_of("suricata", LOGS / "suricata-eve.json")
    detector = SensorAlertDetector()
    alerts = [a for e in events for a in detector.detect(e)]
    assert len(alerts) == sum(e.fields.get("event.kind") == "alert" for e in events) == 3
    beacon = next(a for a in alerts if "Cobalt Strike" in a.title)
    assert beacon.level == "high" and beacon.rule_id == "suricata:2023883"
    assert [t.id for t in beacon.techniques] == ["T1071.001"]
    assert [t.id for t in beacon.tactics] == ["TA0011"]
    assert "198.51.100.77" in beacon.details["entities"]["ip"]
    assert {a.level for a in alerts} == {"high", "medium"}
    assert detector.flush() == []


def test_attack_names_come_from_the_attack_data() -> None:
    shared("attack", "enterprise-attack.json")
    event = next(e for e in events_of("suricata", LOGS / "suricata-eve.json") if "Cobalt" in str(e.fields))
    (alert,) = SensorAlertDetector().detect(event)
    assert alert.techniques[0].name == "Web Protocols" and alert.tactics[0].name == "Command and Control"


def test_real_suricata_and_zeek_samples() -> None:
    detector = SensorAlertDetector()
    eve = events_of("suricata", shared("suricata", "eve-2.json"))
    raised = [a for e in eve for a in detector.detect(e)]
    assert raised and len(raised) == sum(e.fields.get("event.kind") == "alert" for e in eve)
    assert all(a.detector == "suricata" and a.title for a in raised)
    notices = events_of("zeek", shared("zeek", "notice.log"))
    raised = [a for e in notices for a in detector.detect(e)]
    assert len(raised) == len(notices) and all(a.detector == "zeek" for a in raised)
