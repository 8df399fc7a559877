"""Sigma value modifiers and conditions, table-driven: each row is a detection, an event and the expected verdict.

Every row is checked twice: through the indexed engine (routing, Aho-Corasick, triggers) and through
the plain predicates of each atom (the naive evaluation), so the two paths must agree with the
specification and with each other.
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from healthswarm.detect.sigma import SigmaEngine, load_rules
from healthswarm.detect.sigma.atoms import predicate
from sigma_support import ecs_event, windows_event

RULE = """
title: case
id: 00000000-0000-0000-0000-000000000001
status: test
logsource:
    product: windows
detection:
{detection}
level: high
"""


def compile_one(tmp_path: Path, detection: str, placeholders: dict[str, list[str]] | None = None) -> SigmaEngine:
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    path = tmp_path / "rule.yml"
    path.write_text(RULE.format(detection=body), encoding="utf-8")
    ruleset = load_rules([path], placeholders=placeholders)
    assert not ruleset.problems, [str(p) for p in ruleset.problems]
    assert len(ruleset.rules) == 1
    return SigmaEngine(ruleset)


def naive(engine: SigmaEngine, view: dict[str, Any]) -> bool:
    """Evaluate the condition with each atom's own predicate: no index, no triggers, no memo."""
    atoms = engine.tables.atoms

    def ev(node: tuple[Any, ...]) -> bool:
        kind = node[0]
        if kind == "a":
            return predicate(atoms[node[1]])(view)
        if kind == "not":
            return not ev(node[1])
        if kind == "and":
            return all(ev(c) for c in node[1])
        if kind == "or":
            return any(ev(c) for c in node[1])
        return bool(node[1])

    return ev(engine.tables.conditions[0])


