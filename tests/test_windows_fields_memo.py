"""What `windows_fields` remembers to flatten and map EVTX records faster — the flat names of System attributes and
the ECS fields that event id, provider and channel alone decide — is bounded (a crafted log names anything), never
shared between events, and gives what computing afresh gives."""

from __future__ import annotations

from typing import Any

from healthswarm.ingest.formats import windows_fields
from healthswarm.ingest.formats.windows_fields import ecs_fields, flatten_event_json


def record(provider: str, event_id: Any = 4688, channel: str = "Security") -> dict[str, Any]:
    return {"Provider_Name": provider, "EventID": event_id, "Channel": channel, "EventRecordID": 7,
            "Computer": "ws-1", "NewProcessName": "C:\\Windows\\System32\\cmd.exe"}


def test_each_event_gets_its_own_ecs_fields() -> None:
    first = ecs_fields(record("Microsoft-Windows-Security-Auditing"))
    first["event.code"] = "changed"
    first["host.name"] = "changed"
    again = ecs_fields(record("Microsoft-Windows-Security-Auditing"))
    assert again["event.code"] == "4688" and again["host.name"] == "ws-1"
    assert again["process.name"] == "cmd.exe" and again["event.category"] == ["process"]


def test_event_ids_of_other_types_are_not_taken_for_ints() -> None:
    as_int, as_text, as_bool = (ecs_fields(record("P", eid)) for eid in (1, "1", True))
    assert as_int["winlog.event_id"] == 1 and type(as_int["winlog.event_id"]) is int
    assert as_text["winlog.event_id"] == "1" and as_text["event.code"] == "1"
    assert as_bool["winlog.event_id"] is True and as_bool["event.code"] == "True"


def test_the_kinds_of_events_remembered_are_bounded() -> None:
    for n in range(windows_fields._HEADS_MAX + 500):
        provider = f"Provider-{n}"
        fields = ecs_fields(record(provider, channel=f"Channel-{n % 7}"))
        assert fields["event.provider"] == fields["winlog.provider_name"] == provider
        assert fields["winlog.channel"] == f"Channel-{n % 7}"
        assert len(windows_fields._HEADS) <= windows_fields._HEADS_MAX


def test_attribute_names_are_bounded_and_xmlns_is_skipped() -> None:
    many = windows_fields._NAMES_MAX + 50
    system: dict[str, Any] = {f"Element{n}": {"#attributes": {"Name": f"v{n}", "xmlns": "urn:x", "xmlns:a": "urn:a"}}
                              for n in range(many)}
    system["EventID"] = 4624
    for _ in range(2):  # once building the names, once reading them back
        flat = flatten_event_json({"System": system, "EventData": {"TargetUserName": "alice"}})
        assert flat == {**{f"Element{n}_Name": f"v{n}" for n in range(many)}, "EventID": 4624,
                        "TargetUserName": "alice"}
    assert len(windows_fields._ATTRIBUTE_NAMES) <= windows_fields._NAMES_MAX
    assert all(len(names) <= windows_fields._NAMES_MAX for names in windows_fields._ATTRIBUTE_NAMES.values())
