"""The healthcare rule pack: each rule fires on events built from the real FHIR / HL7 samples, DICOM association
events and IoMT telemetry, read through the real parsers, and stays quiet on the unmodified or benign ones."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import shared
from healthswarm.detect.sigma import HEALTHCARE_RULES, SigmaDetector, load_rules
from healthswarm.model import Alert, Event
from sigma_support import ecs_event

FACILITIES = {"hl7_known_facilities": ["GHHSFacility", "XYZHOSPITAL", "MDHHS", "NISTEHRFAC"],
              "dicom_known_ae_titles": ["PACS_MAIN", "VIEWER_ICU"]}


@pytest.fixture(scope="module")
def pack() -> Any:
    ruleset = load_rules([HEALTHCARE_RULES], placeholders=FACILITIES)
    assert not ruleset.problems, [str(p) for p in ruleset.problems]
    return ruleset


def fresh(pack: Any) -> SigmaDetector:
    return SigmaDetector(pack)


def titles(alerts: list[Alert]) -> list[str]:
    return sorted(a.title for a in alerts)


def run(detector: SigmaDetector, events: list[Event]) -> list[Alert]:
    out: list[Alert] = []
    for event in events:
        out.extend(detector.detect(event))
    return out + detector.flush()


def parse(fmt_name: str, data: bytes, source: str = "sample") -> list[Event]:
    import io

    from healthswarm.ingest.formats import get_format

    try:
        fmt = get_format(fmt_name)
    except (ImportError, KeyError):
        pytest.skip(f"the {fmt_name} parser is not there yet")
    return [e for e in fmt.parse(io.BytesIO(data), source) if isinstance(e, Event)]


def fhir_sample(name: str) -> dict[str, Any]:
    return json.loads(shared("fhir", name).read_text(encoding="utf-8"))


def fhir_events(*resources: dict[str, Any]) -> list[Event]:
    data = b"\n".join(json.dumps(r).encode() for r in resources) + b"\n"
    return parse("fhir", data)


def test_pack_loads_with_ids_levels_and_attack_names(pack: Any) -> None:
    assert len(pack.rules) >= 10 and len(pack.correlations) >= 3
    for rule in pack.rules + pack.correlations:
        assert rule.meta.id and rule.meta.level in ("informational", "low", "medium", "high", "critical")
    tagged = [r for r in pack.rules + pack.correlations if r.meta.level != "informational"]
    assert all(r.meta.techniques for r in tagged), "every alerting rule names an ATT&CK technique"


def test_pack_without_placeholder_values_lists_those_rules(tmp_path: Path) -> None:
    ruleset = load_rules([HEALTHCARE_RULES])
    assert sorted(Path(p.location.file).name for p in ruleset.problems) == [
        "dicom_cmove_unknown_destination.yml", "hl7_unexpected_sending_facility.yml"]


# --- FHIR -------------------------------------------------------------------------------------

def test_fhir_bulk_export_by_a_person(pack: Any) -> None:
    rest = fhir_sample("AuditEvent-example-rest.json")
    export = copy.deepcopy(rest)
    export["subtype"][0].update(code="$export", display="$export")
    assert titles(run(fresh(pack), fhir_events(export))) == ["FHIR Bulk Data Export by a Non-Service Account"]
    service = copy.deepcopy(export)
    service["agent"][0]["role"] = [{"text": "Service account"}]
    assert run(fresh(pack), fhir_events(service)) == []
    assert run(fresh(pack), fhir_events(rest)) == [], "a plain vread is no export"


def test_fhir_break_the_glass(pack: Any) -> None:
    rest = fhir_sample("AuditEvent-example-rest.json")
    btg = copy.deepcopy(rest)
    btg["agent"][0]["purposeOfUse"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                     "code": "BTG"}]}]
    assert "FHIR Break-the-Glass Access" in titles(run(fresh(pack), fhir_events(btg)))
    assert "FHIR Break-the-Glass Access" not in titles(run(fresh(pack), fhir_events(rest)))


def test_fhir_disclosure_for_marketing_on_the_real_sample(pack: Any) -> None:
    disclosure = fhir_sample("AuditEvent-example-disclosure.json")
    alerts = run(fresh(pack), fhir_events(disclosure))
    assert titles(alerts) == ["FHIR Disclosure of Health Data for Marketing"]
    assert alerts[0].techniques[0].id == "T1567"
    assert run(fresh(pack), fhir_events(fhir_sample("AuditEvent-example-search.json"))) == []


def test_fhir_access_without_care_purpose(pack: Any) -> None:
    rest = fhir_sample("AuditEvent-example-rest.json")

    def with_purpose(code: str) -> dict[str, Any]:
        out = copy.deepcopy(rest)
        out["agent"][0]["purposeOfUse"] = [{"coding": [{"code": code}]}]
        return out

    title = "FHIR Patient Record Access Without a Care-Relationship Purpose"
    assert title in titles(run(fresh(pack), fhir_events(with_purpose("HSYSADMIN"))))
    assert title not in titles(run(fresh(pack), fhir_events(with_purpose("TREAT"))))
    assert title not in titles(run(fresh(pack), fhir_events(rest))), "no declared purpose: no signal"


def _reads(user: str, patients: int, spacing: float) -> list[dict[str, Any]]:
    rest = fhir_sample("AuditEvent-example-rest.json")
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    out = []
    for i in range(patients):
        r = copy.deepcopy(rest)
        r["id"] = f"read-{user}-{i}"
        r["recorded"] = (start + timedelta(seconds=i * spacing)).isoformat()
        r["agent"][0]["who"]["identifier"]["value"] = user
        r["entity"][0]["what"]["reference"] = f"Patient/p{i:04d}"
        out.append(r)
    return out


def test_fhir_mass_patient_reads(pack: Any) -> None:
    title = "FHIR Mass Patient Record Reads by One Account"
    snooping = run(fresh(pack), fhir_events(*_reads("nurse7", 60, 5)))
    hits = [a for a in snooping if a.title == title]
    assert len(hits) == 1 and len(hits[0].events) == 50
    assert all(a.title != "FHIR Patient Record Read" for a in snooping), "informational input rule is silent"
    assert title not in titles(run(fresh(pack), fhir_events(*_reads("nurse8", 30, 5))))
    assert title not in titles(run(fresh(pack), fhir_events(*_reads("nurse9", 60, 30)))), "spread over 30 min"


# --- HL7 --------------------------------------------------------------------------------------

def hl7(name: str) -> list[Event]:
    return parse("hl7", shared("hl7v2", name).read_bytes(), name)


def hl7_all() -> list[Event]:
    return [e for p in sorted(shared("hl7v2").glob("*.hl7")) for e in hl7(p.name)]


def test_hl7_rules_on_the_real_samples(pack: Any) -> None:
    events = hl7_all()
    by_title: dict[str, set[str]] = {}
    for event in events:
        for alert in fresh(pack).detect(event):
            by_title.setdefault(alert.title, set()).add(str(event.get("hl7.sending_facility")))
    unexpected = by_title.get("HL7 Message From an Unexpected Sending Facility", set())
    assert "NINTENDO" in unexpected and "Ntierprise Clinic" in unexpected
    assert not unexpected & set(FACILITIES["hl7_known_facilities"])
    assert "HL7 Training or Debug Message on a Production Interface" in by_title
    assert "HL7 Patient Identity Merge or Identifier Change" in by_title


def test_hl7_test_message_rule_is_specific(pack: Any) -> None:
    events = hl7_all()
    production = [e for e in events if e.get("hl7.processing_id") == "P"]
    assert production
    for event in production:
        assert "HL7 Training or Debug Message on a Production Interface" not in titles(fresh(pack).detect(event))


def test_hl7_adt_flood(pack: Any) -> None:
    message = shared("hl7v2", "ADT-A04-01.hl7").read_bytes().strip() + b"\r"
    title = "HL7 ADT Message Flood From One Facility"
    flood = parse("hl7", message * 120)
    assert len(flood) == 120
    assert [a.title for a in run(fresh(pack), flood)].count(title) == 1
    assert title not in titles(run(fresh(pack), parse("hl7", message * 40)))


# --- DICOM and IoMT: association events and telemetry as their parsers read them ---------------------

def dicom(command: str, ip: str = "10.20.0.5", destination: str | None = None, second: int = 0) -> bytes:
    record: dict[str, Any] = {"ts": (datetime(2026, 3, 1, 2, 0, tzinfo=UTC) + timedelta(seconds=second)).isoformat(),
                              "calling_ae": "WS17", "called_ae": "PACS_MAIN", "src_ip": ip, "dst_ip": "10.20.9.9",
                              "dst_port": 104, "command": command, "status": 0}
    if destination:
        record["move_destination"] = destination
    return json.dumps(record).encode() + b"\n"


def dicom_events(*lines: bytes) -> list[Event]:
    events = parse("dicom", b"".join(lines))
    assert len(events) == len(lines)
    return events


def test_dicom_query_sweep(pack: Any) -> None:
    title = "DICOM C-FIND Sweep From One Source"
    sweep = dicom_events(*(dicom("C-FIND", second=i) for i in range(60)))
    assert titles(run(fresh(pack), sweep)).count(title) == 1
    few = dicom_events(*(dicom("C-FIND", second=i * 20) for i in range(30)))
    assert title not in titles(run(fresh(pack), few))


def test_dicom_cmove_to_unknown_ae(pack: Any) -> None:
    title = "DICOM C-MOVE to an Unknown AE Title"
    assert titles(run(fresh(pack), dicom_events(dicom("C-MOVE", destination="EVIL_AE")))) == [title]
    assert run(fresh(pack), dicom_events(dicom("C-MOVE", destination="pacs_main"))) == []
    assert run(fresh(pack), dicom_events(dicom("C-STORE"))) == []


def telemetry(status: str, hour: int) -> list[Event]:
    record = {"device_id": "pump-icu-03", "device_type": "infusion_pump", "status": status,
              "ts": datetime(2026, 3, 1, hour, 30, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
              "firmware": "4.2.1", "metrics": {"rate_ml_h": 12.5}}
    return parse("iomt-json", json.dumps(record).encode() + b"\n")


def test_iomt_change_outside_maintenance(pack: Any) -> None:
    title = "Medical Device Firmware or Configuration Change Outside the Maintenance Window"
    alerts = run(fresh(pack), telemetry("firmware_update", 14))
    assert titles(alerts) == [title]
    assert run(fresh(pack), telemetry("firmware_update", 2)) == [], "inside the maintenance window"
    assert run(fresh(pack), telemetry("running", 14)) == []
    assert titles(run(fresh(pack), [ecs_event({"observer.type": "iomt", "event.action": "configuration-change",
                                               "asset.id": "pump-icu-03"},
                                              when=datetime(2026, 3, 1, 9, tzinfo=UTC))])) == [title]