def check(tmp_path: Path, detection: str, fields: dict[str, Any], expected: bool,
          placeholders: dict[str, list[str]] | None = None) -> None:
    engine = compile_one(tmp_path, detection, placeholders)
    record = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, **fields}
    event = windows_event(record)
    assert bool(engine.match(event)) is expected, f"engine: {detection!r} on {fields!r}"
    assert naive(engine, record) is expected, f"predicates: {detection!r} on {fields!r}"


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # plain values: case-insensitive equality
    ("eq-case", "sel:\n  Image: 'C:\\Windows\\cmd.exe'\ncondition: sel", {"Image": "c:\\windows\\CMD.EXE"}, True),
    ("eq-whole", "sel:\n  Image: 'cmd.exe'\ncondition: sel", {"Image": "C:\\cmd.exe"}, False),
    ("eq-number", "sel:\n  LogonType: 3\ncondition: sel", {"LogonType": 3}, True),
    ("eq-number-text", "sel:\n  LogonType: 3\ncondition: sel", {"LogonType": "3"}, True),
    ("eq-number-other", "sel:\n  LogonType: 3\ncondition: sel", {"LogonType": 10}, False),
    ("eq-bool", "sel:\n  Enabled: true\ncondition: sel", {"Enabled": True}, True),
    ("list-or", "sel:\n  Name: [alpha, beta]\ncondition: sel", {"Name": "BETA"}, True),
    ("list-or-miss", "sel:\n  Name: [alpha, beta]\ncondition: sel", {"Name": "gamma"}, False),
    ("missing-field", "sel:\n  Name: alpha\ncondition: sel", {}, False),
    ("list-valued-field", "sel:\n  Tags: beta\ncondition: sel", {"Tags": ["alpha", "Beta"]}, True),
    # contains / startswith / endswith
    ("contains", "sel:\n  CommandLine|contains: whoami\ncondition: sel", {"CommandLine": "cmd /c WHOAMI /all"}, True),
    ("contains-miss", "sel:\n  CommandLine|contains: whoami\ncondition: sel", {"CommandLine": "who ami"}, False),
    ("startswith", "sel:\n  Image|startswith: 'C:\\Temp\\'\ncondition: sel", {"Image": "c:\\temp\\a.exe"}, True),
    ("startswith-miss", "sel:\n  Image|startswith: 'C:\\Temp\\'\ncondition: sel", {"Image": "D:\\c:\\temp\\"},
     False),
    ("endswith", "sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", {"Image": "C:\\X\\CMD.exe"}, True),
    ("endswith-miss", "sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", {"Image": "C:\\cmd.exe.bak"}, False),
    ("contains-all", "sel:\n  CommandLine|contains|all: [' -a ', ' -b ']\ncondition: sel",
     {"CommandLine": "x -b  -a y"}, True),
    ("contains-all-miss", "sel:\n  CommandLine|contains|all: [' -a ', ' -b ']\ncondition: sel",
     {"CommandLine": "x -a y"}, False),
    # |cased
    ("cased-hit", "sel:\n  Name|cased: FooBar\ncondition: sel", {"Name": "FooBar"}, True),
    ("cased-miss", "sel:\n  Name|cased: FooBar\ncondition: sel", {"Name": "foobar"}, False),
    ("contains-cased", "sel:\n  Name|contains|cased: Bar\ncondition: sel", {"Name": "fooBar!"}, True),
    ("contains-cased-miss", "sel:\n  Name|contains|cased: Bar\ncondition: sel", {"Name": "foobar!"}, False),
    # wildcards and escapes
    # `\\*` is an escaped wildcard; a literal backslash before a wildcard is written `\\\\*`
    ("glob-middle", "sel:\n  Image: 'C:\\\\*\\cmd.exe'\ncondition: sel", {"Image": "c:\\Windows\\System32\\cmd.exe"},
     True),
    ("glob-middle-miss", "sel:\n  Image: 'C:\\\\*\\cmd.exe'\ncondition: sel", {"Image": "D:\\x\\cmd.exe"}, False),
    ("glob-single", "sel:\n  Name: 'a?c'\ncondition: sel", {"Name": "AbC"}, True),
    ("glob-single-miss", "sel:\n  Name: 'a?c'\ncondition: sel", {"Name": "abbc"}, False),
    ("glob-many", "sel:\n  Name: '*a*b*c*'\ncondition: sel", {"Name": "xxAyyByyC"}, True),
    ("glob-many-order", "sel:\n  Name: '*a*b*c*'\ncondition: sel", {"Name": "cba"}, False),
    ("escaped-star", "sel:\n  Name: 'a\\*c'\ncondition: sel", {"Name": "a*c"}, True),
    ("escaped-star-literal", "sel:\n  Name: 'a\\*c'\ncondition: sel", {"Name": "abc"}, False),
    ("escaped-question", "sel:\n  Name: 'what\\?'\ncondition: sel", {"Name": "what?"}, True),
    ("escaped-question-literal", "sel:\n  Name: 'what\\?'\ncondition: sel", {"Name": "whatx"}, False),
    ("escaped-star-in-path", "sel:\n  Image: 'C:\\*\\cmd.exe'\ncondition: sel", {"Image": "C:*\\cmd.exe"}, True),
    ("star-matches-empty-string", "sel:\n  Name: '*'\ncondition: sel", {"Name": ""}, True),
    # regular expressions: case-sensitive unless |i, unanchored search
    ("re-hit", "sel:\n  Name|re: '^Ab+c$'\ncondition: sel", {"Name": "Abbc"}, True),
    ("re-case", "sel:\n  Name|re: '^Ab+c$'\ncondition: sel", {"Name": "abbc"}, False),
    ("re-i", "sel:\n  Name|re|i: '^Ab+c$'\ncondition: sel", {"Name": "abbc"}, True),
    ("re-search", "sel:\n  Name|re: 'b{2,}'\ncondition: sel", {"Name": "abbbc"}, True),
    ("re-dot-newline", "sel:\n  Name|re: 'a.b'\ncondition: sel", {"Name": "a\nb"}, False),
    ("re-s", "sel:\n  Name|re|s: 'a.b'\ncondition: sel", {"Name": "a\nb"}, True),
    ("re-m", "sel:\n  Name|re|m: '^b$'\ncondition: sel", {"Name": "a\nb\nc"}, True),
    ("re-no-m", "sel:\n  Name|re: '^b$'\ncondition: sel", {"Name": "a\nb\nc"}, False),
    # cidr
    ("cidr4", "sel:\n  DestinationIp|cidr: 10.0.0.0/8\ncondition: sel", {"DestinationIp": "10.1.2.3"}, True),
    ("cidr4-miss", "sel:\n  DestinationIp|cidr: 10.0.0.0/8\ncondition: sel", {"DestinationIp": "11.0.0.1"}, False),
    ("cidr6", "sel:\n  DestinationIp|cidr: 'fe80::/10'\ncondition: sel", {"DestinationIp": "fe80::1"}, True),
    ("cidr-not-ip", "sel:\n  DestinationIp|cidr: 10.0.0.0/8\ncondition: sel", {"DestinationIp": "ten"}, False),
    # base64 / base64offset / utf16 / wide
    ("base64", "sel:\n  Payload|base64: whoami\ncondition: sel", {"Payload": b64("whoami")}, True),
    ("base64-contains", "sel:\n  Payload|base64|contains: whoami\ncondition: sel",
     {"Payload": "x " + b64("whoami") + " y"}, True),
    ("base64offset-1", "sel:\n  Payload|base64offset|contains: 'http://'\ncondition: sel",
     {"Payload": b64("a http://evil")}, True),
    ("base64offset-2", "sel:\n  Payload|base64offset|contains: 'http://'\ncondition: sel",
     {"Payload": b64("ab http://evil")}, True),
    ("base64offset-0", "sel:\n  Payload|base64offset|contains: 'http://'\ncondition: sel",
     {"Payload": b64("http://evil")}, True),
    ("base64offset-miss", "sel:\n  Payload|base64offset|contains: 'http://'\ncondition: sel",
     {"Payload": b64("https://evil")}, False),
    ("utf16le", "sel:\n  Payload|utf16le|base64offset|contains: 'ping'\ncondition: sel",
     {"Payload": b64("x ping", "utf-16-le")}, True),
    ("wide", "sel:\n  Payload|wide|base64offset|contains: 'ping'\ncondition: sel",
     {"Payload": b64("ping", "utf-16-le")}, True),
    ("utf16be", "sel:\n  Payload|utf16be|base64offset|contains: 'ping'\ncondition: sel",
     {"Payload": b64("ping", "utf-16-be")}, True),
    ("utf16le-not-utf8", "sel:\n  Payload|utf16le|base64offset|contains: 'ping'\ncondition: sel",
     {"Payload": b64("ping")}, False),
    # windash
    ("windash-slash", "sel:\n  CommandLine|windash|contains: ' -enc '\ncondition: sel",
     {"CommandLine": "powershell /enc AAA"}, True),
    ("windash-endash", "sel:\n  CommandLine|windash|contains: ' -enc '\ncondition: sel",
     {"CommandLine": "powershell \u2013enc AAA"}, True),
    ("windash-miss", "sel:\n  CommandLine|windash|contains: ' -enc '\ncondition: sel",
     {"CommandLine": "powershell +enc AAA"}, False),
    # exists / null
    ("exists", "sel:\n  Extra|exists: true\ncondition: sel", {"Extra": ""}, True),
    ("exists-miss", "sel:\n  Extra|exists: true\ncondition: sel", {}, False),
    ("exists-false", "sel:\n  Extra|exists: false\ncondition: sel", {}, True),
    ("null-absent", "sel:\n  Extra: null\ncondition: sel", {}, True),
    ("null-empty", "sel:\n  Extra: null\ncondition: sel", {"Extra": ""}, True),
    ("null-value", "sel:\n  Extra: null\ncondition: sel", {"Extra": "x"}, False),
    # fieldref
    ("fieldref", "sel:\n  TargetUserName|fieldref: SubjectUserName\ncondition: sel",
     {"TargetUserName": "Bob", "SubjectUserName": "bob"}, True),
    ("fieldref-miss", "sel:\n  TargetUserName|fieldref: SubjectUserName\ncondition: sel",
     {"TargetUserName": "bob", "SubjectUserName": "alice"}, False),
    ("fieldref-absent", "sel:\n  TargetUserName|fieldref: SubjectUserName\ncondition: sel",
     {"TargetUserName": "bob"}, False),
    # numeric comparison
    ("gt", "sel:\n  Count|gt: 5\ncondition: sel", {"Count": 6}, True),
    ("gt-equal", "sel:\n  Count|gt: 5\ncondition: sel", {"Count": 5}, False),
    ("gte", "sel:\n  Count|gte: 5\ncondition: sel", {"Count": "5"}, True),
    ("lt", "sel:\n  Count|lt: 5\ncondition: sel", {"Count": 4.5}, True),
    ("lt-miss", "sel:\n  Count|lt: 5\ncondition: sel", {"Count": 5}, False),
    ("lte", "sel:\n  Count|lte: 5\ncondition: sel", {"Count": 5}, True),
    ("gt-not-number", "sel:\n  Count|gt: 5\ncondition: sel", {"Count": "many"}, False),
    # neq (a negated item) and timestamp parts
    ("neq", "sel:\n  Name|neq: system\ncondition: sel", {"Name": "alice"}, True),
    ("neq-miss", "sel:\n  Name|neq: system\ncondition: sel", {"Name": "SYSTEM"}, False),
    ("hour", "sel:\n  UtcTime|hour: 7\ncondition: sel", {"UtcTime": "2025-11-27 07:40:10.132"}, True),
    ("hour-miss", "sel:\n  UtcTime|hour: 8\ncondition: sel", {"UtcTime": "2025-11-27 07:40:10.132"}, False),
    ("month", "sel:\n  UtcTime|month: 11\ncondition: sel", {"UtcTime": "2025-11-27T07:40:10Z"}, True),
    # keywords: a value anywhere in the event
    ("keyword", "keywords:\n  - mimikatz\ncondition: keywords", {"CommandLine": "run MimiKatz.exe"}, True),
    ("keyword-miss", "keywords:\n  - mimikatz\ncondition: keywords", {"CommandLine": "run mimi.exe"}, False),
    ("keyword-glob", "keywords:\n  - 'sekurlsa*logonpasswords'\ncondition: keywords",
     {"Data": "x sekurlsa::logonpasswords y"}, True),
    ("keyword-glob-miss", "keywords:\n  - 'sekurlsa*logonpasswords'\ncondition: keywords",
     {"Data": "logonpasswords sekurlsa"}, False),
    # conditions
    ("and-not", "sel:\n  Name: a\nfilter:\n  User: system\ncondition: sel and not filter", {"Name": "a", "User": "x"},
     True),
    ("and-not-filtered", "sel:\n  Name: a\nfilter:\n  User: system\ncondition: sel and not filter",
     {"Name": "a", "User": "SYSTEM"}, False),
    ("one-of", "sel_a:\n  Name: a\nsel_b:\n  Name: b\ncondition: 1 of sel_*", {"Name": "b"}, True),
    ("all-of", "sel_a:\n  Name: a\nsel_b:\n  User: b\ncondition: all of sel_*", {"Name": "a", "User": "b"}, True),
    ("all-of-miss", "sel_a:\n  Name: a\nsel_b:\n  User: b\ncondition: all of sel_*", {"Name": "a", "User": "c"},
     False),
    ("all-of-them", "x:\n  Name: a\ny:\n  User: b\ncondition: all of them", {"Name": "a", "User": "b"}, True),
    ("one-of-them", "x:\n  Name: a\ny:\n  User: b\ncondition: 1 of them", {"User": "b"}, True),
    ("parens", "a:\n  Name: a\nb:\n  Name: b\nc:\n  User: c\ncondition: (a or b) and not c", {"Name": "b", "User": "d"},
     True),
    ("parens-miss", "a:\n  Name: a\nb:\n  Name: b\nc:\n  User: c\ncondition: (a or b) and not c",
     {"Name": "b", "User": "c"}, False),
    ("not-one-of", "sel:\n  Name: a\nf_1:\n  User: x\nf_2:\n  User: y\ncondition: sel and not 1 of f_*",
     {"Name": "a", "User": "y"}, False),
    ("only-not", "f:\n  User: system\ncondition: not f", {"User": "alice"}, True),
    ("map-list", "sel:\n  - Name: a\n  - User: b\ncondition: sel", {"User": "b"}, True),
    ("map-and", "sel:\n  Name: a\n  User: b\ncondition: sel", {"Name": "a", "User": "x"}, False),
]


