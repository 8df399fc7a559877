"""Windows formats: EVTX (evtx package) and Windows JSON (evtx_dump, winlogbeat, OTRF Security-Datasets)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import evtx as evtx_package
import orjson
import pytest

from conftest import shared
from healthswarm.ingest.formats.evtx import FORMAT as EVTX
from healthswarm.ingest.formats.windows_json import FORMAT as WINDOWS_JSON
from healthswarm.model import Event, Reject


def parse_file(fmt, path: Path, start: int = 0) -> list[Event | Reject]:
    with path.open("rb") as stream:
        return list(fmt.parse(stream, str(path), start))


def events(items: list[Event | Reject]) -> list[Event]:
    return [i for i in items if isinstance(i, Event)]


def rejects(items: list[Event | Reject]) -> list[Reject]:
    return [i for i in items if isinstance(i, Reject)]


def evtx_files() -> list[Path]:
    found = sorted(shared("windows").rglob("*.evtx")) + sorted(shared("sigma", "regression_data").rglob("*.evtx"))
    assert len(found) > 200
    return found


def independent_count(path: Path) -> int:
    """Record count straight from the evtx package, nothing of ours involved."""
    return sum(1 for _ in evtx_package.PyEvtxParser(str(path)).records())


# -- EVTX ---------------------------------------------------------------------------------------


def test_every_evtx_sample_parses_with_the_independent_count() -> None:
    total = 0
    for path in evtx_files():
        items = parse_file(EVTX, path)
        assert not rejects(items), (path, rejects(items)[:1])
        assert len(items) == independent_count(path), path
        assert all(e.timestamp.tzinfo is UTC or e.timestamp.utcoffset().total_seconds() == 0 for e in events(items))
        total += len(items)
    assert total > 3500


def sysmon_process_creation() -> Event:
    path = shared("sigma", "regression_data", "rules", "windows", "process_creation")
    for evtx_path in sorted(path.rglob("*.evtx")):
        for event in events(parse_file(EVTX, evtx_path)):
            if event.original["EventID"] == 1 and event.original.get("Provider_Name") == "Microsoft-Windows-Sysmon":
                return event
    raise AssertionError("no Sysmon EID 1 in the regression data")


def test_evtx_sysmon_1_original_and_ecs_fields() -> None:
    path = shared("windows", "evtx-attack-samples", "Defense Evasion", "DE_UAC_Disabled_Sysmon_12_13.evtx")
    items = events(parse_file(EVTX, path))
    first = items[0]
    # values read with evtx_dump from this file: record 18617 is reg.exe disabling UAC
    created = next(e for e in items if e.original["EventID"] == 1)
    assert created.original["EventRecordID"] == 18617
    assert created.original["Image"] == "C:\\Windows\\System32\\reg.exe"
    assert "EnableLUA" in created.original["CommandLine"]
    assert created.original["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert created.original["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert created.original["Provider_Guid"] == "5770385F-C22A-43E0-BF4C-06F5698FFBD9"
    assert created.original["Computer"] == "DC1.insecurebank.local"
    assert created.original["Security_UserID"] == "S-1-5-18"
    assert created.original["Execution_ProcessID"] == 1780
    assert created.original["TimeCreated_SystemTime"] == "2019-05-16T14:17:15.762708Z"
    assert created.original["Keywords"] == "0x8000000000000000"
    f = created.fields
    assert f["event.code"] == "1"
    assert f["process.executable"] == "C:\\Windows\\System32\\reg.exe"
    assert f["process.name"] == "reg.exe"
    assert f["process.command_line"].startswith("reg  add hklm\\software")
    assert f["process.pid"] == 3788
    assert f["process.parent.executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert f["user.name"] == "Administrator" and f["user.domain"] == "insecurebank"
    assert f["host.name"] == "DC1.insecurebank.local"
    assert f["winlog.channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert f["winlog.record_id"] == 18617
    assert f["observer.type"] == "windows"
    assert created.timestamp == datetime(2019, 5, 16, 14, 17, 15, 762708, tzinfo=UTC)
    # positions are record ordinals
    assert [e.position for e in items] == list(range(1, len(items) + 1))
    assert first.record == 1


def test_evtx_security_and_network_mapping() -> None:
    logon = shared(
        "windows", "evtx-attack-samples", "Lateral Movement", "LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx"
    )
    found = [e for e in events(parse_file(EVTX, logon)) if e.original["EventID"] == 4624]
    assert found
    with_ip = [e for e in found if "source.ip" in e.fields]
    assert with_ip, "4624 events carry IpAddress"
    event = with_ip[0]
    assert event.fields["source.ip"] == event.original["IpAddress"].removeprefix("::ffff:")
    assert event.fields["user.name"] == event.original["TargetUserName"]
    assert event.fields["event.outcome"] == "success"
    assert event.fields["winlog.logon.type"] == int(event.original["LogonType"])

    sysmon3 = shared(
        "windows", "evtx-attack-samples", "Command and Control", "tunna_iis_rdp_smb_tunneling_sysmon_3.evtx"
    )
    network = [e for e in events(parse_file(EVTX, sysmon3)) if e.original["EventID"] == 3]
    assert network
    net = network[0]
    assert net.fields["source.ip"] == net.original["SourceIp"]
    assert net.fields["destination.ip"] == net.original["DestinationIp"]
    assert net.fields["destination.port"] == int(net.original["DestinationPort"])
    assert net.fields["network.transport"] == "tcp"


def test_evtx_unnamed_data_and_userdata_are_flattened() -> None:
    service = shared("windows", "evtx-attack-samples", "Defense Evasion", "DE_WinEventLogSvc_Crash_System_7036.evtx")
    record = events(parse_file(EVTX, service))[0]
    assert record.original["EventID"] == 7036
    assert record.original["EventID_Qualifiers"] == 16384
    assert record.original["param1"] == "Windows Error Reporting Service"
    mssql = shared("windows", "evtx-attack-samples", "Defense Evasion", "DE_xp_cmdshell_enabled_MSSQL_EID_15457.evtx")
    unnamed = next(e for e in events(parse_file(EVTX, mssql)) if e.original["EventID"] == 15457)
    assert (unnamed.original["Data"], unnamed.original["Data_1"], unnamed.original["Data_2"]) == (
        "show advanced options", "0", "1",
    )  # fmt: skip
    assert unnamed.original["Binary"].startswith("613C")
    cleared = shared(
        "windows", "evtx-attack-samples", "Defense Evasion", "DE_suspicious_remote_eventlog_svc_access_5145.evtx"
    )
    user_data = [
        e
        for e in events(parse_file(EVTX, cleared))
        if "SubjectUserName" in e.original and e.original["EventID"] == 1102
    ]
    assert user_data and user_data[0].original["SubjectUserName"] == "Administrator"


def test_evtx_resume_skips_records_up_to_start() -> None:
    path = big_evtx()
    everything = parse_file(EVTX, path)
    resumed = parse_file(EVTX, path, start=100)
    assert [e.position for e in resumed] == [e.position for e in everything][100:]
    assert resumed[0].original == everything[100].original
    assert parse_file(EVTX, path, start=len(everything)) == []


def big_evtx() -> Path:
    path = shared("windows", "evtx-attack-samples", "AutomatedTestingTools", "PanacheSysmon_vs_AtomicRedTeam01.evtx")
    assert path.stat().st_size > 4096 + 3 * 65536
    return path


def test_evtx_corrupt_chunk_is_rejected_and_reading_continues(tmp_path: Path) -> None:
    source = big_evtx()
    data = bytearray(source.read_bytes())
    chunk = 4096 + 65536  # the second chunk
    # the chunk's first record, which defines the template every other record of the chunk uses
    data[chunk + 612 : chunk + 3500] = b"\xff" * (3500 - 612)
    broken = tmp_path / "corrupt.evtx"
    broken.write_bytes(bytes(data))
    items = parse_file(EVTX, broken)
    bad = rejects(items)
    assert bad and all("damaged chunk 1" in r.reason and "unreadable" in r.reason for r in bad)
    good = events(items)
    assert len(good) + len(bad) == independent_count(source)  # every record: read or quarantined
    assert 0 < len(good) < independent_count(source)
    assert [i.position for i in items] == list(range(1, len(items) + 1))
    assert any(e.position > bad[-1].position for e in good)  # records after the corrupt chunk were read
    # resuming just after the rejects does not repeat them
    assert not rejects(parse_file(EVTX, broken, start=bad[-1].position))


def test_evtx_damage_inside_a_chunk_loses_only_the_damaged_records(tmp_path: Path) -> None:
    """2 KB overwritten in the middle of a chunk: the records around it are salvaged one by one."""
    source = big_evtx()
    whole = events(parse_file(EVTX, source))
    data = bytearray(source.read_bytes())
    chunk = 4096 + 65536
    data[chunk + 30000 : chunk + 32048] = bytes((i * 37) % 256 for i in range(2048))
    broken = tmp_path / "damaged.evtx"
    broken.write_bytes(bytes(data))
    items = parse_file(EVTX, broken)
    good, bad = events(items), rejects(items)
    assert len(bad) == 1 and "damaged chunk 1" in bad[0].reason  # the damaged span, one reject
    assert len(good) >= len(whole) - 3  # at most the records that lay in the 2 KB span are lost
    kept = {e.original["EventRecordID"] for e in good}
    assert {e.original["EventRecordID"] for e in whole} - kept == set(range(min(whole_ids := {
        e.original["EventRecordID"] for e in whole} - kept), max(whole_ids) + 1))  # one contiguous gap
    assert [i.position for i in items] == list(range(1, len(items) + 1))
    resumed = parse_file(EVTX, broken, start=bad[0].position - 1)
    assert resumed[0].position == bad[0].position and isinstance(resumed[0], Reject)


def test_evtx_truncated_file_and_garbage(tmp_path: Path) -> None:
    data = big_evtx().read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 65536 + 30000])
    items = parse_file(EVTX, cut)
    assert events(items)
    assert "truncated" in rejects(items)[-1].reason
    garbage = tmp_path / "garbage.evtx"
    garbage.write_bytes(b"ElfFile\x00" + b"\x13" * 100)
    bad = parse_file(EVTX, garbage)
    assert len(bad) == 1 and isinstance(bad[0], Reject) and "EVTX header unreadable" in bad[0].reason
    assert "not an EVTX file" in rejects(list(EVTX.parse(io.BytesIO(b"{}"), "x")))[0].reason


# -- Windows JSON ---------------------------------------------------------------------------------


def regression_pairs() -> list[tuple[Path, Path]]:
    root = shared("sigma", "regression_data")
    pairs = [(j, j.with_suffix(".evtx")) for j in sorted(root.rglob("*.json")) if j.with_suffix(".evtx").exists()]
    assert len(pairs) > 100
    return pairs


def _rstrip(flat: dict) -> dict:
    return {k: v.rstrip() if isinstance(v, str) else v for k, v in flat.items()}


# The JSON of this case was edited by hand (casing, nanosecond time): it does not match its EVTX.
HAND_EDITED = {"ad691d92-15f2-4181-9aa4-723c74f9ddc3.json"}


def test_regression_json_and_evtx_give_the_same_original() -> None:
    compared = 0
    for json_path, evtx_path in regression_pairs():
        from_json = parse_file(WINDOWS_JSON, json_path)
        from_evtx = parse_file(EVTX, evtx_path)
        assert not rejects(from_json), (json_path, rejects(from_json)[:1])
        assert len(from_json) == len(from_evtx), json_path
        if json_path.name in HAND_EDITED:
            continue
        # the JSON files of the Sigma repository have trailing blanks stripped from values
        assert [_rstrip(e.original) for e in from_json] == [_rstrip(e.original) for e in from_evtx], json_path
        assert [e.fields["event.code"] for e in from_json] == [e.fields["event.code"] for e in from_evtx]
        compared += 1
    assert compared > 100


def test_identical_originals_for_an_untouched_pair() -> None:
    path = shared(
        "sigma", "regression_data", "rules-threat-hunting", "windows", "image_load",
        "image_load_win_werfaultsecure_dbgcore_dbghelp_load", "8a2f4b1c-3d5e-4f7a-9b2c-1e4f6d8a9c2b.json",
    )  # fmt: skip
    (event,) = parse_file(WINDOWS_JSON, path)
    (same,) = parse_file(EVTX, path.with_suffix(".evtx"))
    assert event.original == same.original
    assert event.original["ImageLoaded"] == "C:\\Windows\\System32\\dbgcore.dll"
    assert event.fields["process.executable"] == "C:\\Windows\\System32\\WerFaultSecure.exe"


def security_dataset_archives() -> list[Path]:
    root = shared("windows", "security-datasets")
    found = sorted(root.rglob("*.zip")) + sorted(root.rglob("*.tar.gz"))
    assert len(found) == 76
    return found


def independent_archive_count(path: Path) -> int:
    """Non-blank JSON lines of the archive's data members, read with the standard library."""
    count = 0
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.startswith("__MACOSX/") and not name.endswith("/"):
                    count += sum(1 for line in archive.read(name).splitlines() if line.strip())
    else:
        with tarfile.open(path, "r|gz") as archive:
            for member in archive:
                if member.isfile():
                    count += sum(1 for line in archive.extractfile(member).read().splitlines() if line.strip())
    return count


