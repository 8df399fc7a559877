"""Sequence features of one device's telemetry: what a single reading cannot show.

Per reading, in time order: the values; the absolute change from the previous reading per value
(rate-of-change); seconds since the previous reading and how many readings share this second
(bursts of injected readings); how often this exact reading appeared in the last `window` readings
and whether it repeats the previous one (replay); and how far each value lies outside the envelope of
normal readings seen in training (physical implausibility for this device), in envelope widths; and
the device's reporting rhythm: the mean gap between readings and the share of readings that changed
value, over the last 10 and the last 50 readings (a flood of injected readings, a stalled or replaying
sensor change the rhythm before any single value looks wrong).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

WINDOW = 50
RHYTHM = (10, 50)  # readings over which the reporting rhythm is averaged


def names(readings: list[str]) -> list[str]:
    return ([*readings, *(f"d_{r}" for r in readings), "dt", "same_second", "replays", "repeat_previous",
             *(f"outside_{r}" for r in readings),
            *(f"gap_mean_{w}" for w in RHYTHM), *(f"changed_{w}" for w in RHYTHM)])


@dataclass(slots=True)
class Envelope:
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def learn(cls, values: np.ndarray) -> Envelope:
        return cls(values.min(axis=0), values.max(axis=0))

    def outside(self, values: np.ndarray) -> np.ndarray:
        width = np.maximum(self.high - self.low, 1e-9)
        return (np.maximum(self.low - values, 0) + np.maximum(values - self.high, 0)) / width


@dataclass(slots=True)
class SequenceState:
    """The stream state of one device, so readings can be scored one at a time."""

    last_time: float | None = None
    last_values: np.ndarray | None = None
    same_second: int = 0
    recent: deque[tuple[float, ...]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    counts: Counter[tuple[float, ...]] = field(default_factory=Counter)
    rhythm: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=max(RHYTHM)))

    def step(self, values: np.ndarray, time: float, envelope: Envelope) -> np.ndarray:
        key = tuple(values.tolist())
        delta = np.abs(values - self.last_values) if self.last_values is not None else np.zeros_like(values)
        dt = time - self.last_time if self.last_time is not None else 0.0
        self.same_second = self.same_second + 1 if self.last_time == time else 0
        replays = self.counts[key]
        repeat = float(self.last_values is not None and bool(np.array_equal(values, self.last_values)))
        changed = float(self.last_values is not None and not np.array_equal(values, self.last_values))
        self.rhythm.append((dt, changed))
        recent = list(self.rhythm)
        rhythm = [sum(g for g, _ in recent[-w:]) / min(w, len(recent)) for w in RHYTHM] + \
            [sum(c for _, c in recent[-w:]) / min(w, len(recent)) for w in RHYTHM]
        row = np.concatenate([values, delta, [dt, self.same_second, replays, repeat], envelope.outside(values),
                              rhythm])
        if len(self.recent) == self.recent.maxlen:
            old = self.recent[0]
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        self.recent.append(key)
        self.counts[key] += 1
        self.last_time, self.last_values = time, values
        return row


def features(values: np.ndarray, times: np.ndarray, envelope: Envelope) -> np.ndarray:
    """The feature matrix of a whole sequence (rows in time order), as `SequenceState.step` would give."""
    state = SequenceState()
    return np.vstack([state.step(values[i], float(times[i]), envelope) for i in range(len(values))])
