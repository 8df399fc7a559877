"""Version comparison and version-rule semantics, table-driven with the forms found in the ICSMA advisories."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from healthswarm.inventory.advisories.versions import (
    RuleKind,
    Verdict,
    compare,
    cve5_rule,
    is_version_like,
    parse_rule,
    parse_version,
    rule_matches,
)

A, N, U = Verdict.AFFECTED, Verdict.NOT_AFFECTED, Verdict.UNKNOWN


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1.10", "1.9", 1),  # numeric, not text
        ("1.0", "1.0.0", 0),  # trailing zeros
        ("9.19", "9.5", 1),
        ("2.4A", "2.4", 1),  # a letter suffix is a later build
        ("2.4A", "2.4.1", -1),  # rpm's rule: a number beats a letter at the same place
        ("2.4A", "2.4B", -1),
        ("A.10.12", "A.9.99", 1),  # letter versions
        ("A.10.12", "B.01", -1),
        ("B.06.10", "B.06.18", -1),
        ("v2.3.1b", "2.3.1", 1),  # leading v dropped
        ("v2.3.1b", "2.3.2", -1),
        ("1.0 SP2", "1.0", 1),  # service packs
        ("1.0 SP2", "1.0 SP10", -1),
        ("1.0 SP2", "1.0.1", -1),
        ("1.8.4 Service Pack 01", "1.8.4 SP1", 0),
        ("2.0 rc1", "2.0", -1),  # pre-releases come before
        ("2.0 beta", "2.0 rc1", -1),
        ("1.1.3 Build 10", "1.1.3 Build 9", 1),  # build numbers
        ("2023.3_Build_9342", "2023.3 build 9000", 1),
        ("5.17.1-754993421", "5.17.1", 1),
        ("BT02", "BT06", -1),
        ("R4.1L1", "R4.0L3", 1),
        ("D25", "D3", 1),
        ("12.2.7", "12.2.x.x", 0),  # wildcard compares its prefix only
        ("13.0", "12.x", 1),
        ("A.10.12", "3.1", None),  # letter scheme against numeric scheme: incomparable
        ("MMT-1711", "2.0", None),
    ],
)
def test_compare(left: str, right: str, expected: int | None) -> None:
    a, b = parse_version(left), parse_version(right)
    assert a is not None and b is not None
    assert compare(a, b) == expected
    assert compare(b, a) == (None if expected is None else -expected)


@pytest.mark.parametrize("text", ["", "  ", "unknown", "N/A", "?", "-", "...", "x"])
def test_unknown_versions_do_not_parse(text: str) -> None:
    assert parse_version(text) is None


@pytest.mark.parametrize(
    ("rule", "version", "verdict"),
    [
        # purl vers expressions
        ("vers:all/*", "", A),
        ("vers:all/*", "7.1", A),
        ("vers:generic/<=2.3", "2.3", A),
        ("vers:generic/<=2.3", "2.2.9", A),
        ("vers:generic/<=2.3", "2.3.1", N),
        ("vers:generic/>=1.0|<2.0", "1.5", A),
        ("vers:generic/>=1.0|<2.0", "2.0", N),
        ("vers:generic/>=1.0|<2.0", "0.9", N),
        ("vers:generic/<1.0|>=2.0|<3.0", "0.5", A),
        ("vers:generic/<1.0|>=2.0|<3.0", "1.5", N),
        ("vers:generic/<1.0|>=2.0|<3.0", "2.5", A),
        ("vers:generic/1.2.3|>=2.0.0|<5.0.0", "1.2.3", A),
        ("vers:generic/1.2.3|>=2.0.0|<5.0.0", "1.2.4", N),
        ("vers:generic/1.2.3|>=2.0.0|<5.0.0", "4.9", A),
        ("vers:generic/>=1.0|!=1.5|<2.0", "1.5", N),
        ("vers:generic/>=1.0|!=1.5|<2.0", "1.6", A),
        ("vers:generic/>1.0", "1.0", N),
        ("vers:generic/>=4.0", "4.0.1", A),
        ("vers:generic/<=2.3", "A.1", U),
        # CSAF text forms from the ICSMA advisories
        ("<= 3.1", "3.1", A),
        ("<= 3.1", "3.10", N),
        ("<= 9.33", "9.19", A),
        ("<= 9.5", "9.19", N),
        ("All versions", "7", A),
        ("prior to 4.2", "4.1.9", A),
        ("prior to 4.2", "4.2", N),
        ("2.3.6 and  below", "2.3.6", A),
        ("2.3.6 and  below", "2.4", N),
        (">= 1.0.0  | <= 1.3.1", "1.2", A),
        (">= 1.0.0  | <= 1.3.1", "1.3.2", N),
        (">= 1.3.4 | < 1.5.3", "1.5.3", N),
        (">= 1.3.4 | < 1.5.3", "1.3.4", A),
        ("<= U61 |<= L81", "L80", A),
        ("<= U61 |<= L81", "U62", N),
        ("A.01 <= C.0x | 4.0", "B.02", A),
        ("A.01 <= C.0x | 4.0", "C.05", A),
        ("A.01 <= C.0x | 4.0", "D.01", N),
        ("A.01 <= C.0x | 4.0", "4.0", A),
        ("A10 < A11", "A10", A),
        ("A10 < A11", "A11", N),
        ("3.0|3.1", "3.1", A),
        ("3.0|3.1", "3.2", N),
        ("12.x", "12.4.1", A),
        ("12.x", "13.0", N),
        ("<= 12.2.x.x", "12.2.9.1", A),
        ("<= 12.2.x.x", "12.3", N),
        ("< 3.x", "2.9", A),
        ("< 3.x", "3.0.1", N),
        ("<= 2.4A", "2.4", A),
        ("<= 2.4A", "2.4B", N),
        ("< B.06.18", "B.06.10", A),
        ("< B.06.18", "B.06.18", N),
        ("< B.06.18", "1.2", U),  # different scheme: possibly affected
        ("<= K", "J", A),
        ("<= 3.1", "", U),  # unknown asset version
        ("<= 3.1", "unknown", U),
        ("<  july 1 2017", "1.0", U),  # a date, not a version
        ("<8/30/2024", "2.0", U),
        ("distributed  < april 1, 2018", "1.0", U),
        ("<= 1.54 (integrated into GE MobileLink)", "1.50", A),  # a note, not a condition
        ("<= 2.01 (end-of-life Nov 2017)", "2.01", A),
        ("<=11.2 on Windows 8.1 with IIS 7.5", "11.0", U),  # a condition we cannot check
        ("<=11.2 on Windows 8.1 with IIS 7.5", "12.0", N),
        ("6.x model 35700BAX", "6.05", U),
        ("6.x model 35700BAX", "8.0", N),
        ("v9.x (with Wireless Battery Module >= v22D19 | <= v22D28)", "9.01", U),
        ("* (end-of-life 2011)", "", A),
        ("* running on old, unsupported operating systems such as Windows 2000", "1.0", U),
        ("Accu-Chek Inform II", "3.0", U),  # a model name, not a version
        ("882160 Gemini Dual", "3.4", U),
        ("MMT-1711 | MMT-1712 | MMT-1751 | MMT-1752", "MMT-1712", A),
        ("MMT-1711 | MMT-1712 | MMT-1751 | MMT-1752", "MMT-1715", N),
        ("MMT-1711 | MMT-1712 | MMT-1751 | MMT-1752", "4.2", U),  # model numbers vs a firmware version
        ("A.01 <= C.0x | 4.0", "5.0", N),
        ("2131 and 2141", "2141", A),
        ("2131 and 2141", "2130", N),
        ("4.20 | 4.20 SR1 | 4.30", "4.20 SR1", A),
        ("4.20 | 4.20 SR1 | 4.30", "4.20 SR2", N),
        ("< 1.8.4 Service Pack 01", "1.8.4", A),
        ("< 1.8.4 Service Pack 01", "1.8.4 SP1", N),
        ("(Release 1.3.2 1.4.0 1.4.1 1.4.3 1.4.5)", "1.4.3", A),
        ("(Release 1.3.2 1.4.0 1.4.1 1.4.3 1.4.5)", "1.4.2", N),
        ("<=2023.3_Build_9342", "2023.3 Build 9000", A),
        ("Rev J-M | (X3/MX100 for Rev M only)", "J", U),
        ("9.7", "9.7.0", A),
        ("9.7", "9.70", N),
        ("", "1.0", A),  # CSAF names the product without any version branch
        ("up to 5.0", "5.0", A),
        ("1.0 to 2.0", "1.5", A),
        ("3.0 and later", "4.1", A),
        ("3.0 and later", "2.9", N),
    ],
)
def test_rule(rule: str, version: str, verdict: Verdict) -> None:
    decision = rule_matches(rule, version)
    assert decision.verdict is verdict, decision.how
    assert decision.how  # every decision says why


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        ("vers:all/*", RuleKind.ALL),
        ("All versions", RuleKind.ALL),
        ("<= 2.3", RuleKind.CONSTRAINTS),
        ("Accu-Chek Inform II", RuleKind.TEXT),
        ("<May 2018", RuleKind.UNKNOWN),
        ("base units (BU)|handheld base units (HBU)", RuleKind.UNKNOWN),
        ("vers:generic", RuleKind.UNKNOWN),
    ],
)
def test_rule_kinds(rule: str, kind: RuleKind) -> None:
    assert parse_rule(rule).kind is kind


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("1.0", "2.0", ""), "vers:generic/>=1.0|<2.0"),
        (("0", "", "3.1"), "vers:generic/<=3.1"),
        (("2.1", "", ""), "vers:generic/2.1"),
        (("0", "*", ""), "vers:generic/*"),
        (("1.5", "*", ""), "vers:generic/>=1.5"),
    ],
)
def test_cve5_rule(args: tuple[str, str, str], expected: str) -> None:
    assert cve5_rule(*args) == expected


def test_cve5_rule_keeps_the_scheme_and_evaluates() -> None:
    rule = cve5_rule("1.0.0", "1.4.2", "", "semver")
    assert rule == "vers:semver/>=1.0.0|<1.4.2"
    assert rule_matches(rule, "1.4.1").verdict is A
    assert rule_matches(rule, "1.4.2").verdict is N


@pytest.mark.parametrize(("text", "expected"), [("1.1.3 MR Build 11", True), ("BT03", True), ("K", True),
                                                 ("2nd Edition", True), ("Accu-Chek Inform II", False),
                                                 ("MMT-512 / MMT-712 Paradigm x12", False)])
def test_is_version_like(text: str, expected: bool) -> None:
    assert is_version_like(text) is expected


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20))
@example(rule="X", version="0")  # a letter reads as a version but did not parse as one
def test_never_raises(rule: str, version: str) -> None:
    decision = rule_matches(rule, version)
    assert decision.verdict in (A, N, U)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[vV]?[0-9A-Za-z]{1,3}([._\- ][0-9A-Za-z]{1,3}){0,4}", fullmatch=True),
       st.from_regex(r"[0-9A-Za-z]{1,3}([._\- ][0-9A-Za-z]{1,3}){0,4}", fullmatch=True))
def test_compare_is_antisymmetric(left: str, right: str) -> None:
    a, b = parse_version(left), parse_version(right)
    if a is None or b is None:
        return
    ab, ba = compare(a, b), compare(b, a)
    assert (ab is None) == (ba is None)
    if ab is not None:
        assert ab == -ba  # type: ignore[operator]
