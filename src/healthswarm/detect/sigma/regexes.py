"""Regular expressions from rules, compiled so that no rule can stall the engine (ReDoS guard).

Python's `re` backtracks: `(a+)+$` on a long string of `a`s followed by `b` never returns. RE2 (the
`google-re2` package) runs in linear time but is ~30× slower per call on short strings and lacks
backreferences and look-around. So each pattern is analysed with Python's own regex parser:

- no nested or stacked unbounded repetition → Python `re` (fast, and it cannot blow up);
- risky shape that RE2 can express → RE2 (linear time, always safe);
- risky shape that RE2 cannot express (needs backtracking features) → rejected with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

try:  # Python 3.11 keeps the parser in `re._parser`
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layouts
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}
_BACKTRACKING_ONLY = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS, sre_constants.ASSERT,
                      sre_constants.ASSERT_NOT}
_UNBOUNDED = sre_constants.MAXREPEAT
#: Three or more unbounded repeats in one sequence make failing matches polynomial (O(n³)).
_MAX_STACKED = 3

Searcher = Callable[[str], Any]


class RegexRejected(ValueError):
    """The pattern is invalid, or could backtrack catastrophically and no safe engine accepts it."""


def _items(pattern: Any) -> list[tuple[Any, Any]]:
    return list(pattern.data if hasattr(pattern, "data") else pattern)


def _analyse(items: list[tuple[Any, Any]], inside_repeat: bool) -> tuple[bool, bool]:
    """(risky, needs_backtracking) for a parsed pattern."""
    risky = False
    needs_bt = False
    stacked = 0
    for op, av in items:
        if op in _BACKTRACKING_ONLY:
            needs_bt = True
        if op in _REPEATS:
            _, hi, sub = av
            unbounded = hi == _UNBOUNDED or hi > 64
            sub_items = _items(sub)
            if unbounded:
                stacked += 1
                if inside_repeat or _has_repeat(sub_items) or _has_branch(sub_items):
                    risky = True
            r, b = _analyse(sub_items, inside_repeat or unbounded)
            risky, needs_bt = risky or r, needs_bt or b
        elif op is sre_constants.SUBPATTERN:
            r, b = _analyse(_items(av[-1]), inside_repeat)
            risky, needs_bt = risky or r, needs_bt or b
        elif op is sre_constants.BRANCH:
            for alt in av[1]:
                r, b = _analyse(_items(alt), inside_repeat)
                risky, needs_bt = risky or r, needs_bt or b
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            r, _ = _analyse(_items(av[1]), inside_repeat)
            risky = risky or r
    if stacked >= _MAX_STACKED:
        risky = True
    return risky, needs_bt


def _has_repeat(items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in _REPEATS:
            return True
        if op is sre_constants.SUBPATTERN and _has_repeat(_items(av[-1])):
            return True
        if op is sre_constants.BRANCH and any(_has_repeat(_items(a)) for a in av[1]):
            return True
    return False


def _has_branch(items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op is sre_constants.BRANCH:
            return True
        if op is sre_constants.SUBPATTERN and _has_branch(_items(av[-1])):
            return True
    return False


def _python_flags(flags: str) -> int:
    value = 0
    for flag in flags:
        value |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[flag]
    return value


def compile_safe(pattern: str, flags: str = "") -> tuple[Searcher, str]:
    """A `search` function for `pattern` and the engine chosen (`re` or `re2`); raises RegexRejected."""
    try:
        compiled = re.compile(pattern, _python_flags(flags))
        parsed = sre_parse.parse(pattern, _python_flags(flags))
    except (re.error, RecursionError, OverflowError) as exc:
        raise RegexRejected(f"invalid regular expression {pattern!r}: {exc}") from None
    risky, needs_bt = _analyse(_items(parsed), False)
    if not risky:
        return compiled.search, "re"
    if needs_bt:
        raise RegexRejected(f"regular expression {pattern!r} can backtrack catastrophically (nested or stacked "
                            "repetition) and uses backreferences or look-around, which the linear-time engine "
                            "(RE2) cannot run")
    try:
        import re2  # google-re2: linear-time matching
    except ImportError:  # pragma: no cover - google-re2 is a dependency
        raise RegexRejected(f"regular expression {pattern!r} can backtrack catastrophically and RE2 "
                            "(google-re2) is not installed") from None
    prefix = f"(?{flags})" if flags else ""
    try:
        return re2.compile(prefix + pattern).search, "re2"
    except Exception as exc:  # re2 raises its own error type
        raise RegexRejected(f"regular expression {pattern!r} can backtrack catastrophically and RE2 rejects it: "
                            f"{exc}") from None


#: Letters that `re` and RE2 match case-insensitively with characters whose `str.lower()` differs
#: (`ſ` for s, `İ`/`ı` for i): under IGNORECASE they cannot be part of a literal tested on lower-cased text.
_FOLDS_ELSEWHERE = frozenset("iIsS")


def required_literal(pattern: str, flags: str = "") -> str:
    """The longest ASCII text that every match of `pattern` contains, lower-cased ("" when none is known).

    `value.lower()` holds it whenever the pattern matches `value`, so it serves as a prefilter (the engine's
    guard). Only what is certain counts: runs of literal characters in the top-level sequence, in groups, and
    in repeats of at least one; alternatives, optional parts and look-around are skipped."""
    try:
        parsed = sre_parse.parse(pattern, _python_flags(flags))
    except (re.error, RecursionError, OverflowError):
        return ""
    best = ""

    def walk(items: list[tuple[Any, Any]], ignorecase: bool) -> None:
        nonlocal best
        run: list[str] = []
        for op, av in items:
            code = av[0][1] if op is sre_constants.IN and len(av) == 1 and av[0][0] is sre_constants.LITERAL else (
                av if op is sre_constants.LITERAL else None)
            if code is not None and code < 128 and not (ignorecase and chr(code) in _FOLDS_ELSEWHERE):
                run.append(chr(code))
                continue
            best = max(best, "".join(run), key=len)
            run = []
            if op is sre_constants.SUBPATTERN:
                _, add, remove, sub = av
                walk(_items(sub), bool(add & re.IGNORECASE) or (ignorecase and not remove & re.IGNORECASE))
            elif op in _REPEATS and av[0] >= 1:
                walk(_items(av[2]), ignorecase)
        best = max(best, "".join(run), key=len)

    walk(_items(parsed), bool(parsed.state.flags & re.IGNORECASE))
    return best.lower()
