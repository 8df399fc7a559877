from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from healthswarm.errors import InputError
from healthswarm.model import (
    MAX_ALERT_EVENTS,
    Alert,
    Asset,
    Dependency,
    Event,
    EventRef,
    Inventory,
    Organisation,
    Zone,
)
from healthswarm.model.incident import Incident, Stage
from healthswarm.model.inventory import Hl7Identity
from healthswarm.respond.audit import verify
from healthswarm.respond.case_store import (
    change_case,
    controllers_among,
    create_case,
    incident_observables,
    list_cases,
    load_audit,
    load_case,
    open_from_incident,
)
from healthswarm.respond.cases import Case, Evidence, Note, Observable, Phase, move
from healthswarm.respond.errors import ConflictError, NotFoundError
from healthswarm.respond.service import verify_case
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents
from healthswarm.store.events import insert_events
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.respond_tables import respond_audit
from respond_helpers import T0, prepare


@pytest.fixture
def rstore(store: Store) -> Store:
    return prepare(store)


def _open(store: Store, title: str = "Ransom note on PACS") -> Case:
    with store.transaction() as conn:
        return create_case(conn, Case("CASE-1", title, T0, T0 - timedelta(hours=1)), "alice", now=T0)


def _note(text: str):  # type: ignore[no-untyped-def]
    def add(case: Case) -> dict[str, str]:
        case.notes.append(Note(T0.isoformat(), "alice", text))
        return {"note": text}
    return add


def test_changes_bump_the_version_and_chain_the_audit_log(rstore: Store) -> None:
    _open(rstore)
    with rstore.transaction() as conn:
        change_case(conn, "CASE-1", "alice", "note", _note("first"), now=T0)
        change_case(conn, "CASE-1", "bob", "move", lambda c: move(c, Phase.CONTAINMENT, T0), now=T0)
    with rstore.read() as conn:
        case = load_case(conn, "CASE-1")
        entries = load_audit(conn, "CASE-1")
        assert [e.action for e in entries] == ["open", "note", "move"]
        assert verify_case(conn, "CASE-1").ok
    assert case.version == 3 and case.phase is Phase.CONTAINMENT and case.notes[0].text == "first"
    assert entries[2].data["to"] == "containment" and entries[2].data["version"] == 3


def test_concurrent_change_is_a_conflict_not_a_lost_update(rstore: Store) -> None:
    _open(rstore)
    with rstore.read() as conn:
        seen_by_alice = load_case(conn, "CASE-1")
        seen_by_bob = load_case(conn, "CASE-1")
    with rstore.transaction() as conn:
        change_case(conn, "CASE-1", "alice", "note", _note("alice's"), case=seen_by_alice, now=T0)
    with pytest.raises(ConflictError, match=r"version 1.*version 2"), rstore.transaction() as conn:
        change_case(conn, "CASE-1", "bob", "note", _note("bob's"), case=seen_by_bob, now=T0)
    with rstore.read() as conn:
        case = load_case(conn, "CASE-1")
        assert [n.text for n in case.notes] == ["alice's"] and case.version == 2
        assert len(load_audit(conn, "CASE-1")) == 2  # the refused change left no audit entry


def test_a_write_racing_between_read_and_update_is_refused(rstore: Store) -> None:
    _open(rstore)

    def meanwhile_bob_writes(case: Case) -> dict[str, str]:
        with rstore.transaction() as other:
            change_case(other, "CASE-1", "bob", "note", _note("bob's"), now=T0)
        return _note("alice's")(case)

    with pytest.raises(ConflictError, match="someone else wrote it meanwhile"), rstore.transaction() as conn:
        change_case(conn, "CASE-1", "alice", "note", meanwhile_bob_writes, now=T0)
    with rstore.read() as conn:
        assert [n.text for n in load_case(conn, "CASE-1").notes] == ["bob's"]
        assert verify_case(conn, "CASE-1").ok


def test_expected_version_from_the_command_line(rstore: Store) -> None:
    _open(rstore)
    with rstore.transaction() as conn:
        change_case(conn, "CASE-1", "alice", "note", _note("a"), expected_version=1, now=T0)
    with pytest.raises(ConflictError), rstore.transaction() as conn:
        change_case(conn, "CASE-1", "bob", "note", _note("b"), expected_version=1, now=T0)


def test_tampering_is_found_and_named(rstore: Store) -> None:
    _open(rstore)
    with rstore.transaction() as conn:
        for text in ("a", "b", "c"):
            change_case(conn, "CASE-1", "alice", "note", _note(text), now=T0)
        conn.execute(update(respond_audit).where(respond_audit.c.seq == 3).values(actor="mallory"))
    with rstore.read() as conn:
        verdict = verify_case(conn, "CASE-1")
    assert not verdict.ok and verdict.first_bad == 3
    with rstore.transaction() as conn:
        conn.execute(update(respond_audit).where(respond_audit.c.seq == 3).values(actor="alice"))
        assert verify_case(conn, "CASE-1").ok
        conn.execute(delete(respond_audit).where(respond_audit.c.seq == 2))
        assert verify(load_audit(conn, "CASE-1")).first_bad == 3


