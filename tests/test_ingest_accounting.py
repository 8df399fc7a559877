"""Every input record accounted for: for each format, `read = stored + quarantined`, one quarantine
row per bad record, checked by hypothesis over good records mixed with bad ones (binary lines, lines
cut short, `[1,2,3]`, records of another format), plain or inside a gzip or zip container.
EVTX and DICOM Part 10 (binary files, not lines) have their own properties below."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from conftest import shared
from healthswarm.ingest import containers
from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.model import Event, Reject
from healthswarm.store import Store

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def _lines(*parts: str, n: int = 60) -> list[bytes]:
    return [line for line in shared(*parts).read_bytes().splitlines()[:n] if line.strip()]


@cache
def _windows() -> list[bytes]:
    path = shared("windows", "security-datasets", "defense_evasion", "host", "psh_mavinject_dll_notepad.zip")
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if not i.filename.startswith("__MACOSX/"))
        return [line for line in archive.read(member).splitlines()[:60] if line.strip()]


@cache
def _fhir() -> list[bytes]:
    folder = shared("fhir")
    return [orjson.dumps(orjson.loads(p.read_bytes())) for p in sorted(folder.glob("AuditEvent-*.json"))]


@cache
def _hl7() -> list[bytes]:
    messages = []
    for path in sorted(shared("hl7v2").glob("*.hl7"))[:20]:
        text = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r")
        messages.append(text)
    return messages


def _dicom(uid: int) -> bytes:
    return orjson.dumps({"ts": f"2026-03-01T10:{uid % 60:02d}:00Z", "calling_ae": "MODALITY1", "called_ae": "PACS",
                         "src_ip": "10.1.2.3", "dst_ip": "10.1.9.9", "dst_port": 104, "command": "C-FIND",
                         "status": 0, "user": f"u{uid}"})


def _iomt(uid: int) -> bytes:
    return orjson.dumps({"device_id": f"pump-{uid}", "device_type": "infusion_pump", "ts": 1714557600 + uid,
                         "metrics": {"rate_ml_h": 12.5}})


def _syslog(uid: int) -> bytes:
    if uid % 2:
        return f"<34>1 2026-10-11T22:14:15.003Z host{uid} sshd {uid} ID47 - Failed password for bob".encode()
    return f"<13>Oct 11 22:14:{uid % 60:02d} myhost sshd[{uid}]: Accepted password for bob".encode()


def _auditd(uid: int) -> bytes:
    return (f'type=USER_LOGIN msg=audit(1364475353.159:{uid + 1}): pid=3280 uid=0 auid=4294967295 ses=4294967295 '
            f'msg=\'op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=10.0.0.{uid % 250} terminal=ssh '
            "res=failed'").encode()


def _pool(records: Callable[[], list[bytes]]) -> Callable[[int], bytes]:
    return lambda uid: records()[uid % len(records())]


# format → (the i-th good record, the header lines the file starts with)
GOOD: dict[str, tuple[Callable[[int], bytes], Callable[[], bytes]]] = {
    "suricata": (_pool(lambda: _lines("suricata", "eve-2.json")), lambda: b""),
    "zeek": (_pool(lambda: _lines("zeek", "json", "conn.log")), lambda: b""),
    "windows-json": (_pool(_windows), lambda: b""),
    "fhir": (_pool(_fhir), lambda: b""),
    "dicom": (_dicom, lambda: b""),
    "iomt-json": (_iomt, lambda: b""),
    "syslog": (_syslog, lambda: b""),
    "auditd": (_auditd, lambda: b""),
    "hl7": (_pool(_hl7), lambda: b""),
    "cicflowmeter": (_pool(lambda: _lines("flows", "cicids2017", "Botnet_736.csv")[1:]),
                     lambda: _lines("flows", "cicids2017", "Botnet_736.csv")[0] + b"\n"),
    "ton-iot": (_pool(lambda: _lines("iot", "ton-iot", "Train_Test_IoT_Fridge.csv")[1:]),
                lambda: _lines("iot", "ton-iot", "Train_Test_IoT_Fridge.csv")[0] + b"\n"),
    "nsl-kdd": (_pool(lambda: _lines("flows", "nsl-kdd", "KDDTest+.txt")), lambda: b""),
}

OTHER_FORMAT = {  # a record of another format, which this one must reject rather than store
    "suricata": b'{"ts": 1575413096.05, "uid": "CH5", "id.orig_h": "10.1.1.1"}',
    "zeek": b'{"timestamp": "2022-02-08T09:40:29.080710-0500", "event_type": "flow", "src_ip": "10.0.0.1"}',
    "windows-json": b'{"resourceType": "AuditEvent", "recorded": "2026-01-01T00:00:00Z"}',
    "fhir": b'{"EventID": 4624, "Channel": "Security", "@timestamp": "2026-01-01T00:00:00Z"}',
    "dicom": b'{"device_id": "pump-1", "ts": 1714557600, "command": "start"}',
    "iomt-json": b'{"timestamp": "2022-02-08T09:40:29.080710-0500", "event_type": "flow", "src_ip": "10.0.0.1"}',
    "syslog": b'{"EventID": 4624, "Channel": "Security"}',
    "auditd": b"<13>Oct 11 22:14:15 myhost sshd[1]: Accepted password for bob",
    "hl7": b'{"resourceType": "AuditEvent"}',
    "cicflowmeter": b"0,tcp,other,REJ,0,0",
    "ton-iot": b"0,tcp,other,REJ,0,0,0,0,0,0,0,0,0,0",
    "nsl-kdd": b"Flow ID,Src IP,Src Port",
}


def bad_records(name: str) -> st.SearchStrategy[bytes]:
    # binary bytes, without line ends nor the MLLP frame bytes HL7 splits messages at
    binary = st.binary(min_size=0, max_size=40).map(
        lambda b: b"\x00\xff\xfe" + bytes(c for c in b if c not in b"\n\r\x0b\x1c"))
    cut = st.integers(min_value=0, max_value=10_000).map(lambda uid: _cut(GOOD[name][0](uid)))
    fixed = [b"[1,2,3]", OTHER_FORMAT[name]]
    if name in ("syslog", "auditd", "hl7"):  # a prefix of a text record can still be a record of these
        return st.one_of(binary, st.sampled_from(fixed))
    return st.one_of(binary, cut, st.sampled_from(fixed))


def _cut(record: bytes) -> bytes:
    """A JSON record cut inside a string, or a CSV row cut at its middle comma (too few columns)."""
    if record[:1] == b"{":
        quote = record.find(b'"', len(record) // 2)
        return record[: quote + 2] if quote > 0 else record[: len(record) // 2]
    commas = [i for i, c in enumerate(record) if c == 0x2C]
    return record[: commas[len(commas) // 2]] if commas else b"\x00"


def wrap(data: bytes, how: str) -> bytes:
    if how == "gzip":
        import gzip

        return gzip.compress(data)
    if how == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("records.log", data)
        return buffer.getvalue()
    return data


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path_factory.mktemp('accounting') / 'a.db'}")
    yield s
    s.close()


_RUN = itertools.count()


@pytest.mark.parametrize("name", sorted(GOOD))
@SETTINGS
@given(data=st.data())
def test_read_equals_stored_plus_quarantined(store: Store, name: str, data: st.DataObject) -> None:
    good, header = GOOD[name]
    plan = data.draw(st.lists(st.booleans(), min_size=1, max_size=12), label="good?")
    # distinct uids: auditd joins the lines of one serial into one event, as it should
    records = [good(16 * data.draw(st.integers(0, 1000), label="uid") + index) if ok
               else data.draw(bad_records(name), label="bad") for index, ok in enumerate(plan)]
    separator = b"\n"
    text = header() + separator.join(records) + b"\n"
    how = data.draw(st.sampled_from(["plain", "gzip", "zip"]), label="container")
    fmt = get_format(name)
    items = list(containers.read(io.BytesIO(wrap(text, how)), "input", 0, fmt))
    events = [i for i in items if isinstance(i, Event)]
    rejects = [i for i in items if isinstance(i, Reject)]
    if name == "dicom" and not any(r[:1] in (b"{", b"[") for r in records):
        # neither Part 10 nor a line of JSON in it: the input is one bad record, not DICOM at all
        assert len(items) == 1 and isinstance(items[0], Reject) and "not a DICOM Part 10 file" in items[0].reason
        return
    assert len(events) == sum(plan), [(type(i).__name__, getattr(i, "reason", "")) for i in items]
    assert len(rejects) == len(plan) - sum(plan), [r.reason for r in rejects]  # one row per bad record
    assert all(r.reason for r in rejects)
    # through the pipeline into the store: every record read is stored or quarantined, once
    n = next(_RUN)
    pipeline = Pipeline(store)
    pipeline.run(iter(items), source=f"{name}-{n}", identity=f"{name}-{n}")
    assert pipeline.stats.stored + pipeline.stats.quarantined == len(records)
    assert pipeline.stats.stored == sum(plan)


# -- binary formats ---------------------------------------------------------------------------------


@cache
def _evtx() -> tuple[bytes, list[Event]]:
    data = shared("windows", "evtx-attack-samples", "AutomatedTestingTools",
                  "PanacheSysmon_vs_AtomicRedTeam01.evtx").read_bytes()
    return data, [e for e in get_format("evtx").parse(io.BytesIO(data), "e") if isinstance(e, Event)]


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(0, 16), offset=st.integers(600, 65536 - 2048), fill=st.sampled_from([b"\xff", b"\x00", b"A"]))
def test_evtx_damage_in_one_chunk_loses_nothing_elsewhere(chunk: int, offset: int, fill: bytes) -> None:
    data, whole = _evtx()
    damaged = bytearray(data)
    start = 4096 + chunk * 65536 + offset
    damaged[start : start + 2048] = fill * 2048
    items = list(get_format("evtx").parse(io.BytesIO(bytes(damaged)), "e"))
    assert [i.position for i in items] == list(range(1, len(items) + 1))
    original = {e.original["EventRecordID"]: e.original for e in whole}
    events = [i for i in items if isinstance(i, Event)]
    in_chunk = {e.original["EventRecordID"] for e in _chunk_records(chunk)}
    for event in events:  # nothing made up outside the damaged chunk (EVTX records carry no checksum of
        # their own: a value overwritten inside a record that still parses is read as written now)
        if event.original["EventRecordID"] not in in_chunk:
            assert event.original == original[event.original["EventRecordID"]]
    # records of the other chunks are all read
    assert set(original) - in_chunk <= {e.original["EventRecordID"] for e in events}
    if len(events) < len(whole):
        assert any(isinstance(i, Reject) for i in items)  # a loss is never silent


@cache
def _chunk_records(chunk: int) -> list[Event]:
    data, _ = _evtx()
    one = data[:4096] + data[4096 + chunk * 65536 : 4096 + (chunk + 1) * 65536]
    return [e for e in get_format("evtx").parse(io.BytesIO(one), "c") if isinstance(e, Event)]


@settings(max_examples=20, deadline=None)
@given(fraction=st.floats(0.0, 0.999), name=st.sampled_from(["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"]))
def test_dicom_part10_cut_inside_its_pixel_data_is_refused(tmp_path_factory: pytest.TempPathFactory, fraction: float,
                                                           name: str) -> None:
    data = Path(get_testdata_file(name)).read_bytes()
    pixels = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, the last element of these files
    cut = pixels + 1 + int((len(data) - pixels - 1) * fraction)
    (item,) = list(get_format("dicom").parse(io.BytesIO(data[:cut]), "d"))
    # cut inside the element's header pydicom itself fails; anywhere in its value our length walk does
    assert isinstance(item, Reject) and ("truncated" in item.reason or "unreadable" in item.reason), item.reason


def test_dicom_part10_with_a_valid_preamble_and_random_bytes_is_refused(tmp_path: Path) -> None:
    import random

    path = tmp_path / "random.dcm"
    for seed in range(20):   # seeded: which check refuses it depends on the bytes
        path.write_bytes(b"\x00" * 128 + b"DICM" + random.Random(seed).randbytes(50_000))
        (item,) = list(get_format("dicom").parse(path.open("rb"), str(path)))  # a file: it has a modification time
        assert isinstance(item, Reject) and item.reason, (seed, item)
    cut = tmp_path / "third.dcm"
    whole = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cut.write_bytes(whole[: len(whole) // 3])
    (item,) = list(get_format("dicom").parse(cut.open("rb"), str(cut)))
    assert isinstance(item, Reject) and "truncated" in item.reason
