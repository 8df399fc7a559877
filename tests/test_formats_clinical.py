"""Clinical formats: HL7 v2, FHIR R4 AuditEvent, DICOM (Part 10 files and association events)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from conftest import shared
from healthswarm.ingest.formats.dicom import FORMAT as DICOM
from healthswarm.ingest.formats.fhir import FORMAT as FHIR
from healthswarm.ingest.formats.hl7v2 import FORMAT as HL7
from healthswarm.ingest.formats.hl7v2 import parse_dtm
from healthswarm.model import Event, Reject


def parse(fmt, data: bytes, start: int = 0) -> list[Event | Reject]:
    return list(fmt.parse(io.BytesIO(data), "test", start))


def parse_file(fmt, path: Path | str, start: int = 0) -> list[Event | Reject]:
    with open(path, "rb") as stream:
        return list(fmt.parse(stream, str(path), start))


def rejects(items: list) -> list[Reject]:
    return [i for i in items if isinstance(i, Reject)]


def hl7_files() -> list[Path]:
    files = sorted(shared("hl7v2").glob("*.hl7"))
    assert len(files) == 98
    return files


# -- HL7 v2 ---------------------------------------------------------------------------------------


def test_every_hl7_sample_parses() -> None:
    total = 0
    for path in hl7_files():
        items = parse_file(HL7, path)
        assert len(items) == 1 and not rejects(items), (path, items)
        event = items[0]
        assert event.timestamp.tzinfo is not None and event.timestamp.utcoffset().total_seconds() == 0
        assert event.fields["hl7.message_type"] and event.fields["hl7.control_id"]
        assert event.position == path.stat().st_size
        assert HL7.sniff(path.read_bytes()[:65536], path.name) > 0.9
        total += 1
    assert total == 98


def test_hl7_fields_and_patient_separation() -> None:
    path = shared("hl7v2", "ADT-A02-02.hl7")
    (event,) = parse_file(HL7, path)
    f = event.fields
    assert f["hl7.message_type"] == "ADT^A02"
    assert f["hl7.trigger_event"] == "A02" and f["hl7.message_structure"] == "ADT_A02"
    assert f["hl7.control_id"] == "MSG00001"
    assert f["hl7.version"] == "2.8"
    assert f["hl7.sending_application"] == "ADTApp" and f["hl7.sending_facility"] == "GHHSFacility"
    assert f["hl7.receiving_application"] == "EHRApp" and f["hl7.receiving_facility"] == "GHHRFacility"
    assert f["event.action"] == "transfer"
    # MSH-7 198908181126+0215 → 09:11 UTC
    assert event.timestamp == datetime(1989, 8, 18, 9, 11, tzinfo=UTC)
    assert f["patient.id"] == "PATID1234"
    assert f["patient.mrn"] == "PATID1234"
    ids = [i["id"] for i in f["patient.identifiers"]]
    assert ids[:2] == ["PATID1234", "123456789"] and "1234567" in ids and "PATID567" in ids
    assert f["patient.name"] == "EVERYMAN, ADAM A"
    # the name and identifiers appear in no other field
    for key, value in f.items():
        if not key.startswith("patient."):
            assert "EVERYMAN" not in str(value) and "PATID1234" not in str(value), key
    assert event.original.startswith("MSH|^~\\&|ADTApp|")


def test_hl7_bom_and_zone_less_time_is_utc() -> None:
    (event,) = parse_file(HL7, shared("hl7v2", "LAB-ORU-1.hl7"))
    assert event.fields["hl7.message_type"] == "ORU^R01"
    assert event.fields["patient.name"] == "DUCK, DONALD D"
    assert event.timestamp == datetime(2014, 10, 5, 23, 45, tzinfo=UTC)  # 20141006064500+0700
    assert parse_dtm("20260301101500") == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert parse_dtm("20260301101500.1234-0500") == datetime(2026, 3, 1, 15, 15, 0, 123400, tzinfo=UTC)
    assert parse_dtm("202603") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_dtm("2026-03-01") is None and parse_dtm("20261301") is None


def samples_as_messages(count: int) -> list[bytes]:
    return [p.read_bytes().removeprefix(b"\xef\xbb\xbf").strip() for p in hl7_files()[:count]]


@pytest.mark.parametrize("separator", [b"\r", b"\n", b"\r\n"])
def test_hl7_many_messages_per_file_any_segment_separator(separator: bytes) -> None:
    messages = [m.replace(b"\n", separator) for m in samples_as_messages(5)]
    data = separator.join(messages) + separator
    items = parse(HL7, data)
    assert len(items) == 5 and not rejects(items)
    assert items[-1].position == len(data)
    assert [i.fields["hl7.control_id"] for i in items] == [parse(HL7, m)[0].fields["hl7.control_id"] for m in messages]
    resumed = parse(HL7, data, start=items[1].position)
    assert [i.position for i in resumed] == [i.position for i in items[2:]]


def test_hl7_mllp_stream() -> None:
    messages = [m.replace(b"\n", b"\r") for m in samples_as_messages(4)]
    data = b"".join(b"\x0b" + m + b"\r\x1c\r" for m in messages)
    items = parse(HL7, data)
    assert len(items) == 4 and not rejects(items)
    assert "\x0b" not in items[0].original and "\x1c" not in items[0].original
    assert items[-1].position == len(data)
    assert HL7.sniff(data[:65536]) > 0.9
    resumed = parse(HL7, data, start=items[0].position)
    assert [i.fields["hl7.control_id"] for i in resumed] == [i.fields["hl7.control_id"] for i in items[1:]]


def test_hl7_bad_input() -> None:
    good = samples_as_messages(1)[0]
    wrong_delimiters = good.replace(b"|", b",", 0).replace(b"\nPID|", b"\nPID,")
    items = parse(HL7, wrong_delimiters)
    assert isinstance(items[0], Reject) and "wrong delimiters" in items[0].reason
    broken_encoding = b"MSH|^^\\&|A|B|C|D|20260301||ADT^A01|1|P|2.5\rPID|1||42\r"
    (bad,) = parse(HL7, broken_encoding)
    assert isinstance(bad, Reject) and "MSH-2 encoding characters" in bad.reason
    no_msh = b"PID|1||42^^^H^MR||DOE^JOHN\rPV1|1|I\r" + good
    items = parse(HL7, no_msh)
    assert isinstance(items[0], Reject) and "MSH" in items[0].reason and isinstance(items[1], Event)
    latin1 = b"MSH|^~\\&|A|B|C|D|20260301||ADT^A01|1|P|2.5\rPID|1||42||M\xfcller^Hans\r"
    (bad,) = parse(HL7, latin1)
    assert isinstance(bad, Reject) and "not valid UTF-8" in bad.reason
    declared = b"MSH|^~\\&|A|B|C|D|20260301||ADT^A01|1|P|2.5||||||8859/1\rPID|1||42||M\xfcller^Hans\r"
    (ok,) = parse(HL7, declared)
    assert isinstance(ok, Event) and ok.fields["patient.name"] == "Müller, Hans"
    bad_time = b"MSH|^~\\&|A|B|C|D|yesterday||ADT^A01|1|P|2.5\r"
    (bad,) = parse(HL7, bad_time)
    assert isinstance(bad, Reject) and "MSH-7" in bad.reason


def test_hl7_each_bad_message_is_one_reject() -> None:
    """issue 17: 4 bad messages gave 2 quarantine rows (garbage glued to the message before it)."""
    good = [m.replace(b"\n", b"\r") for m in samples_as_messages(2)]
    bad = [
        b"MSH|^~\\&|A|B|C|D|yesterday||ADT^A01|1|P|2.5\rPID|1||42",  # a message with a bad MSH-7
        b"\x00\xff\xfe binary junk",  # not a segment
        b"MSH|^^\\&|A|B|C|D|20260301||ADT^A01|2|P|2.5",  # bad encoding characters
        b"the interface engine restarted at 10:42",  # prose
    ]
    data = b"\n".join([good[0], bad[0], bad[1], good[1], bad[2], bad[3]]) + b"\n"
    items = parse(HL7, data)
    assert [type(i).__name__ for i in items] == ["Event", "Reject", "Reject", "Event", "Reject", "Reject"]
    assert len({i.position for i in items}) == len(items)
    assert "MSH-7" in items[1].reason and "not an HL7 segment" in items[2].reason
    assert "MSH-2" in items[4].reason and "not an HL7 segment" in items[5].reason


def test_hl7_pv1_and_sending_application_fields() -> None:
    message = (b"MSH|^~\\&|EPIC|STA^1.2.3^ISO|LIS|LAB|20260301101500||ADT^A02|77|P|2.5\r"
               b"PID|1||42^^^STA^MR||DOE^JANE\r"
               b"PV1|1|I|ICU^12^B^STA^^^Main^3|||ER^1^A|1234^WELBY^MARCUS^J^^DR|5678^HOUSE^GREGORY||MED|||||||"
               b"9012^QUINN^MICHAELA\r")
    (event,) = parse(HL7, message)
    f = event.fields
    assert f["hl7.sending_application"] == "EPIC" and f["hl7.sending_facility"] == "STA"
    assert f["hl7.patient_class"] == "I" and f["hl7.hospital_service"] == "MED"
    assert f["hl7.location"] == "ICU^12^B^STA^^^Main^3"
    assert (f["hl7.location.ward"], f["hl7.location.room"], f["hl7.location.bed"]) == ("ICU", "12", "B")
    assert (f["hl7.location.facility"], f["hl7.location.building"], f["hl7.location.floor"]) == ("STA", "Main", "3")
    assert (f["hl7.attending_doctor.id"], f["hl7.attending_doctor.name"]) == ("1234", "WELBY, MARCUS J")
    assert (f["hl7.referring_doctor.id"], f["hl7.referring_doctor.name"]) == ("5678", "HOUSE, GREGORY")
    assert (f["hl7.admitting_doctor.id"], f["hl7.admitting_doctor.name"]) == ("9012", "QUINN, MICHAELA")
    assert not any("DOE" in str(v) for k, v in f.items() if not k.startswith("patient."))


@pytest.mark.parametrize("fmt", [FHIR, DICOM], ids=lambda f: f.name)
def test_json_lines_bad_records_are_one_reject_each(fmt) -> None:
    """issue 17: `[1,2,3]` was neither stored nor quarantined; a cut line and a binary line were one row."""
    good = (orjson.dumps(orjson.loads(shared("fhir", "AuditEvent-example-login.json").read_bytes())) if fmt is FHIR
            else b'{"ts": "2026-03-01T10:15:00Z", "calling_ae": "CT1", "called_ae": "PACS", "command": "C-FIND"}')
    data = b"\n".join([good, b"[1,2,3]", good, b'{"a": 1, "b', b"\x00\xff\xfe binary \x81", b'{"a": 1, ', b"[4]",
                       good]) + b"\n"
    items = parse(fmt, data)
    assert [type(i).__name__ for i in items] == ["Event", "Reject", "Event", "Reject", "Reject", "Reject", "Reject",
                                                 "Event"], [getattr(i, "reason", "") for i in items]
    assert len({i.position for i in items}) == len(items)


# -- FHIR -----------------------------------------------------------------------------------------


def audit_event_files() -> list[Path]:
    files = sorted(shared("fhir").glob("AuditEvent-*.json"))
    assert len(files) == 9
    return files


def test_every_fhir_audit_event_parses() -> None:
    for path in audit_event_files():
        items = parse_file(FHIR, path)
        assert len(items) == 1 and isinstance(items[0], Event), (path, items)
        event = items[0]
        assert event.original["resourceType"] == "AuditEvent"
        assert event.timestamp.utcoffset().total_seconds() == 0
        assert event.fields["event.outcome"] in ("success", "failure")
        assert FHIR.sniff(path.read_bytes()[:65536], path.name) > 0.9


def test_fhir_wrong_resource_types_are_rejected() -> None:
    wrong = [p for p in sorted(shared("fhir").glob("*.json")) if not p.name.startswith(("AuditEvent", "package"))]
    assert len(wrong) == 9
    for path in wrong:
        (item,) = parse_file(FHIR, path)
        kind = orjson.loads(path.read_bytes())["resourceType"]
        assert isinstance(item, Reject)
        assert item.reason == f"resourceType {kind}, expected AuditEvent, Encounter or CareTeam (or a Bundle of them)"
        assert item.raw


def test_fhir_field_spot_checks() -> None:
    (login,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-login.json"))
    f = login.fields
    assert (f["user.id"], f["user.name"]) == ("95", "Grahame Grieve")
    assert f["source.ip"] == "127.0.0.1" and f["event.action"] == "login" and f["event.outcome"] == "success"
    assert f["observer.name"] == "hl7connect.healthintersections.com.au"
    assert login.timestamp == datetime(2013, 6, 20, 23, 41, 23, tzinfo=UTC)
    (rest,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-rest.json"))
    assert rest.fields["event.action"] == "vread" and rest.fields["patient.id"] == "example"
    assert rest.fields["source.domain"] == "Workstation1.ehr.familyclinic.com"
    (search,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-search.json"))
    assert search.fields["event.action"] == "search"
    assert search.fields["url.original"] == "http://fhir-dev.healthintersections.com.au/open/Encounter?participant=13"
    (error,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-error.json"))
    assert error.fields["event.outcome"] == "failure" and error.fields["event.action"] == "create"
    (media,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-media.json"))
    assert media.fields["patient.id"] == "e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO"
    (disclosure,) = parse_file(FHIR, shared("fhir", "AuditEvent-example-disclosure.json"))
    assert disclosure.fields["fhir.purpose_of_use"] == ["HMARKT"]
    assert disclosure.fields["destination.domain"] == "marketing.land"
    (example,) = parse_file(FHIR, shared("fhir", "AuditEvent-example.json"))
    assert example.timestamp == datetime(2012, 10, 25, 11, 4, 27, tzinfo=UTC)  # +11:00 → UTC


def break_the_glass_read() -> dict:
    event = orjson.loads(shared("fhir", "AuditEvent-example-rest.json").read_bytes())
    event["id"] = "btg-1"
    event["subtype"] = [{"system": "http://hl7.org/fhir/restful-interaction", "code": "search"}]
    event["agent"][0]["purposeOfUse"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG"}]}
    ]
    event["agent"][0]["network"] = {"address": "10.20.30.40", "type": "2"}
    event["entity"] = [
        {
            "what": {"reference": "Patient/p-778"},
            "query": "aHR0cHM6Ly9laHIvZmhpci9PYnNlcnZhdGlvbj9wYXRpZW50PXAtNzc4JmNvZGU9ODg2Ny00",
        }
    ]
    return event


def test_fhir_bundle_ndjson_break_the_glass_and_url_masking() -> None:
    btg = break_the_glass_read()
    login = orjson.loads(shared("fhir", "AuditEvent-example-login.json").read_bytes())
    provenance = orjson.loads(shared("fhir", "Provenance-example.json").read_bytes())
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": btg}, {"resource": provenance}, {"resource": login}],
    }
    items = parse(FHIR, orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n")
    assert [type(i).__name__ for i in items] == ["Event", "Reject", "Event"]
    assert items[1].reason == ("Bundle entry 2: resourceType Provenance, expected AuditEvent, Encounter or CareTeam "
                               "(or a Bundle of them)")
    assert len({i.position for i in items}) == 3  # one idempotency position per entry
    f = items[0].fields
    assert f["fhir.break_the_glass"] is True and "BTG" in f["fhir.purpose_of_use"]
    assert f["patient.id"] == "p-778" and f["source.ip"] == "10.20.30.40" and f["event.action"] == "search"
    # https://ehr/fhir/Observation?patient=p-778&code=8867-4, the patient id kept out of url.original
    assert f["url.original"] == "https://ehr/fhir/Observation?patient=[patient]&code=8867-4"
    assert all("p-778" not in str(v) for k, v in f.items() if not k.startswith("patient."))
    # NDJSON and resuming inside it
    ndjson = b"".join(orjson.dumps(r) + b"\n" for r in (btg, login, btg))
    lines = parse(FHIR, ndjson)
    assert len(lines) == 3 and not rejects(lines) and lines[-1].position == len(ndjson)
    assert [i.position for i in parse(FHIR, ndjson, start=lines[0].position)] == [i.position for i in lines[1:]]
    # resuming inside a Bundle (a checkpoint between its entries) re-reads it and skips what was done
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
    again = parse(FHIR, data, start=items[0].position)
    assert [i.position for i in again] == [i.position for i in items[1:]]


def test_fhir_bad_input() -> None:
    truncated = shared("fhir", "AuditEvent-example-login.json").read_bytes()[:-30]
    (item,) = parse(FHIR, truncated)
    assert isinstance(item, Reject) and "truncated JSON" in item.reason
    (item,) = parse(FHIR, b'{"resourceType": "AuditEvent", "recorded": "not a time"}\n')
    assert isinstance(item, Reject) and "AuditEvent.recorded" in item.reason
    (item,) = parse(FHIR, b'["a"]\n')
    assert isinstance(item, Reject) and "expected a FHIR resource" in item.reason


# -- DICOM ----------------------------------------------------------------------------------------

# pydicom's test files that are not DICOM Part 10 (no preamble + DICM) — each must become a Reject
NOT_PART10 = {
    "rtstruct.dcm", "rtplan.dump", "zipMR.gz", "rtstruct.dump", "crayons.icc", "README.txt", "test_PN.json",
    "ExplVR_LitEndNoMeta.dcm", "test1.json", "ExplVR_BigEndNoMeta.dcm", "no_meta.dcm", "README",
}  # fmt: skip
# Part 10 files that pydicom ships broken on purpose: cut short, or without a transfer syntax — refused with why
BROKEN_PART10 = {"rtplan_truncated.dcm", "MR_truncated.dcm", "meta_missing_tsyntax.dcm"}


def dicom_files() -> list[str]:
    return sorted(f for f in get_testdata_files() if os.path.isfile(f))


def test_every_pydicom_test_file() -> None:
    files = dicom_files()
    assert len(files) == 176
    accepted, with_sop_class, rejected = 0, 0, []
    for path in files:
        items = parse_file(DICOM, path)
        assert len(items) == 1, path
        if isinstance(items[0], Reject):
            rejected.append((os.path.basename(path), items[0].reason))
        else:
            event = items[0]
            assert event.timestamp.utcoffset().total_seconds() == 0
            with_sop_class += "dicom.sop_class_uid" in event.fields  # a few test files are bare datasets
            accepted += 1
    assert {name for name, _ in rejected} == NOT_PART10 | BROKEN_PART10
    assert len(rejected) == 16 and accepted == 160  # README.txt occurs twice
    assert with_sop_class >= 150
    reasons = dict(rejected)
    assert "expected a 128-byte preamble and 'DICM'" in reasons["no_meta.dcm"]
    assert "gzip-compressed" in reasons["zipMR.gz"]
    assert "not a DICOM association event" in reasons["test1.json"]
    assert "truncated" in reasons["MR_truncated.dcm"] and "(7FE0,0010)" in reasons["MR_truncated.dcm"]
    assert "truncated" in reasons["rtplan_truncated.dcm"]
    assert "Transfer Syntax UID" in reasons["meta_missing_tsyntax.dcm"]


def test_dicom_ct_metadata() -> None:
    path = get_testdata_file("CT_small.dcm")
    (event,) = parse_file(DICOM, path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    f = event.fields
    assert f["dicom.sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.2" and f["dicom.sop_class_name"] == "CT Image Storage"
    assert f["dicom.modality"] == "CT"
    assert f["dicom.study_instance_uid"] == ds.StudyInstanceUID
    assert f["dicom.series_instance_uid"] == ds.SeriesInstanceUID
    assert f["dicom.sop_instance_uid"] == ds.SOPInstanceUID
    assert f["patient.id"] == ds.PatientID and f["patient.name"] == str(ds.PatientName)
    assert f["device.manufacturer"] == ds.Manufacturer
    assert event.original["StudyDate"] == ds.StudyDate
    assert event.timestamp.date().isoformat().replace("-", "") == ds.StudyDate
    assert "PixelData" not in event.original
    assert DICOM.sniff(Path(path).read_bytes()[:65536], path) == 1.0
    for key, value in f.items():
        if not key.startswith("patient.") and ds.PatientID:
            assert ds.PatientID not in str(value), key


def test_dicom_association_events() -> None:
    lines = [
        {"ts": "2026-03-01T10:15:00Z", "calling_ae": "CT_WARD3", "called_ae": "PACS_MAIN", "src_ip": "10.4.1.20",
         "src_port": 50412, "dst_ip": "10.9.0.5", "dst_port": 104, "command": "C-FIND",
         "sop_class": "1.2.840.10008.5.1.4.1.2.2.1", "patient_id": "PAT-0042", "status": "0x0000"},
        {"ts": 1772360160.5, "calling_ae": "WS7", "called_ae": "PACS_MAIN", "src_ip": "10.4.7.7", "dst_ip": "10.9.0.5",
         "command": "C-MOVE", "move_destination": "EXFIL", "study_uid": "1.2.3.4", "status": 0xA701},
        {"ts": "2026-03-01T10:17:00Z", "command": "C-DELETE"},
    ]  # fmt: skip
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines) + b'{"ts": "2026-03-01T10:18:00Z", "comm'
    assert DICOM.sniff(data) > 0.5
    items = parse(DICOM, data)
    assert [type(i).__name__ for i in items] == ["Event", "Event", "Reject", "Reject"]
    find, move = items[0].fields, items[1].fields
    assert find["dicom.calling_ae_title"] == "CT_WARD3" and find["dicom.called_ae_title"] == "PACS_MAIN"
    assert find["dicom.command"] == "C-FIND" and find["source.ip"] == "10.4.1.20" and find["destination.port"] == 104
    assert find["dicom.sop_class_name"].startswith("Study Root Query/Retrieve")
    assert find["event.outcome"] == "success" and find["patient.id"] == "PAT-0042"
    assert move["event.outcome"] == "failure" and move["dicom.move_destination"] == "EXFIL"
    assert items[1].timestamp == datetime(2026, 3, 1, 10, 16, 0, 500000, tzinfo=UTC)
    assert "C-DELETE" in items[2].reason and "truncated JSON" in items[3].reason
    resumed = parse(DICOM, data, start=items[0].position)
    assert [i.position for i in resumed] == [i.position for i in items[1:]]


def test_dicom_resume_and_bad_input() -> None:
    path = get_testdata_file("MR_small.dcm")
    assert parse_file(DICOM, path, start=1) == []
    data = Path(path).read_bytes()
    (cut,) = parse(DICOM, data[:200])
    assert isinstance(cut, Reject) and "DICOM" in cut.reason
    (junk,) = parse(DICOM, b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    assert isinstance(junk, Reject)