FAST_ARCHIVES = ["persistence/host/covenant_persistwmi.tar.gz", "defense_evasion/host/psh_mavinject_dll_notepad.zip"]


@pytest.mark.parametrize("relative", FAST_ARCHIVES)
def test_security_dataset_archive_subset(relative: str) -> None:
    path = shared("windows", "security-datasets", *relative.split("/"))
    items = parse_file(WINDOWS_JSON, path)
    assert not rejects(items), rejects(items)[:2]
    assert len(items) == independent_archive_count(path)
    assert [e.position for e in items] == list(range(1, len(items) + 1))
    assert WINDOWS_JSON.sniff(path.read_bytes()[:65536], path.name) > 0.5


@pytest.mark.slow
def test_every_security_dataset_archive_parses() -> None:
    total = 0
    for path in security_dataset_archives():
        items = parse_file(WINDOWS_JSON, path)
        assert not rejects(items), (path, rejects(items)[:1])
        assert len(items) == independent_archive_count(path), path
        total += len(items)
    assert total > 370_000


def test_security_datasets_flat_layout_fields() -> None:
    path = shared("windows", "security-datasets", "defense_evasion", "host", "psh_mavinject_dll_notepad.zip")
    items = events(parse_file(WINDOWS_JSON, path))
    sysmon1 = [
        e for e in items if e.original["EventID"] == 1 and e.original.get("Channel", "").endswith("Sysmon/Operational")
    ]
    assert sysmon1
    event = sysmon1[0]
    assert event.original["Provider_Name"] == event.original["SourceName"] == "Microsoft-Windows-Sysmon"
    assert event.original["Computer"] == event.original["Hostname"]
    assert event.fields["process.command_line"] == event.original["CommandLine"]
    assert event.fields["process.executable"] == event.original["Image"]
    assert event.fields["host.name"] == event.original["Hostname"]
    assert all(e.timestamp.utcoffset().total_seconds() == 0 for e in items)


