"""Patient-privacy monitor: relationships from ADT/FHIR, each rule both ways, directory errors, generator, P/R floor."""

from __future__ import annotations

import io
import json
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthswarm.detect.base import Detector
from healthswarm.detect.privacy import PrivacyMonitor, parse_directory
from healthswarm.detect.privacy.baseline import VolumeStats
from healthswarm.detect.privacy.evaluate import events_of, run_monitor, score
from healthswarm.detect.privacy.generator import GeneratorConfig, generate
from healthswarm.detect.privacy.monitor import PrivacyConfig
from healthswarm.errors import InputError
from healthswarm.ingest.formats import get_format
from healthswarm.model import MAX_ALERT_EVENTS, Event

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "hl7v2"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DIRECTORY = """
facilities: [STA]
vip: [p-vip]
staff:
  - {id: "2001", logins: [dr.weber], family: Weber, given: Anna, role: physician, wards: [ICU]}
  - {id: "2002", logins: [n.fischer], family: Fischer, given: Nina, role: nurse, wards: [ICU]}
  - {id: "2003", logins: [c.braun], family: Braun, given: Carl, role: nurse, wards: [CARD], patient_ids: [p-staff]}
  - {id: "2004", logins: [k.schmidt], family: Schmidt, given: Karin, role: clerk, wards: [ADMIN], hours: "07-16"}
"""


def parse(fmt: str, data: bytes, source: str = "test") -> list[Event]:
    return [e for e in get_format(fmt).parse(io.BytesIO(data), source) if isinstance(e, Event)]


def adt(trigger: str, at: datetime, patient: str, ward: str, attending: str = "2001^Weber^Anna",
        family: str = "Muster", facility: str = "STA") -> Event:
    stamp = at.strftime("%Y%m%d%H%M%S")
    pv1 = ["PV1", "1", "I", f"{ward}^01^A^STA", "", "", "", attending] + [""] * 38
    text = "\r".join([f"MSH|^~\\&|ORBIS|{facility}|EPIC|STA|{stamp}+0000||ADT^{trigger}^ADT_A01|C{stamp}|P|2.5.1",
                      f"EVN|{trigger}|{stamp}", f"PID|1||{patient}^^^STA^MR||{family}^Erika||19640312|F",
                      "|".join(pv1)]) + "\r"
    return parse("hl7", text.encode())[0]


def read(user: str, patient: str, at: datetime, btg: bool = False, n: int = 0) -> Event:
    agent: dict = {"type": {"coding": [{"code": "humanuser"}]}, "who": {"identifier": {"value": user}},
                   "requestor": True}
    if btg:
        agent["purposeOfUse"] = [{"coding": [{"code": "BTG"}]}]
    resource = {"resourceType": "AuditEvent", "id": f"ae-{user}-{n}-{at:%H%M%S}", "recorded": at.isoformat(),
                "type": {"code": "rest"}, "subtype": [{"code": "read"}], "action": "R", "outcome": "0",
                "agent": [agent], "entity": [{"what": {"reference": f"Patient/{patient}"}}]}
    return parse("fhir", json.dumps(resource).encode())[0]


def run(events: list[Event], directory: str = DIRECTORY) -> tuple[PrivacyMonitor, list]:
    monitor = PrivacyMonitor(parse_directory(directory))
    alerts = [a for e in sorted(events, key=lambda e: e.timestamp) for a in monitor.detect(e)] + monitor.flush()
    return monitor, alerts


def rules(alerts: list) -> set[str]:
    return {a.rule_id.removeprefix("privacy:") for a in alerts if a.severity >= 2}


