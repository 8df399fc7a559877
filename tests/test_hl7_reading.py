"""The HL7 v2 parser reads fields as the `hl7` package reads them (it split messages with hl7.parse before, whose
containers cost most of ingest's time on an HL7 feed): repetitions, components, sub-components and escapes of
random segments, under random encoding characters, compared with the package's containers."""

from __future__ import annotations

import io
from typing import Any

import hl7
from hypothesis import given, settings
from hypothesis import strategies as st

from healthswarm.ingest.formats.hl7v2 import FORMAT as HL7
from healthswarm.ingest.formats.hl7v2 import _Message
from healthswarm.model import Event, Reject

ENCODINGS = ["^~\\&", "^~\\&", "#~\\&", "^*\\$", "^~\\", "^&\\"]
TEXT = st.text(alphabet="|^~\\&#*$AB12 .FSTREXH0D", max_size=40)


def package_part(segment: Any, field: int, repetition: int, component: int) -> str:
    """SEG-field[repetition].component as the hl7 package's containers give it (the parser's old reading)."""
    node: Any = segment
    for index in (field, repetition, component, 0):
        if isinstance(node, str):
            return node if index == 0 else ""
        try:
            node = node[index]
        except IndexError:
            return ""
    return str(node)


def package_repetitions(segment: Any, field: int) -> int:
    try:
        value = segment[field]
    except IndexError:
        return 0
    if not value or isinstance(value[0], str):
        return 1 if str(value) else 0
    return len(value)


@settings(max_examples=300, deadline=None)
@given(encoding=st.sampled_from(ENCODINGS), msh=st.lists(TEXT, max_size=12), pid=st.lists(TEXT, max_size=8))
def test_fields_read_as_the_hl7_package_reads_them(encoding: str, msh: list[str], pid: list[str]) -> None:
    text = "\r".join([f"MSH|{encoding}|" + "|".join(msh), "PID|" + "|".join(pid)])
    ours = _Message(text)
    if ours.problem:  # a 3-character MSH-2 whose default sub-component separator clashes: refused, with why
        return
    theirs = hl7.parse(text)
    for name, first in (("MSH", 3), ("PID", 1)):  # MSH-1 and MSH-2 are the separators, read as such by neither
        mine, package = ours.segment(name), theirs.segment(name)
        for field in range(first, len(package) + 2):
            assert ours.repetitions(mine, field) == package_repetitions(package, field)
            for repetition in range(3):
                components = ours.components(mine, field, repetition, 4)
                expected = [package_part(package, field, repetition, c) for c in range(4)]
                assert components == expected, (name, field, repetition)
                assert [ours.unescape(c) for c in components] == [theirs.unescape(c) for c in expected]


def test_a_clashing_sub_component_separator_is_refused_with_why() -> None:
    """MSH-2 '^&\\' makes '&' the repetition separator and leaves the sub-component separator at its default '&'
    too (the hl7 package failed on an assertion once a field held a component)."""
    data = b"MSH|^&\\|APP|FAC|||20260301||ADT^A01|1|P|2.5\rPID|1||42^^^H^MR\r"
    (item,) = HL7.parse(io.BytesIO(data), "test")
    assert isinstance(item, Reject) and "no sub-component separator of its own" in item.reason
    # without a component in any field the message reads as before
    (ok,) = HL7.parse(io.BytesIO(b"MSH|^&\\|APP|FAC|||20260301||ADT|1|P|2.5\r"), "test")
    assert isinstance(ok, Event) and ok.fields["hl7.sending_application"] == "APP"
