"""Figures as a person reads them: a severity as a word, a duration as "5 min", "1 alert", a path as a line.

Every face (CLI tables, the demo, HTML reports, notifications) words these through here, so a severity is never
"4" in one table and "critical" in another, a duration never reads `1 day, 0:00:00`, a count never "1 alerts". The
dashboard's JavaScript has its own copies: `LEVELS` and `plural()` (this module's `counted`) in web/static/app.js,
`span()` in web/static/cases.js.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from healthswarm.model.alert import LEVELS


def severity_word(value: int | str | None) -> str:
    """0…4 (or a level's name) → `informational` … `critical`; out-of-range numbers are clamped."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return value.strip().lower() or "informational"
    return LEVELS[max(0, min(len(LEVELS) - 1, int(value or 0)))]


def span(delta: timedelta | float) -> str:
    """A duration, unsigned, in the two largest units that matter: `40 s`, `5 min`, `2 h 10 min`, `3 d 4 h`."""
    seconds = abs(round(delta.total_seconds() if isinstance(delta, timedelta) else delta))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def counted(n: int, noun: str, many: str = "") -> str:
    """`1 alert`, `3 alerts`; `many` for a plural that is not noun + s (`advisory`, `advisories`)."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def after(delta: timedelta) -> str:
    """`after 5 min`, `5 min before` (negative), `at the same time` (zero)."""
    if not delta:
        return "at the same time"
    return f"after {span(delta)}" if delta > timedelta(0) else f"{span(delta)} before"


def path_text(path: Iterable[dict[str, Any]]) -> str:
    """`execution 08:05 → lateral-movement 08:31 → objectives 09:40` from an incident's `path` (as_dict form)."""
    return " → ".join(f"{p['stage']} {str(p['first_seen'])[11:16]}" for p in path)