def test_winlogbeat_6_layout_from_a_dataset() -> None:
    path = shared("windows", "security-datasets", "persistence", "host", "covenant_persistwmi.tar.gz")
    items = events(parse_file(WINDOWS_JSON, path))
    beat = [
        e
        for e in items
        if "Provider_Name" in e.original and "computer_name" not in e.original and e.original.get("EventID") == 10
    ]
    assert beat, "winlogbeat 6 records (event_id/event_data) are flattened"
    sample = beat[0]
    assert sample.original["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert sample.original["TargetImage"]
    assert sample.fields["winlog.provider_name"] == sample.original["Provider_Name"]


WINLOGBEAT7 = {
    "@timestamp": "2026-03-01T10:15:00.123Z",
    "event": {"code": "4688"},
    "winlog": {
        "event_id": "4688",
        "channel": "Security",
        "provider_name": "Microsoft-Windows-Security-Auditing",
        "computer_name": "ward3-ws07.hospital.local",
        "record_id": 99123,
        "keywords": ["Audit Success"],
        "process": {"pid": 4, "thread": {"id": 88}},
        "event_data": {
            "SubjectUserName": "nurse7",
            "SubjectDomainName": "HOSPITAL",
            "NewProcessId": "0x1a2c",
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": "cmd.exe /c whoami",
            "ProcessId": "0x0f10",
            "ParentProcessName": "C:\\Windows\\explorer.exe",
        },
    },
}


def test_winlogbeat_7_and_4688_mapping() -> None:
    (event,) = list(WINDOWS_JSON.parse(io.BytesIO(orjson.dumps(WINLOGBEAT7) + b"\n"), "beat"))
    assert isinstance(event, Event)
    assert event.original["EventID"] == 4688
    assert event.original["Channel"] == "Security"
    assert event.original["Computer"] == "ward3-ws07.hospital.local"
    assert event.original["EventRecordID"] == 99123
    assert event.original["Execution_ProcessID"] == 4
    assert event.original["CommandLine"] == "cmd.exe /c whoami"
    f = event.fields
    assert f["process.pid"] == 0x1A2C and f["process.parent.pid"] == 0x0F10
    assert f["process.command_line"] == "cmd.exe /c whoami"
    assert f["process.parent.executable"] == "C:\\Windows\\explorer.exe"
    assert f["user.name"] == "nurse7" and f["user.domain"] == "HOSPITAL"
    assert event.timestamp == datetime(2026, 3, 1, 10, 15, 0, 123000, tzinfo=UTC)


def evtx_dump_records() -> list[bytes]:
    path = regression_pairs()[0][0]
    return [orjson.dumps(e) for e in _json_objects(path.read_bytes())]


def _json_objects(data: bytes) -> list[dict]:
    decoder = json.JSONDecoder()
    text, index, out = data.decode(), 0, []
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        out.append(value)
    return out


def test_json_layouts_lines_pretty_array_and_record_separators() -> None:
    record = orjson.loads(evtx_dump_records()[0])
    lines = b"\n".join([orjson.dumps(record)] * 3) + b"\n"
    pretty = b"\n".join(orjson.dumps(record, option=orjson.OPT_INDENT_2) for _ in range(3)) + b"\n"
    array = orjson.dumps([record] * 3, option=orjson.OPT_INDENT_2) + b"\n"
    one_line_array = orjson.dumps([record] * 3) + b"\n"
    dump = b"".join(b"Record %d\n" % i + orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n" for i in range(3))
    for name, data in [
        ("lines", lines),
        ("pretty", pretty),
        ("array", array),
        ("one-line", one_line_array),
        ("dump", dump),
    ]:
        items = list(WINDOWS_JSON.parse(io.BytesIO(data), name))
        assert len(items) == 3 and not rejects(items), (name, items)
        assert len({e.position for e in items}) == 3, name  # distinct idempotency positions
        assert WINDOWS_JSON.sniff(data[:65536]) > 0.5, name


def test_json_resume_by_byte_offset() -> None:
    record = orjson.loads(evtx_dump_records()[0])
    pretty = b"\n".join(orjson.dumps(record, option=orjson.OPT_INDENT_2) for _ in range(4)) + b"\n"
    items = list(WINDOWS_JSON.parse(io.BytesIO(pretty), "p"))
    resumed = list(WINDOWS_JSON.parse(io.BytesIO(pretty), "p", start=items[1].position))
    assert [e.position for e in resumed] == [e.position for e in items[2:]]
    one_line = orjson.dumps([record] * 3) + b"\n"
    items = list(WINDOWS_JSON.parse(io.BytesIO(one_line), "a"))
    resumed = list(WINDOWS_JSON.parse(io.BytesIO(one_line), "a", start=items[0].position))
    assert [e.position for e in resumed] == [e.position for e in items[1:]]


def test_archive_resume_by_ordinal_and_gzip_json(tmp_path: Path) -> None:
    path = shared("windows", "security-datasets", "persistence", "host", "covenant_persistwmi.tar.gz")
    everything = parse_file(WINDOWS_JSON, path)
    resumed = parse_file(WINDOWS_JSON, path, start=500)
    assert [e.position for e in resumed] == list(range(501, len(everything) + 1))
    assert resumed[0].original == everything[500].original
    lines = b"".join(orjson.dumps(e.original) + b"\n" for e in everything[:50])
    packed = tmp_path / "events.json.gz"
    packed.write_bytes(gzip.compress(lines))
    again = parse_file(WINDOWS_JSON, packed)
    # a single compressed stream keeps the format's positions: offsets in the decompressed text
    ends = [i + 1 for i, byte in enumerate(lines) if byte == 0x0A]
    assert len(events(again)) == 50 and [e.position for e in again] == ends
    assert [e.position for e in parse_file(WINDOWS_JSON, packed, start=ends[9])] == ends[10:]


def test_bad_windows_json_becomes_rejects(tmp_path: Path) -> None:
    record = evtx_dump_records()[0]
    data = (
        record
        + b"\n"
        + record[: len(record) // 2]
        + b"\n"
        + b'{"foo": 1}\n'
        + b"\xff\xfe\x00garbage\n"
        + record
        + b"\n"
    )
    items = list(WINDOWS_JSON.parse(io.BytesIO(data), "bad"))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Event", "Reject", "Reject", "Reject", "Event"]
    assert "truncated JSON" in items[1].reason or "invalid JSON" in items[1].reason
    assert "not a Windows event" in items[2].reason
    assert items[1].raw and items[1].position < items[2].position
    truncated_pretty = orjson.dumps(orjson.loads(record), option=orjson.OPT_INDENT_2)[:-40]
    (cut,) = list(WINDOWS_JSON.parse(io.BytesIO(truncated_pretty), "cut"))
    assert isinstance(cut, Reject) and "truncated JSON" in cut.reason
    # a zip cut short and a tar.gz cut inside its member
    source = shared("windows", "security-datasets", "persistence", "host", "covenant_persistwmi.tar.gz").read_bytes()
    short = tmp_path / "short.tar.gz"
    short.write_bytes(source[: len(source) // 2])
    items = parse_file(WINDOWS_JSON, short)
    assert events(items) and "truncated or corrupt" in rejects(items)[-1].reason
    broken_zip = tmp_path / "broken.zip"
    broken_zip.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    (bad,) = parse_file(WINDOWS_JSON, broken_zip)
    assert isinstance(bad, Reject) and "zip" in bad.reason
