"""Regulators' clocks, started from the moment of awareness recorded in the case.

Regimes are a registry (`REGIMES`): each lists its deadlines as (id, article, what, period). A period of
None means "without undue delay" (GDPR Art. 34): shown, never lapsing on a fixed date.
Deadlines met are recorded in `Case.notified[deadline id]`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import span
from healthswarm.respond.cases import Case, check_not_future, utc

#: Warn when this share of a period, or less, is left.
WARN_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class Months:
    """A calendar-month period: the same day of the month, clamped to the month's last day."""

    months: int

    def __radd__(self, moment: datetime) -> datetime:
        index = moment.month - 1 + self.months
        year, month = moment.year + index // 12, index % 12 + 1
        return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    regime: str
    article: str
    obligation: str
    recipient: str
    period: timedelta | Months | None  # None: without undue delay
    after: str | None = None  # counts from another rule's due time instead of awareness


@dataclass(frozen=True, slots=True)
class Deadline:
    rule: Rule
    due: datetime | None
    left: timedelta | None
    status: str  # ok | warning | overdue | met | undue-delay

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.rule.id, "regime": self.rule.regime, "article": self.rule.article,
                "obligation": self.rule.obligation, "recipient": self.rule.recipient,
                "due": self.due.isoformat() if self.due else None,
                "left_seconds": int(self.left.total_seconds()) if self.left is not None else None,
                "left": format_left(self.left), "status": self.status}


REGIMES: dict[str, tuple[Rule, ...]] = {
    "gdpr": (
        Rule("gdpr-33", "gdpr", "GDPR Art. 33", "notify the personal data breach", "supervisory authority",
             timedelta(hours=72)),
        Rule("gdpr-34", "gdpr", "GDPR Art. 34", "communicate the breach (when likely high risk to them)",
             "data subjects", None),
    ),
    "nis2": (
        Rule("nis2-early-warning", "nis2", "NIS2 Art. 23(4)(a)", "early warning", "CSIRT / competent authority",
             timedelta(hours=24)),
        Rule("nis2-notification", "nis2", "NIS2 Art. 23(4)(b)", "incident notification", "CSIRT / competent authority",
             timedelta(hours=72)),
        Rule("nis2-final-report", "nis2", "NIS2 Art. 23(4)(d)", "final report (one month after the notification)",
             "CSIRT / competent authority", Months(1), after="nis2-notification"),
    ),
    "hipaa": (
        Rule("hipaa-individuals", "hipaa", "45 CFR 164.404", "notify affected individuals", "individuals",
             timedelta(days=60)),
        Rule("hipaa-hhs", "hipaa", "45 CFR 164.408", "notify HHS (500 or more: within 60 days)", "HHS OCR",
             timedelta(days=60)),
    ),
}


def regime_rules(regime: str) -> tuple[Rule, ...]:
    if regime not in REGIMES:
        raise InputError(Problem(Location("--regime"), f"unknown regime {regime!r}", ", ".join(sorted(REGIMES))))
    return REGIMES[regime]


def format_left(left: timedelta | None) -> str:
    """Time left as every face words a duration (`1 d 18 h`, `6 h overdue`)."""
    if left is None:
        return "without undue delay"
    return f"{span(left)} overdue" if left < timedelta(0) else span(left)


def deadlines(case: Case, now: datetime, regimes: tuple[str, ...] = ("gdpr", "nis2", "hipaa")) -> list[Deadline]:
    """Every deadline of `regimes` for this case at `now` (a fixed clock in tests)."""
    now = utc(now, "now")
    aware = utc(case.aware_at, "aware_at")
    check_not_future(aware, now, f"case {case.id} aware_at")
    out: list[Deadline] = []
    due_of: dict[str, datetime] = {}
    for regime in regimes:
        for rule in regime_rules(regime):
            if rule.period is None:
                status = "met" if rule.id in case.notified else "undue-delay"
                out.append(Deadline(rule, None, None, status))
                continue
            base = due_of[rule.after] if rule.after else aware
            due = base + rule.period
            due_of[rule.id] = due
            length = due - base
            left = due - now
            if rule.id in case.notified:
                status = "met"
            elif left <= timedelta(0):
                status = "overdue"
            elif left <= length * WARN_FRACTION:
                status = "warning"
            else:
                status = "ok"
            out.append(Deadline(rule, due, left, status))
    return out


def warnings(items: list[Deadline]) -> list[str]:
    """One line per deadline that is about to lapse or has lapsed."""
    return [f"{d.rule.article} ({d.rule.obligation}, to {d.rule.recipient}): "
            f"{'lapsed' if d.status == 'overdue' else 'due'} {d.due:%Y-%m-%d %H:%M} UTC, {format_left(d.left)}"
            for d in items if d.status in ("warning", "overdue") and d.due is not None]
