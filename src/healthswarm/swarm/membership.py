"""SWIM membership: who is alive, suspect or dead, ordered by incarnation numbers.

Rules (Das, Gupta, Motivala 2002, with Lifeguard's rejoin): alive(i) beats alive/suspect(j < i) and
dead(j < i) — a restarted node starts with a higher incarnation (its start time) and rejoins;
suspect(i) beats alive(j ≤ i) and suspect(j < i); dead/left(i) beats alive/suspect(j ≤ i). A node
that hears itself suspected or declared dead refutes by raising its incarnation above the rumour.
Recent updates are piggybacked on every message, each a bounded number of times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ALIVE, SUSPECT, DEAD, LEFT = "alive", "suspect", "dead", "left"
STATES = (ALIVE, SUSPECT, DEAD, LEFT)


@dataclass
class Member:
    name: str
    key_id: str
    addr: str
    state: str
    inc: int
    since: float = 0.0

    def update(self) -> dict[str, Any]:
        return {"name": self.name, "key_id": self.key_id, "addr": self.addr, "state": self.state, "inc": self.inc}


def _beats(state: str, inc: int, current: Member) -> bool:
    if state == ALIVE:
        return inc > current.inc
    if state == SUSPECT:
        return (current.state == ALIVE and inc >= current.inc) or (current.state == SUSPECT and inc > current.inc)
    return (current.state in (ALIVE, SUSPECT) and inc >= current.inc) or inc > current.inc


@dataclass
class Membership:
    me: Member
    members: dict[str, Member] = field(default_factory=dict)
    _rumours: dict[str, int] = field(default_factory=dict)   # member name → times still to piggyback

    def _spread(self, name: str) -> None:
        self._rumours[name] = max(3, 3 * math.ceil(math.log2(len(self.members) + 2)))

    def apply(self, upd: dict[str, Any], now: float, direct: bool = False) -> str | None:
        """Merge one update; return the new state when it changed our view (or "refute" about ourselves).

        A known member's address changes only when the member itself says so (`direct`: the update is
        the signed sender of the message), so no other member can redirect its traffic.
        """
        name, state, inc = upd["name"], upd["state"], upd["inc"]
        if name == self.me.name:
            if state != ALIVE and inc >= self.me.inc:
                self.me.inc = inc + 1
                self._spread(name)
                return "refute"
            return None
        current = self.members.get(name)
        if current is None:
            if state not in (ALIVE, SUSPECT):
                return None
            self.members[name] = Member(name, upd["key_id"], upd["addr"], state, inc, now)
            self._spread(name)
            return state
        if current.key_id != upd["key_id"] or not _beats(state, inc, current):
            return None
        changed = current.state != state
        current.state, current.inc = state, inc
        if direct:
            current.addr = upd["addr"]
        if changed:
            current.since = now
        self._spread(name)
        return state if changed else None

    def piggyback(self, limit: int) -> list[dict[str, Any]]:
        names = sorted(self._rumours, key=lambda n: -self._rumours[n])[:limit]
        out = []
        for name in names:
            self._rumours[name] -= 1
            if self._rumours[name] <= 0:
                del self._rumours[name]
            out.append(self.me.update() if name == self.me.name else self.members[name].update())
        return out

    def mark(self, name: str, state: str, now: float) -> bool:
        m = self.members.get(name)
        if m is None or m.state == state:
            return False
        m.state, m.since = state, now
        self._spread(name)
        return True

    def live(self) -> list[Member]:
        return [m for m in self.members.values() if m.state in (ALIVE, SUSPECT)]

    def full_state(self) -> list[dict[str, Any]]:
        return [self.me.update()] + [m.update() for m in self.members.values()]
