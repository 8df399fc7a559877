"""Atoms: the smallest tests a Sigma detection breaks into, one field against one value.

An atom is a plain tuple `(op, field, arg, cased)` so compiled rules pickle small and identical atoms
of different rules are evaluated once per event. `PREDICATES` maps each `op` to a factory that turns
the atom into a predicate over an event view (a dict of field name to value); adding an operation is
adding one entry. String atoms that the field index can answer (`INDEXED_OPS`, case-insensitive)
never reach their predicate in the engine; the predicates still exist for the naive baseline and
for tests.

Semantics follow the Sigma specification: plain values compare case-insensitively, `|cased` values
and regular expressions case-sensitively (unless `|i`), wildcards `*`/`?` only where unescaped, and a
list-valued field matches when any of its elements does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

from healthswarm.detect.sigma.regexes import compile_safe

Atom = tuple[str, str | None, Any, bool]
Predicate = Callable[[dict[str, Any]], bool]

#: Glob parts: plain text, or one of these markers.
MULTI = 1
SINGLE = 2

#: Case-insensitive string tests the field index answers with Aho-Corasick / dict lookups.
INDEXED_OPS = frozenset({"eq", "contains", "startswith", "endswith"})
#: Operations whose result, for a field holding one text or number, depends on that value alone (their predicate
#: is `_field_string`'s): the engine may remember it per value across events.
VALUE_OPS = frozenset({"eq", "contains", "startswith", "endswith", "glob", "re", "cidr", "cmp"})

_MISSING = object()


def text(value: Any) -> str | None:
    """A field value as the text Sigma compares against (booleans as true/false), None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


def values(view: dict[str, Any], field: str) -> Iterator[Any]:
    """The values of `field` in `view`: one, or each element of a list."""
    value = view.get(field, _MISSING)
    if value is _MISSING:
        return
    if isinstance(value, list | tuple):
        yield from value
    else:
        yield value


def texts(view: dict[str, Any], field: str) -> Iterator[str]:
    for value in values(view, field):
        s = text(value)
        if s is not None:
            yield s


def all_texts(view: dict[str, Any]) -> Iterator[str]:
    """Every value of the event as text, for keyword search."""
    for value in view.values():
        if isinstance(value, list | tuple):
            for item in value:
                s = text(item)
                if s is not None:
                    yield s
        else:
            s = text(value)
            if s is not None:
                yield s


# --- glob matching without backtracking -------------------------------------------------------

def glob_matcher(parts: tuple[str | int, ...], cased: bool) -> Callable[[str], bool]:
    """A full-match test for a Sigma wildcard pattern. `*`-only globs use ordered `str.find` (linear,
    no regex); a pattern with `?` becomes an anchored regex of literal pieces (no nested repeats)."""
    if SINGLE in parts:
        source = "".join(".*" if p == MULTI else "." if p == SINGLE else re.escape(str(p)) for p in parts)
        rx = re.compile(source, re.DOTALL | (0 if cased else re.IGNORECASE))
        return lambda s: rx.fullmatch(s) is not None
    segments: list[str] = []
    current = ""
    for p in parts:
        if p == MULTI:
            segments.append(current)
            current = ""
        else:
            current += str(p) if cased else str(p).lower()
    segments.append(current)
    head, *middle, tail = segments if len(segments) > 1 else [segments[0], segments[0]]
    if len(segments) == 1:
        return (lambda s: s == head) if cased else (lambda s: s.lower() == head)
    minimum = len(head) + len(tail) + sum(len(m) for m in middle)

    def match(s: str) -> bool:
        if not cased:
            s = s.lower()
        if len(s) < minimum or not s.startswith(head) or not s.endswith(tail):
            return False
        pos, end = len(head), len(s) - len(tail)
        for m in middle:
            found = s.find(m, pos, end)
            if found < 0:
                return False
            pos = found + len(m)
        return True

    return match


def longest_literal(parts: tuple[str | int, ...]) -> str:
    """The longest plain stretch of a glob, a necessary substring of every match (for prefiltering)."""
    best, current = "", ""
    for p in parts:
        if isinstance(p, str):
            current += p
        else:
            best, current = max(best, current, key=len), ""
    return max(best, current, key=len)


# --- predicate factories ----------------------------------------------------------------------

def _string_test(op: str, arg: str, cased: bool) -> Callable[[str], bool]:
    if op == "eq":
        return (lambda s: s == arg) if cased else (lambda s: s.lower() == arg)
    if op == "contains":
        return (lambda s: arg in s) if cased else (lambda s: arg in s.lower())
    if op == "startswith":
        return (lambda s: s.startswith(arg)) if cased else (lambda s: s.lower().startswith(arg))
    return (lambda s: s.endswith(arg)) if cased else (lambda s: s.lower().endswith(arg))


