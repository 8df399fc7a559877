"""Property tests of the model-feeding formats (cicflowmeter, ton-iot) and of the model detectors that read
their events: every row is an event or a reject naming its line (and column), features survive as
written, and no event makes a detector raise."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthswarm.detect.learn.datasets.cicflowmeter import COLUMNS, NUMERIC, RATE_COLUMNS
from healthswarm.detect.learn.datasets.toniot import reading
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.flow_detector import FlowDetector
from healthswarm.detect.learn.table import Table
from healthswarm.detect.learn.telemetry_detector import value_of
from healthswarm.ingest.formats import get_format
from healthswarm.model import Event, Reject

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT_COLUMNS = ("id", "Flow ID", "Src IP", "Dst IP", "Timestamp", "Label", "Attempted Category")

numbers = st.one_of(st.integers(-10**6, 10**9).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
                    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf"]))
garbage = st.text(st.characters(blacklist_characters=',\n\r"', blacklist_categories=("Cs",)), max_size=8).filter(
    lambda t: not _is_number(t))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse(name: str, data: bytes, source: str = "x.csv") -> list[Event | Reject]:
    return list(get_format(name).parse(io.BytesIO(data), source))


def cic_row(values: dict[str, str]) -> str:
    fixed = {"id": "1", "Flow ID": "f", "Src IP": "10.0.0.1", "Src Port": "5000", "Dst IP": "10.0.0.2",
             "Dst Port": "80", "Protocol": "6", "Timestamp": "2017-07-06 16:25:41.298564", "Flow Duration": "10",
             "Total Fwd Packet": "1", "Total Bwd packets": "1", "Total Length of Fwd Packet": "0",
             "Total Length of Bwd Packet": "0", "Label": "BENIGN", "Attempted Category": "-1"}
    return ",".join(values.get(c, fixed.get(c, "0")) for c in COLUMNS)


FREE = [c for c in NUMERIC if c not in ("Flow Duration", "Total Fwd Packet", "Total Bwd packets",
                                        "Total Length of Fwd Packet", "Total Length of Bwd Packet")]


@SETTINGS
@given(rows=st.lists(st.dictionaries(st.sampled_from(FREE), st.one_of(numbers, garbage), max_size=6), min_size=1,
                     max_size=6),
       spaced=st.booleans())
def test_cicflowmeter_rows_are_events_or_rejects_naming_line_and_column(rows: list[dict[str, str]],
                                                                        spaced: bool) -> None:
    header = ",".join((" " + c if spaced else c) for c in COLUMNS)
    items = parse("cicflowmeter", ("\n".join([header, *map(cic_row, rows)]) + "\n").encode())
    assert len(items) == len(rows)
    for line, (item, values) in enumerate(zip(items, rows, strict=True), start=2):
        bad = [c for c in COLUMNS if c in values and not _is_number(values[c])]
        if bad:
            assert isinstance(item, Reject) and item.record == line
            assert item.reason == f"line {line}: column {bad[0]!r}: {values[bad[0]].strip()[:40]!r} is not a number"
        else:
            assert isinstance(item, Event) and item.record == line
            assert all(item.original[c] == v for c, v in values.items())  # NaN/Infinity kept as written
            assert item.fields["source.ip"] == "10.0.0.1" and "flow.label" in item.fields


@pytest.fixture(scope="module")
def tiny_forest() -> FlowClassifier:
    rng = np.random.default_rng(0)
    n = 60
    columns: dict[str, np.ndarray] = {c: rng.random(n) for c in NUMERIC}
    columns["Protocol"] = np.asarray(["6", "17"] * (n // 2), dtype=object)
    model = FlowClassifier(n_estimators=3)
    model.learn_many(Table(columns), np.asarray(["BENIGN", "DDoS"] * (n // 2), dtype=object))
    model.card.name = "tiny"
    return model


@SETTINGS
@given(values=st.dictionaries(st.sampled_from([*NUMERIC, "Protocol"]), st.one_of(numbers, garbage), max_size=8))
def test_the_flow_detector_never_raises_and_never_scores_a_made_up_value(tiny_forest: FlowClassifier,
                                                                         values: dict[str, str]) -> None:
    detector = FlowDetector(tiny_forest)
    original = {c: values.get(c, "1") for c in COLUMNS}
    event = Event(datetime(2017, 7, 6, tzinfo=UTC), {"observer.type": "cicflowmeter", "source.ip": "10.0.0.1"},
                  original, "x.csv", 2)
    detector.observe(event)
    bad = [c for c in NUMERIC if not _is_number(original[c])
           or (not math.isfinite(float(original[c])) and c not in RATE_COLUMNS)]
    assert detector.stats.scored == (0 if bad else 1)
    assert sum(detector.stats.skipped.values()) == (1 if bad else 0)


switches = st.sampled_from(["on", "off", " on", "off  ", "true", "false  ", "open", "closed", "high", "low", "HIGH"])


@SETTINGS
@given(rows=st.lists(st.tuples(st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-99, 99).map(str)), switches),
                     min_size=1, max_size=20))
def test_ton_iot_readings_reach_the_model_as_training_read_them(rows: list[tuple[str, str]]) -> None:
    text = "date,time,fridge_temperature,temp_condition,label,type\n" + "".join(
        f"25-Apr-19, 19:19:{i % 60:02d} ,{t},{c},0,normal\n" for i, (t, c) in enumerate(rows))
    items = parse("ton-iot", text.encode(), "/data/Train_Test_IoT_Fridge.csv")
    assert all(isinstance(e, Event) for e in items) and len(items) == len(rows)
    for event, (temperature, condition) in zip(items, rows, strict=True):
        assert isinstance(event, Event)
        assert event.fields["device.id"] == "Train_Test_IoT_Fridge" and event.fields["device.type"] == "fridge"
        assert value_of(event.fields["iomt.metrics.fridge_temperature"]) == reading(temperature)
        assert value_of(event.fields["iomt.metrics.temp_condition"]) == reading(condition)
