"""Property tests: no byte string makes a network/telemetry parser raise, and no record goes missing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared
from healthswarm.ingest.formats import get_format
from healthswarm.model import Event, Reject

MINE = ("suricata", "zeek", "cicflowmeter", "nsl-kdd", "iomt-json", "ton-iot")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(name: str, data: bytes, start: int = 0) -> list[Event | Reject]:
    items = list(get_format(name).parse(io.BytesIO(data), "x", start))
    for item in items:
        assert isinstance(item, Event | Reject)
        if isinstance(item, Event):
            assert item.timestamp.utcoffset() == timedelta(0)
            assert isinstance(item.fields, dict) and item.fields["observer.type"]
        else:
            assert item.reason and item.source == "x" and isinstance(item.raw, bytes)
    positions = [i.position for i in items]
    assert positions == sorted(positions)
    return items


def nonblank(data: bytes) -> list[bytes]:
    """The lines that hold something (a leading byte-order mark is not content)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return [line for line in data.split(b"\n") if line.strip()]


@pytest.mark.parametrize("name", MINE)
@SETTINGS
@given(data=st.binary(max_size=3000))
def test_no_bytes_make_a_parser_raise(name: str, data: bytes) -> None:
    run(name, data)
    get_format(name).sniff(data, "x.log")


@pytest.mark.parametrize("name", MINE)
@SETTINGS
@given(data=st.binary(max_size=600), start=st.integers(min_value=0, max_value=700))
def test_no_start_position_makes_a_parser_raise(name: str, data: bytes, start: int) -> None:
    run(name, data, start)


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_suricata_every_nonblank_line_is_an_event_or_a_reject(data: bytes) -> None:
    assert len(run("suricata", data)) == len(nonblank(data))


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_zeek_every_nonblank_non_header_line_is_an_event_or_a_reject(data: bytes) -> None:
    lines = nonblank(data)
    assert len(run("zeek", data)) == len([line for line in lines if not line.startswith(b"#")])


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_nsl_kdd_every_nonblank_line_is_an_event_or_a_reject(data: bytes) -> None:
    items = run("nsl-kdd", data)
    lines = nonblank(data)
    # a first row of column names is not a record
    header = 1 if lines and lines[0].startswith(b"duration,") and len(lines[0].split(b",")) in (42, 43) else 0
    assert len(items) == len(lines) - header


# --- mutated real lines ---------------------------------------------------------------------------------

SAMPLES = {
    "suricata": ("suricata", "eve-2.json"),
    "zeek": ("zeek", "dns.log"),
    "cicflowmeter": ("flows", "cicids2017", "Heartbleed_11.csv"),
    "nsl-kdd": ("flows", "nsl-kdd", "KDDTest+.txt"),
    "ton-iot": ("iot", "ton-iot", "Train_Test_IoT_Fridge.csv"),
}


def _mutate(draw: st.DrawFn, line: bytes) -> bytes:
    op = draw(st.sampled_from(["cut", "flip", "insert", "delete", "swap"]))
    if not line:
        return draw(st.binary(max_size=20))
    at = draw(st.integers(min_value=0, max_value=len(line) - 1))
    if op == "cut":
        return line[:at]
    if op == "flip":
        return line[:at] + bytes([line[at] ^ draw(st.integers(1, 255))]) + line[at + 1 :]
    if op == "insert":
        return line[:at] + draw(st.binary(min_size=1, max_size=8)) + line[at:]
    if op == "delete":
        return line[:at] + line[at + draw(st.integers(1, 8)) :]
    other = draw(st.integers(min_value=0, max_value=len(line) - 1))
    return line[:other] + line[at:] if other < at else line[:at] + line[other:]


@st.composite
def mutated(draw: st.DrawFn, lines: list[bytes], keep: int) -> bytes:
    """The first `keep` lines (headers) intact, then a few real lines, some mutated."""
    body = draw(st.lists(st.sampled_from(lines[keep:]), min_size=1, max_size=6))
    out = []
    for line in body:
        out.append(_mutate(draw, line) if draw(st.booleans()) else line)
    return b"\n".join(lines[:keep] + out) + b"\n"


HEADER_LINES = {"suricata": 0, "zeek": 8, "cicflowmeter": 1, "nsl-kdd": 0, "ton-iot": 1}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_mutated_real_lines_never_raise_and_are_all_accounted_for(name: str) -> None:
    lines = shared(*SAMPLES[name]).read_bytes().split(b"\n")[:400]
    lines = [line for line in lines if line and not line.startswith(b"#close")]
    keep = HEADER_LINES[name]

    @SETTINGS
    @given(data=mutated(lines, keep))
    def check(data: bytes) -> None:
        items = run(name, data)
        records = nonblank(data)[keep:] if name != "zeek" else [
            line for line in nonblank(data) if not line.startswith(b"#")]
        if name == "nsl-kdd" and records and records[0].startswith(b"duration,") and len(
                records[0].split(b",")) in (42, 43):
            records = records[1:]
        assert len(items) == len(records)
        # an unmutated line is still an event (unless a mutation wrote a new Zeek header line before it)
        good = set(lines[keep:])
        if name == "zeek" and any(line.startswith(b"#") for line in data.split(b"\n")[keep:]):
            return
        for item, line in zip(items, records, strict=True):
            if line in good:
                assert isinstance(item, Event), (item, line)

    check()


@SETTINGS
@given(data=st.lists(st.dictionaries(st.sampled_from(["device_id", "ts", "metrics", "type", "patient_id", "time",
                                                      "device", "readings", "status"]),
                                     st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                                               st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                                               st.lists(st.integers(), max_size=3),
                                               st.dictionaries(st.text(max_size=4), st.integers(), max_size=3))),
                     max_size=6),
       array=st.booleans())
def test_iomt_any_json_objects_never_raise(data: list[dict], array: bool) -> None:
    import json

    text = json.dumps(data) if array else "\n".join(json.dumps(d) for d in data)
    items = run("iomt-json", text.encode())
    assert len(items) == len(data)