def _field_string(atom: Atom, test: Callable[[str], bool]) -> Predicate:
    field = atom[1]
    assert field is not None

    def pred(view: dict[str, Any]) -> bool:
        value = view.get(field)
        if value is None:
            return False
        if type(value) is str:
            return test(value)
        return any(test(s) for s in texts(view, field))

    return pred


def _string(atom: Atom) -> Predicate:
    op, _, arg, cased = atom
    return _field_string(atom, _string_test(op, arg, cased))


def _glob(atom: Atom) -> Predicate:
    return _field_string(atom, glob_matcher(atom[2], atom[3]))


def _regex(atom: Atom) -> Predicate:
    pattern, flags = atom[2]
    search, _ = compile_safe(pattern, flags)
    return _field_string(atom, lambda s: search(s) is not None)


@lru_cache(maxsize=65536)
def _address(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(s.strip().split("%", 1)[0])
    except ValueError:
        return None


def _cidr(atom: Atom) -> Predicate:
    network = ipaddress.ip_network(atom[2], strict=False)

    def test(s: str) -> bool:
        address = _address(s)
        return address is not None and address.version == network.version and address in network

    return _field_string(atom, test)


def _exists(atom: Atom) -> Predicate:
    field, wanted = atom[1], atom[2]
    return lambda view: (view.get(field, _MISSING) is not _MISSING) is wanted


def _null(atom: Atom) -> Predicate:
    """Sigma `field: null`: the field is absent, null or empty."""
    field = atom[1]

    def test(view: dict[str, Any]) -> bool:
        value = view.get(field)
        return value is None or value == "" or value == [] or value == ()

    return test


def _number(s: str) -> float | None:
    try:
        return float(int(s, 0)) if s[:2].lower() in ("0x", "0o", "0b") else float(s)
    except (ValueError, TypeError):
        return None


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "neq": lambda a, b: a != b,
}


def _compare(atom: Atom) -> Predicate:
    operator, number = atom[2]
    compare = _COMPARE[operator]

    def test(s: str) -> bool:
        value = _number(s)
        return value is not None and compare(value, number)

    return _field_string(atom, test)


def _fieldref(atom: Atom) -> Predicate:
    field, (other, mode) = atom[1], atom[2]
    assert field is not None
    cased = atom[3]

    def test(view: dict[str, Any]) -> bool:
        refs = [s if cased else s.lower() for s in texts(view, other)]
        if not refs:
            return False
        for s in texts(view, field):
            s = s if cased else s.lower()
            for ref in refs:
                if (mode == "eq" and s == ref) or (mode == "startswith" and s.startswith(ref)) or (
                        mode == "endswith" and s.endswith(ref)):
                    return True
        return False

    return test


_TIME_PARTS: dict[str, Callable[[datetime], int]] = {
    "minute": lambda d: d.minute,
    "hour": lambda d: d.hour,
    "day": lambda d: d.day,
    "week": lambda d: d.isocalendar()[1],
    "month": lambda d: d.month,
    "year": lambda d: d.year,
}


def _timepart(atom: Atom) -> Predicate:
    part, number = atom[2]
    extract = _TIME_PARTS[part]

    def test(value: Any) -> bool:
        if isinstance(value, datetime):
            moment = value
        else:
            s = text(value)
            if not s:
                return False
            try:
                moment = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))
            except ValueError:
                return False
        return extract(moment) == number

    field = atom[1]
    assert field is not None
    return lambda view: any(test(v) for v in values(view, field))


def _keyword(atom: Atom) -> Predicate:
    """A keyword (a value without a field): matches when any value of the event contains it."""
    parts, cased = atom[2], atom[3]
    inner = tuple(parts)
    if not inner or inner[0] != MULTI:
        inner = (MULTI, *inner)
    if inner[-1] != MULTI:
        inner = (*inner, MULTI)
    test = glob_matcher(inner, cased)
    return lambda view: any(test(s) for s in all_texts(view))


PREDICATES: dict[str, Callable[[Atom], Predicate]] = {
    "eq": _string,
    "contains": _string,
    "startswith": _string,
    "endswith": _string,
    "glob": _glob,
    "re": _regex,
    "cidr": _cidr,
    "exists": _exists,
    "null": _null,
    "cmp": _compare,
    "fieldref": _fieldref,
    "timepart": _timepart,
    "keyword": _keyword,
}


def predicate(atom: Atom) -> Predicate:
    return PREDICATES[atom[0]](atom)
