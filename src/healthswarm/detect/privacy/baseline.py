"""What is usual, learned from the access stream itself: a user's working hours and a role's record volume."""

from __future__ import annotations

import statistics
from bisect import bisect_left, insort
from collections import Counter, deque
from dataclasses import dataclass, field


def hours_text(hours: frozenset[int]) -> str:
    """{7..15} → '07–16' (end exclusive, as shifts are written); several runs are joined by commas."""
    if not hours:
        return "none"
    if len(hours) == 24:
        return "00–24"
    starts = sorted(h for h in hours if (h - 1) % 24 not in hours)
    runs = []
    for start in starts:
        end = start
        while (end + 1) % 24 in hours:
            end = (end + 1) % 24
        runs.append(f"{start:02d}–{(end + 1) % 24 or 24:02d}")
    return ", ".join(runs)


@dataclass
class HourProfile:
    """Reads per hour of day (UTC). Hours holding at least `min_share` of the reads are usual."""

    counts: Counter[int] = field(default_factory=Counter)
    total: int = 0

    def add(self, hour: int) -> None:
        self.counts[hour] += 1
        self.total += 1

    def usual(self, min_share: float) -> frozenset[int]:
        if not self.total:
            return frozenset()
        return frozenset(h for h, n in self.counts.items() if n / self.total >= min_share)


def widen(hours: frozenset[int], margin: int) -> frozenset[int]:
    """The hours plus `margin` on each side: a handover or a late discharge letter is not after-hours."""
    return frozenset((h + d) % 24 for h in hours for d in range(-margin, margin + 1))


@dataclass
class VolumeStats:
    """Distinct patients per work session (one per user and shift) of one population (a role, or everyone): its
    latest `keep` sessions. Bounded so that a long-running monitor's baseline costs the same in its third month as
    in its first hour (it was every session since the start, sorted again at every session's end: a cost that grew
    with the agent's uptime), and follows how a population works now rather than how it worked long ago."""

    keep: int = 2_000
    recent: deque[int] = field(default_factory=deque)  # in the order the sessions ended
    ordered: list[int] = field(default_factory=list)  # the same values, sorted

    def add(self, value: int) -> None:
        self.recent.append(value)
        insort(self.ordered, value)
        if len(self.recent) > self.keep:
            del self.ordered[bisect_left(self.ordered, self.recent.popleft())]

    def __len__(self) -> int:
        return len(self.recent)

    def robust_z(self, value: int) -> tuple[float, float, float]:
        """(z, median, scale): (value − median) / (1.4826·MAD), the scale floored so that a population of
        near-identical sessions does not turn one extra record into an alarm."""
        median = statistics.median(self.ordered)
        mad = statistics.median(abs(s - median) for s in self.ordered)
        scale = max(1.4826 * mad, 0.15 * median, 1.0)
        return (value - median) / scale, median, scale