@pytest.mark.parametrize(("detection", "fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_semantics(tmp_path: Path, detection: str, fields: dict[str, Any], expected: bool) -> None:
    check(tmp_path, detection, fields, expected)


def test_expand_placeholders_from_configuration(tmp_path: Path) -> None:
    detection = "sel:\n  User|expand: '%admins%'\ncondition: sel"
    check(tmp_path, detection, {"User": "BOB"}, True, {"admins": ["alice", "bob"]})
    check(tmp_path, detection, {"User": "carl"}, False, {"admins": ["alice", "bob"]})


def test_expand_placeholder_inside_a_value(tmp_path: Path) -> None:
    detection = "sel:\n  Target|expand: 'host-%site%.corp.*'\ncondition: sel"
    check(tmp_path, detection, {"Target": "HOST-lyon.corp.local"}, True, {"site": ["paris", "lyon"]})
    check(tmp_path, detection, {"Target": "host-rome.corp.local"}, False, {"site": ["paris", "lyon"]})


def test_catastrophic_regex_runs_in_linear_time(tmp_path: Path) -> None:
    """`(a+)+$` backtracks exponentially in Python's `re`; the engine must hand it to RE2 (linear time) and
    answer. The guarantee is which engine runs the pattern, not a stopwatch: exponential backtracking on
    5,000 characters would not end in the lifetime of the machine, so answering at all is the check."""
    from healthswarm.detect.sigma.regexes import compile_safe

    assert compile_safe("^(a+)+$")[1] == "re2"
    engine = compile_one(tmp_path, "sel:\n  Name|re: '^(a+)+$'\ncondition: sel")
    event = windows_event({"Channel": "x", "EventID": 1, "Name": "a" * 5000 + "!"})
    assert engine.match(event) == []
    assert engine.match(windows_event({"Channel": "x", "EventID": 1, "Name": "aaaa"})) == [0]


def test_security_4688_matches_process_creation_rules_with_sysmon_names(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""
        title: whoami
        logsource: {product: windows, category: process_creation}
        detection:
            sel:
                Image|endswith: '\\whoami.exe'
            condition: sel
        """), encoding="utf-8")
    engine = SigmaEngine(load_rules([path]))
    audit = {"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\x\\WHOAMI.EXE"}
    other = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 11, "Image": "C:\\x\\whoami.exe"}
    assert engine.match(windows_event(audit)) == [0]
    assert engine.match(windows_event(sysmon)) == [0]
    assert engine.match(windows_event(other)) == [], "file_event (EID 11) is not process_creation"


def test_non_windows_rules_read_ecs_fields_and_route_by_product(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""
        title: fhir export
        logsource: {product: fhir}
        detection:
            sel:
                url.path|endswith: '/$export'
            condition: sel
        """), encoding="utf-8")
    engine = SigmaEngine(load_rules([path]))
    fhir = ecs_event({"observer.type": "fhir", "url.path": "/fhir/Patient/$export"})
    hl7 = ecs_event({"observer.type": "hl7", "url.path": "/fhir/Patient/$export"})
    assert engine.match(fhir) == [0]
    assert engine.match(hl7) == [], "a fhir rule must not run on hl7 events"