def test_relationships_from_real_hl7_sample_structure() -> None:
    # the HL7 v2.8 A02 sample: PV1-3 "HUH AE OMU&9.8&ISO^…", PV1-7 attending 1122334^Alaz, PV1-8 referring C006
    text = (SAMPLES / "ADT-A02-02.hl7").read_bytes()
    event = parse("hl7", text)[0]
    directory = parse_directory("staff:\n  - {id: '1122334', logins: [m.alaz], family: Alaz, role: physician}\n"
                                "  - {id: C006, logins: [k.woolfson], family: Woolfson, role: physician}\n"
                                "  - {id: x1, logins: [ward.nurse], family: N, role: nurse, wards: [HUH AE OMU]}\n")
    monitor = PrivacyMonitor(directory)
    monitor.detect(event)
    care, patient = monitor.care, event.fields["patient.id"]
    stay = care.stays[patient][-1]  # A02 with no stay before: opened at EVN-6, the event's occurrence
    # (read from the parser's hl7.event_occurred, which keeps EVN-6's tenths of a second)
    assert stay.ward == "HUH AE OMU" and stay.start == datetime(2021, 8, 17, 13, 19, 43, 400000, tzinfo=UTC)
    assert "hl7.event_occurred" in event.fields and "hl7.location.ward" in event.fields
    assert care.explain(directory.lookup("m.alaz"), patient, stay.start).kind == "attending"
    assert care.explain(directory.lookup("k.woolfson"), patient, stay.start).kind == "referring"
    assert care.explain(directory.lookup("ward.nurse"), patient, stay.start).kind == "ward"
    assert care.names[patient][0] == "EVERYMAN"


def test_monitor_follows_detector_protocol_and_explained_reads_are_quiet() -> None:
    monitor, alerts = run([adt("A01", T0, "p1", "ICU"), read("n.fischer", "p1", T0 + timedelta(hours=1)),
                           read("dr.weber", "p1", T0 + timedelta(hours=2))])
    assert isinstance(monitor, Detector)
    assert alerts == []
    assert monitor.counts["reads"] == 2


def test_no_relationship_positive_and_explains_itself() -> None:
    events = [adt("A01", T0, "p2", "CARD", attending="9999^Other^Doc")]
    events += [read("n.fischer", f"p{i}", T0 + timedelta(minutes=5 * i)) for i in (2,)]
    _, alerts = run(events)
    alert = next(a for a in alerts if a.rule_id == "privacy:no-relationship")
    assert alert.level == "medium"
    assert "n.fischer (nurse, ward ICU)" in alert.description and "patient on CARD" in alert.description
    assert "p2" not in alert.title and "Muster" not in alert.title and "Muster" not in alert.description
    assert alert.details["patients"] == ["p2"] and alert.techniques[0].id == "T1213"


def test_discharged_patient_within_and_after_grace() -> None:
    base = [adt("A01", T0, "p3", "ICU"), adt("A03", T0 + timedelta(days=1), "p3", "ICU")]
    _, inside = run([*base, read("n.fischer", "p3", T0 + timedelta(days=2))])
    _, after = run([*base, read("n.fischer", "p3", T0 + timedelta(days=6))])
    assert "no-relationship" not in rules(inside)
    alert = next(a for a in after if a.rule_id == "privacy:no-relationship")
    assert "beyond the 72 h grace" in alert.description


def test_transfer_moves_the_ward_and_untrusted_facility_is_ignored() -> None:
    events = [adt("A01", T0, "p4", "ICU"), adt("A02", T0 + timedelta(days=1), "p4", "CARD", "9999^X^Y"),
              read("c.braun", "p4", T0 + timedelta(days=1, hours=1)),
              adt("A01", T0, "p5", "ICU", facility="UNKNOWN_CLINIC"),
              read("n.fischer", "p5", T0 + timedelta(hours=1)), adt("A01", T0, "p6", "CARD", "9999^X^Y"),
              read("n.fischer", "p6", T0 + timedelta(hours=1))]
    monitor, alerts = run(events)
    flagged = {p for a in alerts for p in a.details["patients"]}
    assert "p4" not in flagged and monitor.care.skipped["untrusted sending facility"] == 1


def test_coworker_vip_same_surname_positive_and_negative() -> None:
    events = [adt("A01", T0, "p-staff", "CARD", "9999^X^Y", family="Braun"),
              adt("A01", T0, "p-vip", "CARD", "9999^X^Y"),
              adt("A01", T0, "p-rel", "CARD", "9999^X^Y", family="Fischer")]
    events += [read("n.fischer", p, T0 + timedelta(hours=1)) for p in ("p-staff", "p-vip", "p-rel")]
    _, alerts = run(events)
    assert {"coworker", "vip", "same-surname"} <= rules(alerts)
    coworker = next(a for a in alerts if a.rule_id == "privacy:coworker")
    assert "staff member c.braun" in coworker.description
    # the same reads by the ward's own nurse are care, not snooping
    own = [e for e in events if e.fields.get("observer.type") == "hl7"]
    own += [read("c.braun", p, T0 + timedelta(hours=1)) for p in ("p-vip", "p-rel")]
    assert rules(run(own)[1]) == set()