def test_life_cycle_rules(rstore: Store) -> None:
    case = _open(rstore)
    with pytest.raises(InputError, match="cannot move from detection-analysis to recovery"):
        move(case, Phase.RECOVERY, T0)
    for phase in (Phase.CONTAINMENT, Phase.DETECTION_ANALYSIS, Phase.CONTAINMENT, Phase.ERADICATION,
                  Phase.RECOVERY, Phase.POST_INCIDENT):
        move(case, phase, T0)
    with pytest.raises(InputError, match="closed"):
        move(case, Phase.CONTAINMENT, T0)
    with pytest.raises(InputError, match="unknown phase"):
        Phase.parse("triage")


def test_bad_input_is_clear(rstore: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="clock skew"), rstore.transaction() as conn:
        create_case(conn, Case("CASE-2", "future", T0, T0 + timedelta(hours=2)), "alice", now=T0)
    with pytest.raises(InputError, match="no time zone"), rstore.transaction() as conn:
        create_case(conn, Case("CASE-3", "naive", T0, T0.replace(tzinfo=None)), "alice", now=T0)
    with pytest.raises(NotFoundError), rstore.read() as conn:
        load_case(conn, "CASE-404")
    with pytest.raises(InputError, match="unknown type"):
        Observable("phone", "123")
    with pytest.raises(InputError, match="no such file"):
        Evidence.of_file(tmp_path / "missing.bin")
    with rstore.read() as conn:
        assert list_cases(conn) == []


def test_file_evidence_is_hashed() -> None:
    path = Path(__file__)
    item = Evidence.of_file(path, "this test")
    import hashlib

    assert item.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and item.kind == "file"


def test_open_from_incident(rstore: Store) -> None:
    incident = Incident("INC-1", "Phishing on ws-1", T0 - timedelta(hours=3), T0, stage=Stage.LATERAL_MOVEMENT,
                        severity=4, assets={"ws-1"}, organisations={"h1"}, techniques={"T1566.001"},
                        entities={("ip", "198.51.100.7"), ("user", "j.doe"), ("user", "Jane Doe"),
                                  ("patient", "p1"), ("patient", "p2"), ("host", "ws-1.h1.local")})
    with rstore.transaction() as conn:
        save_incidents(conn, [incident])
        case = open_from_incident(conn, "INC-1", "alice", now=T0)
    assert case.incident_id == "INC-1" and case.severity == 4 and case.assets == ["ws-1"]
    assert case.accounts == ["j.doe"] and "Jane Doe" in case.description and case.patients == 2
    assert {(o.type, o.value) for o in case.observables} == {("ipv4", "198.51.100.7"), ("domain", "ws-1.h1.local")}
    with pytest.raises(InputError, match="already has case"), rstore.transaction() as conn:
        open_from_incident(conn, "INC-1", "alice", now=T0)
    with pytest.raises(InputError, match="no incident"), rstore.transaction() as conn:
        open_from_incident(conn, "INC-404", "alice", now=T0)


def test_an_incident_host_named_by_its_address_is_an_address_observable() -> None:
    """The beacon's host entity `host:198.51.100.77` made a `domain` observable that the phishing playbook's
    sinkhole refused on every case; it is one ipv4 observable now, beside the same `ip:` entity."""
    doc = {"entities": ["host:198.51.100.77", "ip:198.51.100.77", "domain:evil.example", "host:sta-ws-03",
                        "ip:fe80::1", "user:alice"]}
    assert [(o.type, o.value) for o in incident_observables(doc)] == [
        ("ipv4", "198.51.100.77"), ("domain", "evil.example"), ("domain", "sta-ws-03"), ("ipv6", "fe80::1")]


def test_controllers_without_patients_leave_out_the_organisations_that_serve_another(rstore: Store) -> None:
    """h1's EHR depends on the provider's PACS (a processor); lab-2 serves nobody involved with it."""
    orgs = (Organisation("h1", "Hospital", "hospital", "DE"), Organisation("pacs-co", "PACS", "provider", "DE"),
            Organisation("lab-2", "Lab", "laboratory", "DE"))
    zones = tuple(Zone(f"{o.id}-z", o.id, "IT", "internal") for o in orgs)
    assets = (Asset("h1-ehr", "h1", "h1-z", "ehr", "EHR"), Asset("h1-ws", "h1", "h1-z", "workstation", "PC"),
              Asset("pacs-1", "pacs-co", "pacs-co-z", "pacs", "PACS"),
              Asset("lab-lis", "lab-2", "lab-2-z", "lis", "LIS"))
    dependencies = (Dependency("h1-ehr", "pacs-1", "data"), Dependency("h1-ehr", "h1-ws", "data"))
    with rstore.transaction() as conn:
        replace_inventory(conn, Inventory(orgs, zones, assets, (), dependencies))
    with rstore.read() as conn:
        assert controllers_among(conn, ["pacs-co", "h1"]) == ["h1"]  # the provider only serves h1
        assert controllers_among(conn, ["h1", "pacs-co", "lab-2"]) == ["h1", "lab-2"]
        assert controllers_among(conn, ["pacs-co", "lab-2"]) == ["pacs-co", "lab-2"]  # neither serves the other
        assert controllers_among(conn, ["pacs-co"]) == ["pacs-co"]


