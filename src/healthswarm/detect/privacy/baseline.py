"""What is usual, learned from the access stream itself: a user's working hours and a role's record volume."""

from __future__ import annotations

import statistics
from collections import Counter
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
    """Distinct patients per work session (one per user and shift) of one population (a role, or everyone)."""

    samples: list[int] = field(default_factory=list)

    def add(self, value: int) -> None:
        self.samples.append(value)

    def robust_z(self, value: int) -> tuple[float, float, float]:
        """(z, median, scale): (value − median) / (1.4826·MAD), the scale floored so that a population of
        near-identical sessions does not turn one extra record into an alarm."""
        median = statistics.median(self.samples)
        mad = statistics.median(abs(s - median) for s in self.samples)
        scale = max(1.4826 * mad, 0.15 * median, 1.0)
        return (value - median) / scale, median, scale
