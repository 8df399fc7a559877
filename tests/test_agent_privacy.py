"""Privacy monitoring in the running agent is fed by the care data the agent ingests: HL7 ADT messages and FHIR
Encounter and CareTeam resources written to the files it follows (no side door) say who treats whom, so a user
reading a patient they treat raises nothing and a user reading a patient they do not treat raises an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import wait_until
from healthswarm.agent.config import parse_config
from healthswarm.agent.runtime import Agent
from healthswarm.config import Settings
from healthswarm.store.alerts import load_alerts
from healthswarm.store.events import list_checkpoints

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
STAFF = """
facilities: [STA]
staff:
  - {id: "2001", logins: [dr.weber], family: Weber, given: Anna, role: physician, wards: [ICU]}
  - {id: "2003", logins: [c.braun], family: Braun, given: Carl, role: nurse, wards: [CARD]}
  - {id: "2005", logins: [m.koch], family: Koch, given: Max, role: physician, wards: [ORTHO]}
"""


def adt(patient: str, ward: str, attending: str, at: datetime) -> str:
    stamp = at.strftime("%Y%m%d%H%M%S")
    pv1 = ["PV1", "1", "I", f"{ward}^01^A^STA", "", "", "", attending] + [""] * 38
    return "\r".join([f"MSH|^~\\&|ORBIS|STA|EPIC|STA|{stamp}+0000||ADT^A01^ADT_A01|C{patient}|P|2.5.1",
                      f"EVN|A01|{stamp}", f"PID|1||{patient}^^^STA^MR||Muster^Erika||19640312|F", "|".join(pv1)])


def encounter(patient: str, practitioner: str, at: datetime) -> dict:
    return {"resourceType": "Encounter", "id": f"enc-{patient}", "status": "in-progress",
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": at.isoformat()},
            "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
            "location": [{"location": {"reference": "Location/CARD"}}]}


def care_team(patient: str, practitioner: str, at: datetime) -> dict:
    return {"resourceType": "CareTeam", "id": f"team-{patient}", "status": "active",
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": at.isoformat()},
            "participant": [{"member": {"reference": f"Practitioner/{practitioner}"}}]}


def read(user: str, patient: str, at: datetime) -> dict:
    return {"resourceType": "AuditEvent", "id": f"ae-{user}-{patient}-{at:%H%M}", "recorded": at.isoformat(),
            "type": {"code": "rest"}, "subtype": [{"code": "read"}], "action": "R", "outcome": "0",
            "agent": [{"type": {"coding": [{"code": "humanuser"}]}, "who": {"identifier": {"value": user}},
                       "requestor": True}],
            "entity": [{"what": {"reference": f"Patient/{patient}"}}]}


def ndjson(resources: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def test_care_data_the_agent_ingests_explains_reads_and_leaves_the_others_alerted(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "ws")
    settings.ensure_workspace()
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "staff.yaml").write_text(STAFF, encoding="utf-8")
    config = parse_config({
        "agent": {"health": "", "status_file": False},
        "sources": {"files": [{"paths": ["logs/*.hl7"], "format": "hl7", "rescan": 0.2},
                              {"paths": ["logs/*.ndjson"], "format": "fhir", "rescan": 0.2}]},
        "detect": {"staff": "staff.yaml", "baselines": False, "models": []},
        "risk": {"live": False},
    }, "test", tmp_path)
    files = {"adt.hl7": adt("P1", "ICU", "2001^Weber^Anna", T0) + "\r\n",
             "care.ndjson": ndjson([encounter("P2", "2003", T0), care_team("P3", "2005", T0)]),
             "audit.ndjson": ndjson([
                 read("dr.weber", "P1", T0 + timedelta(minutes=30)),  # attending of P1's ADT visit
                 read("c.braun", "P2", T0 + timedelta(minutes=31)),  # participant of P2's Encounter
                 read("m.koch", "P3", T0 + timedelta(minutes=32)),  # member of P3's CareTeam
                 read("c.braun", "P1", T0 + timedelta(minutes=40)),  # P1 is on ICU, c.braun works on CARD
                 read("m.koch", "P2", T0 + timedelta(minutes=41)),  # P2's Encounter names c.braun only
             ])}
    for name, text in files.items():
        (logs / name).write_text(text, encoding="utf-8")
    agent = Agent(config, settings)
    agent.start()
    try:
        def judged() -> bool:
            with agent.store.read() as conn:
                read_to = {cp.source: cp.position for cp in list_checkpoints(conn)}
            return (all(read_to.get(str((logs / n).resolve()), -1) >= (logs / n).stat().st_size for n in files)
                    and agent.detector.backlog() == 0)

        wait_until("the care data and the reads judged", judged, 60)
        # reads are judged once the stream has moved past the monitor's decision delay: a later read does that
        with (logs / "audit.ndjson").open("a", encoding="utf-8") as out:
            out.write(ndjson([read("dr.weber", "P1", T0 + timedelta(hours=12))]))
        wait_until("the later read judged", judged, 60)
    finally:
        agent.shutdown()
    with agent.store.read() as conn:
        found = [s.alert for s in load_alerts(conn) if s.alert.detector == "privacy"]
    agent.store.close()
    alerted = sorted((a.details["user"], patient) for a in found for patient in a.details["patients"])
    assert alerted == [("c.braun", "P1"), ("m.koch", "P2")]
    assert {a.rule_id for a in found} == {"privacy:no-relationship"}


def test_encounter_and_care_team_are_events_of_the_fhir_format() -> None:
    import io

    from healthswarm.ingest.formats.fhir import FORMAT as FHIR
    from healthswarm.model import Event, Reject

    undated = {"resourceType": "CareTeam", "id": "t0", "subject": {"reference": "Patient/P9"}}
    data = ndjson([encounter("P2", "2003", T0), care_team("P3", "2005", T0 + timedelta(hours=1)), undated])
    visit, team, bad = FHIR.parse(io.BytesIO(data.encode()), "care")
    assert isinstance(visit, Event) and isinstance(team, Event) and isinstance(bad, Reject)
    assert visit.timestamp == T0 and team.timestamp == T0 + timedelta(hours=1)
    assert (visit.fields["event.action"], visit.fields["patient.id"], visit.fields["fhir.participants"]) == (
        "encounter", "P2", 1)
    assert team.fields["fhir.resource_type"] == "CareTeam" and team.original["participant"][0]["member"]
    assert "P3" not in team.fields["message"]  # the summary holds no patient data
    assert "CareTeam has no valid period.start or meta.lastUpdated" in bad.reason
