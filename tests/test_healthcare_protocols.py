"""Clinical protocol analytics (detect/healthcare): HL7 interfaces, DICOM associations, FHIR access.

Events come from the project's own parsers over real material: the HL7 v2 and FHIR samples in
../shared/data (skipped when absent), the demo scenario's logs, and DICOM association lines in the
format the DICOM parser reads.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared
from healthswarm.demo import LOGS
from healthswarm.detect.base import Detector
from healthswarm.detect.healthcare import (
    DicomAnalytics,
    DicomConfig,
    FhirAnalytics,
    FhirConfig,
    Hl7Analytics,
    Hl7Config,
    protocol_detectors,
)
from healthswarm.detect.healthcare.windows import BucketRate, SlidingDistinct
from healthswarm.ingest.formats import dicom, fhir, hl7v2
from healthswarm.model import Alert, Event, Reject

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def parse(fmt: Any, data: bytes, source: str) -> list[Event | Reject]:
    return list(fmt.parse(io.BytesIO(data), source))


def events_of(fmt: Any, path: Path) -> list[Event]:
    return [e for e in parse(fmt, path.read_bytes(), path.name) if isinstance(e, Event)]


def at(event: Event, when: datetime, changes: dict[str, Any] | None = None) -> Event:
    """The event re-timed (and with some fields changed): the samples come from different years."""
    return Event(timestamp=when, fields={**event.fields, **(changes or {})}, original=event.original,
                 source=event.source, record=event.record, key=event.key)


def run(detector: Detector, events: Iterable[Event]) -> list[Alert]:
    alerts: list[Alert] = []
    for event in events:
        alerts += detector.detect(event)
    return alerts + detector.flush()


def dicom_events(rows: list[dict[str, Any]]) -> list[Event]:
    data = b"\n".join(orjson.dumps(r) for r in rows)
    out = [e for e in parse(dicom.FORMAT, data, "associations.json") if isinstance(e, Event)]
    assert len(out) == len(rows)
    return out


def find(ts: datetime, caller: str, patient: str) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "calling_ae": caller, "called_ae": "RIM_PACS", "src_ip": "10.10.2.90",
            "command": "C-FIND", "patient_id": patient, "status": "0xFF00"}


def move(ts: datetime, caller: str, study: str, destination: str) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "calling_ae": caller, "called_ae": "RIM_PACS", "command": "C-MOVE",
            "study_uid": study, "move_destination": destination, "status": "0x0000"}


# -- the demo scenario -------------------------------------------------------------------------------------


def demo_events() -> list[Event]:
    events = (events_of(hl7v2.FORMAT, LOGS / "hl7-adt.hl7") + events_of(dicom.FORMAT, LOGS / "dicom-associations.json")
              + events_of(fhir.FORMAT, LOGS / "ehr-audit.ndjson"))
    return sorted(events, key=lambda e: (e.timestamp, e.source, e.record))


def test_demo_raises_the_scenario_and_nothing_else() -> None:
    detectors = protocol_detectors()
    alerts: list[Alert] = []
    for event in demo_events():
        for detector in detectors:
            alerts += detector.detect(event)
    by_rule = Counter(a.rule_id for a in alerts)
    assert by_rule == {
        "healthcare.dicom.query-sweep": 1,                 # 09:05 the PACS sweep
        "healthcare.dicom.unusual-move-destination": 1,    # then C-MOVE to EXT_ARCHIVE
        "healthcare.hl7.new-sender": 1,                    # 09:10 the unknown facility …
        "healthcare.hl7.flood": 1,                         # … and its 120 ADT in 48 s
        "healthcare.fhir.new-bulk-exporter": 1,            # 09:40 $export by j.meyer
        "healthcare.fhir.patient-list-paging": 1,          # 22:41 the night clerk's 60 records
    }
    flood = next(a for a in alerts if a.rule_id == "healthcare.hl7.flood")
    assert flood.level == "high" and "T1499.002" in {t.id for t in flood.techniques}
    assert "UNKNOWN_CLINIC" in flood.description and flood.events
    assert flood.details["entities"]["facility"] == ["UNKNOWN_CLINIC"]
    move_alert = next(a for a in alerts if a.rule_id == "healthcare.dicom.unusual-move-destination")
    assert move_alert.level == "high" and "EXT_ARCHIVE" in move_alert.description
    assert all(a.timestamp.tzinfo is not None and a.description and a.techniques for a in alerts)
    assert {a.detector for a in alerts} == {"hl7-analytics", "dicom-analytics", "fhir-analytics"}


# -- HL7 v2 ------------------------------------------------------------------------------------------------


def hl7_interface() -> tuple[list[Event], list[Event]]:
    """The real samples that feed EHRApp@GHHRFacility, one a minute, and the ADT^A40 sample (another sender)."""
    folder = shared("hl7v2")
    feed = [e for p in sorted(folder.glob("*.hl7")) for e in events_of(hl7v2.FORMAT, p)
            if e.fields.get("hl7.receiving_application") == "EHRApp"]
    merge = events_of(hl7v2.FORMAT, folder / "ADT-A40-01.hl7")
    return [at(e, T0 + timedelta(minutes=i)) for i, e in enumerate(feed)], merge


def test_hl7_new_sender_and_message_type_after_warmup() -> None:
    feed, merge = hl7_interface()
    held = [e for e in feed if e.fields["hl7.message_type"] == "ADT^A47"]
    warm = [e for e in feed if e not in held]
    detector = Hl7Analytics(Hl7Config(warmup_events=len(warm), warmup_seconds=1e9))
    assert run(detector, warm) == []
    later = T0 + timedelta(hours=2)
    known = next(e for e in warm if e.fields["hl7.message_type"] == "ADT^A08")
    assert detector.detect(at(known, later)) == []
    [new_type] = detector.detect(at(held[0], later))
    assert new_type.rule_id == "healthcare.hl7.new-message-type"
    assert "first ADT^A47 from ADTApp@GHHSFacility" in new_type.description
    assert "ADT^A08" in new_type.details["baseline_types"]
    stranger = at(merge[0], later, {"hl7.receiving_application": "EHRApp", "hl7.receiving_facility": "GHHRFacility"})
    [new_sender] = detector.detect(stranger)
    assert new_sender.rule_id == "healthcare.hl7.new-sender"
    assert "Ntierprise@Ntierprise Clinic" in new_sender.description
    assert "ADTApp@GHHSFacility" in new_sender.details["baseline_senders"]
    assert detector.detect(at(stranger, later)) == []  # alerted once, then learned


def test_hl7_novelty_during_warmup_is_learned_silently() -> None:
    feed, merge = hl7_interface()
    detector = Hl7Analytics(Hl7Config(warmup_events=10_000, warmup_seconds=1e9))
    stranger = at(merge[0], feed[-1].timestamp, {"hl7.receiving_application": "EHRApp",
                                                  "hl7.receiving_facility": "GHHRFacility"})
    assert run(detector, [*feed, stranger]) == []
    assert detector.stats["events"] == len(feed) + 1


def test_hl7_flood_against_learned_rate() -> None:
    feed, _ = hl7_interface()
    adt = next(e for e in feed if e.fields["hl7.message_type"] == "ADT^A08")
    detector = Hl7Analytics(Hl7Config(warmup_events=len(feed), warmup_seconds=1e9))
    assert run(detector, feed) == []
    start = feed[-1].timestamp + timedelta(minutes=5)
    steady = [at(adt, start + timedelta(seconds=30 * i)) for i in range(40)]  # 2 a minute: ordinary
    assert run(detector, steady) == []
    burst_at = steady[-1].timestamp + timedelta(minutes=5)
    burst = [at(adt, burst_at + timedelta(seconds=0.4 * i)) for i in range(150)]
    alerts = run(detector, burst)
    assert [a.rule_id for a in alerts] == ["healthcare.hl7.flood"]  # one alert per flood
    assert alerts[0].details["count"] == 50 and alerts[0].level == "high"


def test_hl7_flood_during_warmup_is_not_an_alert() -> None:
    feed, _ = hl7_interface()
    adt = feed[0]
    detector = Hl7Analytics(Hl7Config(warmup_events=1_000, warmup_seconds=1e9))
    assert run(detector, [at(adt, T0 + timedelta(seconds=0.2 * i)) for i in range(200)]) == []


def test_hl7_probing_from_parser_rejects_and_malformed_messages() -> None:
    sample = shared("hl7v2", "ADT-A08-01.hl7").read_bytes()
    broken = sample.replace(b"\rEVN|", b"\rEVN^", 1).replace(b"\nEVN|", b"\nEVN^", 1)
    rejects = [r for r in parse(hl7v2.FORMAT, broken, "mllp://10.9.9.9") if isinstance(r, Reject)]
    assert rejects, "the parser rejects a segment with the wrong field separator"
    detector = Hl7Analytics(Hl7Config(warmup_events=0, probe_min=5))
    alerts = [a for _ in range(6) for a in detector.observe_reject(rejects[0])]
    assert [a.rule_id for a in alerts] == ["healthcare.hl7.malformed-probing"]
    assert "mllp://10.9.9.9" in alerts[0].description and "field separator" in alerts[0].description
    # accepted but malformed: MSH-10 and MSH-12 emptied
    good = events_of(hl7v2.FORMAT, shared("hl7v2", "ADT-A08-01.hl7"))[0]
    emptied = {k: v for k, v in good.fields.items() if k not in ("hl7.control_id", "hl7.version")}
    other = Hl7Analytics(Hl7Config(warmup_events=0, probe_min=5))
    found = run(other, [Event(T0 + timedelta(seconds=i), emptied, good.original, source="feed-b") for i in range(5)])
    assert [a.rule_id for a in found if a.rule_id.endswith("probing")] == ["healthcare.hl7.malformed-probing"]
    clean = run(Hl7Analytics(Hl7Config(warmup_events=0)), [at(good, T0 + timedelta(seconds=i)) for i in range(9)])
    assert not [a for a in clean if a.rule_id.endswith("probing")]


def test_budget_caps_alerts_and_counts_the_rest() -> None:
    feed, _ = hl7_interface()
    detector = Hl7Analytics(Hl7Config(warmup_events=len(feed), warmup_seconds=1e9, budget_per_hour=2))
    run(detector, feed)
    later = T0 + timedelta(hours=3)
    strangers = [at(feed[0], later + timedelta(seconds=i), {"hl7.sending_facility": f"X{i}"}) for i in range(6)]
    assert len(run(detector, strangers)) == 2
    assert detector.stats["suppressed:healthcare.hl7.new-sender"] == 4
    # the budget is per hour of event time: an hour later there is room again
    assert len(detector.detect(at(feed[0], later + timedelta(hours=1, seconds=10), {"hl7.sending_facility": "Y"})))


# -- DICOM -------------------------------------------------------------------------------------------------


def test_dicom_sweep_relative_to_the_callers_baseline() -> None:
    config = DicomConfig(warmup_events=0, warmup_seconds=1800, sweep_min=30, sweep_factor=5)
    # warm-up: a viewer that routinely prefetches ~20 patients per 5 minutes for two hours
    rows = [find(T0 + timedelta(seconds=15 * i), "VIEWER", f"p{i % 400}") for i in range(480)]
    # after: the same viewer at 35 a window (its usual), and a reading station sweeping 40 in 3 minutes
    after = T0 + timedelta(hours=2, minutes=1)
    rows += [find(after + timedelta(seconds=8 * i), "VIEWER", f"q{i}") for i in range(35)]
    rows += [find(after + timedelta(seconds=4 * i), "RAD01", f"r{i}") for i in range(40)]
    alerts = run(DicomAnalytics(config), sorted(dicom_events(rows), key=lambda e: e.timestamp))
    assert [(a.rule_id, a.details["calling_ae"]) for a in alerts] == [("healthcare.dicom.query-sweep", "RAD01")]
    assert alerts[0].details["distinct_queries"] == 30


def test_dicom_move_destinations_and_volume() -> None:
    config = DicomConfig(warmup_events=10, warmup_seconds=1e9, volume_min=20, volume_factor=5)
    rows = [move(T0 + timedelta(minutes=i), "RAD01", f"1.2.{i}", "RAD01_WS") for i in range(10)]
    rows.append({"ts": (T0 + timedelta(minutes=11)).isoformat(), "calling_ae": "ARCHIVE2", "called_ae": "RIM_PACS",
                 "command": "C-ECHO"})
    later = T0 + timedelta(hours=3)
    rows.append(move(later, "RAD01", "1.2.900", "RAD01_WS"))            # known destination
    rows.append(move(later + timedelta(seconds=1), "RAD01", "1.2.901", "ARCHIVE2"))  # seen, but not from RAD01
    rows.append(move(later + timedelta(seconds=2), "RAD01", "1.2.902", "EXT_ARCHIVE"))  # never seen at all
    rows.append(move(later + timedelta(seconds=3), "RAD01", "1.2.903", "EXT_ARCHIVE"))  # already alerted
    rows += [move(later + timedelta(seconds=10 + i), "RAD01", f"9.9.{i}", "RAD01_WS") for i in range(30)]
    alerts = run(DicomAnalytics(config), dicom_events(rows))
    got = [(a.rule_id, a.level, a.details.get("destination")) for a in alerts]
    assert got == [
        ("healthcare.dicom.unusual-move-destination", "medium", "ARCHIVE2"),
        ("healthcare.dicom.unusual-move-destination", "high", "EXT_ARCHIVE"),
        ("healthcare.dicom.study-volume", "medium", None),
    ]
    assert alerts[-1].details["studies"] == 20


# -- FHIR --------------------------------------------------------------------------------------------------


def test_fhir_unusual_search_parameter_from_the_real_sample() -> None:
    [search] = events_of(fhir.FORMAT, shared("fhir", "AuditEvent-example-search.json"))
    assert search.fields["url.original"].endswith("Encounter?participant=13")
    detector = FhirAnalytics(FhirConfig(warmup_events=5, warmup_seconds=1e9))
    assert run(detector, [at(search, T0 + timedelta(minutes=i)) for i in range(6)]) == []
    later = T0 + timedelta(hours=1)
    same = at(search, later, {"url.original": "http://fhir.example/open/Encounter?participant=99&_count=50"})
    assert detector.detect(same) == []  # its own parameter; _count only steers paging
    odd = at(search, later, {"url.original": "http://fhir.example/open/Patient?birthdate=ge1900-01-01"})
    [alert] = detector.detect(odd)
    assert alert.rule_id == "healthcare.fhir.unusual-search-parameter"
    assert alert.details["new_parameters"] == ["Patient:birthdate"]
    assert "Encounter:participant" in alert.details["baseline_parameters"]
    # a principal first seen after warm-up is compared with everybody: a common parameter is fine
    newcomer = at(search, later, {"user.id": "dr.new", "url.original": "http://x/Encounter?participant=1"})
    assert detector.detect(newcomer) == []


def test_fhir_export_by_a_principal_not_seen_exporting() -> None:
    export = next(e for e in events_of(fhir.FORMAT, LOGS / "ehr-audit.ndjson") if e.fields.get("event.action") ==
                  "$export")
    detector = FhirAnalytics(FhirConfig(warmup_events=1, warmup_seconds=1e9))
    service = at(export, T0, {"user.id": "svc-population", "user.name": "svc-population"})
    assert detector.detect(service) == []  # warm-up: svc-population is a known exporter
    assert detector.detect(at(service, T0 + timedelta(hours=1))) == []
    [alert] = detector.detect(at(export, T0 + timedelta(hours=2)))
    assert alert.rule_id == "healthcare.fhir.new-bulk-exporter" and alert.level == "high"
    assert "j.meyer" in alert.description and alert.details["baseline_exporters"] == ["svc-population"]
    assert detector.detect(at(export, T0 + timedelta(hours=3))) == []


def test_fhir_paging_by_pages_and_by_patients() -> None:
    [search] = events_of(fhir.FORMAT, shared("fhir", "AuditEvent-example-search.json"))
    detector = FhirAnalytics(FhirConfig(warmup_events=0, warmup_seconds=0, paging_min_pages=20))
    pages = [at(search, T0 + timedelta(seconds=5 * i),
                {"url.original": f"http://fhir.example/open?_getpages=abc&_getpagesoffset={50 * i}"})
             for i in range(25)]
    alerts = run(detector, pages)
    assert [a.rule_id for a in alerts] == ["healthcare.fhir.patient-list-paging"]
    assert alerts[0].details["pages"] == 20
    # ordinary reading: 3 patients an hour is nowhere near a list
    reads = [e for e in events_of(fhir.FORMAT, LOGS / "ehr-audit.ndjson") if e.fields.get("user.id") == "dr.weber"]
    assert run(FhirAnalytics(FhirConfig(warmup_events=0, warmup_seconds=0)), reads) == []


# -- robustness --------------------------------------------------------------------------------------------

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
_NAMES = st.sampled_from([
    "hl7.message_type", "hl7.sending_application", "hl7.sending_facility", "hl7.receiving_application",
    "hl7.receiving_facility", "hl7.control_id", "hl7.version", "event.kind", "error.message", "source.ip",
    "destination.ip", "dicom.command", "dicom.calling_ae_title", "dicom.called_ae_title", "dicom.move_destination",
    "dicom.study_instance_uid", "patient.id", "patient.identifiers", "user.id", "user.name", "url.original",
    "event.action", "source.address",
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["hl7", "dicom", "fhir", None, 3]),
                          st.dictionaries(_NAMES, _VALUES, max_size=8),
                          st.integers(min_value=-10_000, max_value=10_000)), max_size=25))
def test_bad_or_missing_fields_never_raise(records: list[tuple[Any, dict[str, Any], int]]) -> None:
    detectors = protocol_detectors(Hl7Config(warmup_events=2, probe_min=2, flood_min=2),
                                   DicomConfig(warmup_events=2, sweep_min=2, volume_min=2),
                                   FhirConfig(warmup_events=2, paging_min_patients=2, paging_min_pages=2))
    for observer, fields, offset in records:  # times jump back and forth: late events must not break windows
        event = Event(T0 + timedelta(seconds=offset), {**fields, "observer.type": observer}, None)
        for detector in detectors:
            for alert in detector.detect(event):
                assert alert.description and alert.level in ("low", "medium", "high")
    for detector in detectors:
        assert detector.flush() == []


def test_skipped_events_are_counted() -> None:
    dicom_detector, fhir_detector, hl7_detector = DicomAnalytics(), FhirAnalytics(), Hl7Analytics()
    dicom_detector.detect(Event(T0, {"observer.type": "dicom", "dicom.command": "C-FIND"}, None))
    fhir_detector.detect(Event(T0, {"observer.type": "fhir", "user.id": ["not", "a", "name"]}, None))
    hl7_detector.detect(Event(T0, {"observer.type": "hl7", "hl7.message_type": "ADT^A01", "hl7.control_id": "1",
                                   "hl7.version": "2.5"}, None))
    assert dicom_detector.stats["skipped:no-caller"] == 1
    assert fhir_detector.stats["skipped:no-principal"] == 1
    assert hl7_detector.stats["skipped:no-interface"] == 1


def test_windows_forget_and_rates_decay() -> None:
    window = SlidingDistinct(60)
    assert [window.add(t, v) for t, v in ((0, "a"), (10, "b"), (10, "a"), (65, "c"), (75, "c"))] == [
        1, 2, 2, 3, 1]
    rate = BucketRate(60, 0.5)
    for t in range(0, 60, 6):
        rate.add(t)
    rate.add(60)
    assert rate.mean == pytest.approx(5.0)
    rate.add(60 * 4)  # the finished bucket (1) and two empty ones
    assert rate.mean == pytest.approx((0.5 * 1 + 0.5 * 5.0) * 0.25)