def test_break_the_glass_is_lower_but_counted() -> None:
    events = [adt("A01", T0, "p-vip", "CARD", "9999^X^Y"), read("n.fischer", "p-vip", T0, btg=True),
              adt("A01", T0, "p7", "CARD", "9999^X^Y"), read("dr.weber", "p7", T0 + timedelta(hours=3), btg=True)]
    monitor, alerts = run(events)
    levels = {a.rule_id: a.level for a in alerts}
    assert levels["privacy:vip"] == "medium"  # high, one lower
    assert levels["privacy:break-the-glass"] == "low"
    assert monitor.counts["break-the-glass reads without a relationship"] == 2


def test_after_hours_burst_and_volume() -> None:
    events = [adt("A01", T0 - timedelta(hours=1), f"q{i}", "CARD", "9999^X^Y") for i in range(12)]
    night = T0.replace(hour=23)
    events += [read("k.schmidt", f"q{i}", night + timedelta(minutes=i)) for i in range(12)]
    _, alerts = run(events)
    burst = next(a for a in alerts if a.rule_id == "privacy:after-hours-burst")
    assert "outside the usual 07–16 hours (declared in the staff directory)" in burst.description
    # the same reads inside declared hours: no burst
    day = [e for e in events if e.fields.get("observer.type") == "hl7"]
    day += [read("k.schmidt", f"q{i}", T0.replace(hour=10) + timedelta(minutes=i)) for i in range(12)]
    assert "after-hours-burst" not in rules(run(day)[1])


def test_unknown_staff_and_non_reads_are_counted_not_raised() -> None:
    monitor, alerts = run([read("ghost", "p1", T0), adt("A08", T0, "p1", "ICU")])
    assert alerts == [] and monitor.counts["reads by staff not in the directory"] == 1


@pytest.mark.parametrize(("text", "where"), [
    ("staff:\n  - {id: '1', logins: [a], family: A, role: nurse}\n  - {id: '2', logins: [a], family: B, role: x}\n",
     "<directory>:3"),
    ("staff:\n  - id: '1'\n    family: A\n    role: nurse\n    hours: '7 to 4'\n", "<directory>:5: staff[0].hours"),
    ("staff:\n  - id: '1'\n    role: nurse\n", "<directory>:2: staff[0].family"),
    ("staff:\n  - {id: '1', family: A, role: nurse, shoe: 4}\n", "<directory>:2: staff[0].shoe"),
    ("id,logins,family,role\n1,a,A,nurse\n2,b,,nurse\n", "<directory>:3: family"),
    ("staff: [\n", "<directory>:2"),
])
def test_directory_errors_name_the_line(text: str, where: str) -> None:
    with pytest.raises(InputError) as info:
        parse_directory(text)
    assert str(info.value.problems[0]).startswith(where)


def test_generator_is_deterministic_and_labelled() -> None:
    cfg = GeneratorConfig(seed=3, days=3, wards=3)
    first, second = generate(cfg), generate(cfg)
    assert first.audit == second.audit and first.hl7 == second.hl7 and first.labels == second.labels
    assert generate(GeneratorConfig(seed=4, days=3, wards=3)).audit != first.audit
    assert len(first.labels) == len(first.audit)
    assert {label["pattern"] for label in first.labels} >= {"legit", "curiosity", "bulk"}
    events = events_of(first, parse)
    assert len(events) == len(first.audit) + first.hl7.count("MSH|")  # every generated record parses


def test_precision_recall_floor_on_a_generated_log() -> None:
    log = generate(GeneratorConfig(seed=11, days=4, wards=4))
    result = score(log, run_monitor(log, events_of(log, parse)))
    assert result.overall["recall"] >= 0.85, result.overall
    assert result.overall["precision"] >= 0.6, result.overall
    assert result.patterns["bulk"]["recall"] >= 0.8 and result.patterns["after-hours"]["recall"] >= 0.9