def test_a_case_from_an_incident_counts_the_patients_of_its_events_by_their_assigning_authority(
        rstore: Store) -> None:
    """Patients from the stored events the alerts rest on: p1 is the hospital's by its identifier's authority
    (the hospital's HL7 facility) though logged for the PACS provider, p2 the provider's by where it was logged;
    an event without a patient counts for nothing; the evidence names every event once."""
    orgs = (Organisation("h1", "Hospital", "hospital", "DE"), Organisation("pacs-co", "PACS", "provider", "DE"))
    zones = (Zone("h1-z", "h1", "IT", "internal"), Zone("pacs-z", "pacs-co", "IT", "internal"))
    assets = (Asset("h1-his", "h1", "h1-z", "his", "HIS", hl7=Hl7Identity(("HIS",), "H1-FACILITY")),
              Asset("pacs-1", "pacs-co", "pacs-z", "pacs", "PACS"))
    with rstore.transaction() as conn:
        replace_inventory(conn, Inventory(orgs, zones, assets, (), (Dependency("h1-his", "pacs-1", "data"),)))
        logged = {"organization.id": "pacs-co"}
        insert_events(conn, [
            Event(T0, {**logged, "patient.id": "p1", "patient.identifiers": [{"id": "p1", "authority": "h1-facility"}]},
                  None, source="dicom", record=1, key="k1"),
            Event(T0, {**logged, "patient.id": "p1"}, None, source="dicom", record=2, key="k2"),
            Event(T0, {**logged, "patient.id": "p2"}, None, source="dicom", record=3, key="k3"),
            Event(T0, {**logged, "source.ip": "10.0.0.9"}, None, source="dicom", record=4, key="k4"),
        ])
        first = Alert("sigma", "r1", "C-MOVE sweep", "high", T0, events=(EventRef("dicom", 1, "k1"),
                                                                       EventRef("dicom", 2, "k2")))
        second = Alert("sigma", "r2", "Odd reads", "high", T0 + timedelta(minutes=1),
                       events=(EventRef("dicom", 2, "k2"), EventRef("dicom", 3, "k3"), EventRef("dicom", 4, "k4")))
        save_alerts(conn, [first, second])
        save_incidents(conn, [Incident("INC-P", "Exfiltration from the PACS", T0, T0, severity=3,
                                       assets={"pacs-1"}, organisations={"pacs-co", "h1"},
                                       alert_ids=[first.id, second.id])])
        case = open_from_incident(conn, "INC-P", "alice", now=T0 + timedelta(hours=1))
    assert case.patients == 2 and "4 stored events of the incident's 2 alerts" in case.patients_basis
    assert case.controllers == ["h1", "pacs-co"] or case.controllers == ["pacs-co", "h1"]  # one patient each
    assert [(e.ref, e.description) for e in case.evidence] == [  # newest alert first
        ("k2", "Odd reads (dicom)"), ("k3", "Odd reads (dicom)"), ("k4", "Odd reads (dicom)"),
        ("k1", "C-MOVE sweep (dicom)")]


def test_a_case_counts_the_patients_a_privacy_alert_names_beyond_the_events_it_keeps(rstore: Store) -> None:
    """An insider's session alert names every patient read (`details["patients"]`) but keeps only its last
    MAX_ALERT_EVENTS events: the case counts the named ones too, for the organisation of the alert's events."""
    orgs = (Organisation("h1", "Hospital", "hospital", "DE"),)
    with rstore.transaction() as conn:
        replace_inventory(conn, Inventory(orgs, (Zone("h1-z", "h1", "IT", "internal"),),
                                          (Asset("h1-ehr", "h1", "h1-z", "ehr", "EHR"),), (), ()))
        reads = [Event(T0 + timedelta(seconds=n), {"organization.id": "h1", "patient.id": f"p{n}"}, None,
                       source="audit", record=n, key=f"r{n}") for n in range(MAX_ALERT_EVENTS + 50)]
        insert_events(conn, reads)
        kept = reads[-MAX_ALERT_EVENTS:]
        alert = Alert("privacy", "privacy:volume", "Unusual patient record volume", "high", T0,
                      events=tuple(EventRef(e.source, e.record, e.key) for e in kept),
                      details={"patients": [e.fields["patient.id"] for e in reads], "reads": len(reads)})
        save_alerts(conn, [alert])
        save_incidents(conn, [Incident("INC-V", "Insider browsing", T0, T0, severity=3, assets={"h1-ehr"},
                                       organisations={"h1"}, alert_ids=[alert.id])])
        case = open_from_incident(conn, "INC-V", "alice", now=T0 + timedelta(hours=1))
    assert case.patients == MAX_ALERT_EVENTS + 50 and case.controllers == ["h1"]
    assert (f"{MAX_ALERT_EVENTS} stored events of the incident's 1 alert and named by 1 of them"
            in case.patients_basis)
