"""The threat field: a state-based CRDT of marks per (key, reporting organisation), read with trust and decay.

State: for each field key and each organisation that reported it, the newest (time, strength) — a
last-writer-wins register whose merge is the maximum of (time, strength). Merge is commutative,
associative and idempotent, so replicas that have seen the same items hold the same state whatever
the order; an organisation that reports the same thing a hundred times still counts once.

The level is computed at read time, never stored: Σ over organisations of
trust(organisation's key) × strength × 0.5^((now − time) / half_life). Evaporation therefore needs no
timer and no message, and replicas with the same state and trust agree on the level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from healthswarm.swarm.items import Item


@dataclass(frozen=True)
class Entry:
    time: float
    strength: float
    key_id: str


@dataclass
class ThreatField:
    half_life: float
    state: dict[str, dict[str, Entry]] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        for mark in item.marks:
            self.put(mark.key, item.org, Entry(item.created, min(1.0, max(0.0, mark.strength)), item.key_id))

    def put(self, key: str, org: str, entry: Entry) -> None:
        per_org = self.state.setdefault(key, {})
        current = per_org.get(org)
        if current is None or (entry.time, entry.strength) > (current.time, current.strength):
            per_org[org] = entry

    def merge(self, other: ThreatField) -> None:
        for key, per_org in other.state.items():
            for org, entry in per_org.items():
                self.put(key, org, entry)

    def contributions(self, key: str, now: float, weight: Callable[[str], float]) -> list[tuple[str, float]]:
        out = []
        for org, e in sorted(self.state.get(key, {}).items()):
            decay = 0.5 ** (max(0.0, now - e.time) / self.half_life)
            out.append((org, weight(e.key_id) * e.strength * decay))
        return out

    def level(self, key: str, now: float, weight: Callable[[str], float]) -> float:
        return sum(c for _, c in self.contributions(key, now, weight))

    def top(self, now: float, weight: Callable[[str], float], n: int = 10,
            keys: Iterable[str] | None = None) -> list[tuple[str, float, int]]:
        """(key, level, reporting organisations), highest level first."""
        rows = [(k, self.level(k, now, weight), len(self.state[k])) for k in (keys or self.state)]
        return sorted(rows, key=lambda r: (-r[1], r[0]))[:n]

    def digest(self) -> str:
        """A hash of the state (not the levels, which depend on the reader's trust and clock): two replicas
        with the same digest have converged."""
        h = hashlib.blake2b(digest_size=12)
        for key in sorted(self.state):
            for org, e in sorted(self.state[key].items()):
                h.update(f"{key}\x00{org}\x00{e.time!r}\x00{e.strength!r}\x00{e.key_id}\n".encode())
        return h.hexdigest()