def test_volume_baseline_is_the_latest_sessions() -> None:
    """The role's baseline is its latest `keep` sessions, in a bounded window: the median and MAD of exactly those."""
    rng = random.Random(7)
    stats = VolumeStats(keep=50)
    values = [rng.randint(0, 40) for _ in range(500)]
    for i, value in enumerate(values, 1):
        stats.add(value)
        window = values[max(0, i - 50):i]
        assert len(stats) == len(window) and stats.ordered == sorted(window)
    median = statistics.median(values[-50:])
    mad = statistics.median(abs(v - median) for v in values[-50:])
    assert stats.robust_z(60) == ((60 - median) / max(1.4826 * mad, 0.15 * median, 1.0), median,
                                  max(1.4826 * mad, 0.15 * median, 1.0))


def test_a_read_from_a_feed_far_behind_the_clock_is_judged_when_it_comes() -> None:
    """The clock is the newest event of any source: reads of a lagging audit feed are overdue on arrival and are judged
    then, not held (with every read of their patients) until a still newer event arrives."""
    monitor = PrivacyMonitor(parse_directory(DIRECTORY))
    monitor.detect(adt("A01", T0 + timedelta(days=30), "p-other", "ICU"))  # another feed is a month ahead
    for day in range(20):  # the audit feed of those days, read now
        monitor.detect(read("n.fischer", "p-1", T0 + timedelta(days=day), n=day))
        assert not monitor._pending
    assert len(monitor._peers["p-1"]) == 1  # earlier reads are too old to explain any read still to come


def test_a_long_episode_names_its_last_events_and_every_read() -> None:
    """An alert keeps the last MAX_ALERT_EVENTS events (it is stored, shared and read for every case); its
    details still count and name every read and patient of the episode."""
    n = MAX_ALERT_EVENTS + 40
    events = [adt("A01", T0 - timedelta(hours=1), f"c{i}", "CARD", "9999^X^Y") for i in range(n)]
    reads = [read("n.fischer", f"c{i}", T0 + timedelta(seconds=20 * i), n=i) for i in range(n)]
    _, alerts = run(events + reads)
    (episode,) = [a for a in alerts if a.rule_id == "privacy:no-relationship"]
    assert episode.details["reads"] == n and len(episode.details["patients"]) == n
    assert len(episode.details["audit_event_ids"]) == n
    assert [e.key for e in episode.events] == [e.key for e in reads[-MAX_ALERT_EVENTS:]]


def test_care_relationships_no_reader_can_need_are_forgotten_and_judgements_stay_the_same() -> None:
    """Months of admissions and discharges: the relationships kept stay few (every ADT message of the agent's life
    was kept, and walked at each read of the patient), every read is judged as without forgetting, and a patient
    discharged months ago is still known: reading their record without a relationship is raised, not taken for a
    gap in the feeds."""
    events = [adt("A01", T0 - timedelta(days=1), "old-1", "CARD", "9999^X^Y"),
              adt("A03", T0 - timedelta(days=1) + timedelta(hours=6), "old-1", "CARD", "9999^X^Y")]
    for day in range(120):
        morning = T0 + timedelta(days=day)
        for n in range(5):
            events += [adt("A01", morning, f"p{n}", "ICU"), adt("A03", morning + timedelta(hours=10), f"p{n}", "ICU")]
        events.append(read("n.fischer", f"p{day % 5}", morning + timedelta(hours=4), n=day))
    events.append(read("n.fischer", "old-1", T0 + timedelta(days=120), n=999))

    def judged(prune_reads: int) -> tuple[PrivacyMonitor, list[tuple[str, tuple[str, ...]]]]:
        monitor = PrivacyMonitor(parse_directory(DIRECTORY), PrivacyConfig(prune_reads=prune_reads))
        alerts = [a for e in sorted(events, key=lambda e: e.timestamp) for a in monitor.detect(e)] + monitor.flush()
        return monitor, [(a.rule_id, tuple(r.key for r in a.events)) for a in alerts]

    kept, kept_alerts = judged(10**9)
    pruned, pruned_alerts = judged(2)
    assert pruned_alerts == kept_alerts and ("privacy:no-relationship", (events[-1].key,)) in pruned_alerts
    assert sum(map(len, kept.care.stays.values())) == 1 + 5 * 120
    assert sum(map(len, pruned.care.stays.values())) <= 5 * 10  # the last two spans of reads (4 days) and the grace (3)
    assert pruned.counts["care relationships forgotten"] > 0 and pruned.care.known("old-1")
