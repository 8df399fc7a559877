"""The literal that guards a rule's regular expression: every string the pattern matches holds it.

The engine tests a regex only on events whose field (lower-cased) contains the pattern's required literal,
so a literal that some match lacks would lose detections. Hypothesis generates matching strings for
patterns of the shapes Sigma rules use (case-insensitive ones included, where `s` and `i` also match
characters whose lower case differs)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthswarm.detect.sigma.regexes import required_literal

PATTERNS = [
    r"\$PSHome\[\s*\d{1,3}\s*\]\s*\+\s*\$PSHome\[",
    r"(?i)(?:set).*&&\s?set.*(?:environment|invoke|\$\{?input).*&&.*\"",
    r"ipconfig\s+/all",
    r"(?i)ipconfig\s+/all",
    r"(?i)\.exe[\"']?\s+[^\"]{0,64}werfaultsecure\.exe",
    r"https?://(?:0[0-9]{1,11}\.){3}0[0-9]{1,11}",
    r"a(?i:bcsd)ef",
    r"(?i)ab(?-i:SIS)cd",
    r"(?:abc)?defg",
    r"x(?:abcd)+y",
    r"net\s+stop (?:SuperBackupMan|other)",
    r"[.]exe$",
    r"^cmd.{0,5}/c",
    r"(?i)KEYS\d",
]


@pytest.mark.parametrize(("pattern", "literal"), [
    (r"ipconfig\s+/all", "ipconfig"),
    (r"(?i)ipconfig", "pconf"),  # `i` may match `İ` or `ı`, whose lower case is not `i`
    (r"a(?i:bcd)ef", "bcd"),
    (r"(?:abc)?def", "def"),  # an optional part is not required
    (r"x(abcd)+", "abcd"),
    (r"a|bcde", ""),  # nor is one of two alternatives
    (r"[.]exe", ".exe"),
    (r"\s[a-fA-F0-9]{64}\s", ""),
    (r"(", ""),  # invalid: no literal (the compiler rejects the pattern with its reason)
])
def test_required_literal(pattern: str, literal: str) -> None:
    assert required_literal(pattern) == literal


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_match_holds_the_literal(pattern: str, data: st.DataObject) -> None:
    literal = required_literal(pattern)
    assert literal, pattern
    value = data.draw(st.from_regex(re.compile(pattern)))
    assert re.search(pattern, value)
    assert literal in value.lower(), (pattern, value)


@pytest.mark.parametrize(("pattern", "value"), [
    (r"(?i)ipconfig", "İPCONFİG"),  # dotted capital I: lower() gives "i̇", two characters
    (r"(?i)ipconfig", "ıpconfıg"),  # dotless i
    (r"(?i)KEYS1", "keyſ1"),  # long s
    (r"(?i)a(?-i:SIS)cd", "ASIScD"),
])
def test_case_folds_that_lower_case_does_not_follow(pattern: str, value: str) -> None:
    assert re.search(pattern, value)
    assert required_literal(pattern) in value.lower()
