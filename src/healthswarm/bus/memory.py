"""The in-process bus: the embedded default, one process, no server.

Each consumer group has one queue per subscription pattern; a published message goes to every group
whose pattern matches, and any subscription of the group may take it. Un-acked messages go back to
the front of the group's queue on `nak()` (after its delay, if any) or when their subscription closes.
Every group holds at most `max_pending` messages (queued plus delivered but un-acked): a publisher that finds one full
waits, which slows ingestion to the pace of the slowest consumer instead of growing memory.
A message published while no group matches is dropped: in one process nobody could read it later.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from healthswarm.bus.base import BusError, subject_matches


@dataclass(eq=False)
class MemoryMessage:
    subject: str
    data: bytes
    key: str
    id: str
    deliveries: int = 0
    born: float = 0.0
    _group: _Group | None = field(default=None, repr=False)
    _owner: MemorySubscription | None = field(default=None, repr=False)

    def ack(self) -> None:
        if self._group is not None and self._owner is not None:
            self._group.settle(self, self._owner, requeue=False)

    def nak(self, delay: float = 0.0) -> None:
        if self._group is not None and self._owner is not None:
            self._group.settle(self, self._owner, requeue=True, delay=delay)

    def term(self) -> None:
        self.ack()


class _Group:
    def __init__(self, pattern: str, max_pending: int) -> None:
        self.pattern = pattern
        self.max_pending = max_pending
        self.queue: deque[MemoryMessage] = deque()
        self.delayed: list[tuple[float, int, MemoryMessage]] = []  # (due, tie-break, message): nak'ed with a delay
        self._ties = itertools.count()
        self.in_flight = 0
        self.cond = threading.Condition()
        self.members = 0

    def room(self) -> bool:
        return len(self.queue) + len(self.delayed) + self.in_flight < self.max_pending

    def settle(self, message: MemoryMessage, owner: MemorySubscription, requeue: bool, delay: float = 0.0) -> None:
        with self.cond:
            if message._owner is not owner or message not in owner.in_flight:
                return  # already settled (acked twice, or returned when its subscription closed)
            owner.in_flight.discard(message)
            message._owner = None
            self.in_flight -= 1
            if requeue and delay > 0:
                heapq.heappush(self.delayed, (time.monotonic() + delay, next(self._ties), message))
            elif requeue:
                self.queue.appendleft(message)
            self.cond.notify_all()

    def release_due(self) -> float | None:
        """Move delayed messages that are due to the front of the queue; seconds until the next one, if any."""
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self.queue.appendleft(heapq.heappop(self.delayed)[2])
        return self.delayed[0][0] - now if self.delayed else None


class MemorySubscription:
    def __init__(self, bus: MemoryBus, group: _Group) -> None:
        self._bus = bus
        self._group = group
        self.in_flight: set[MemoryMessage] = set()
        self.closed = False

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[MemoryMessage]:
        group = self._group
        deadline = time.monotonic() + timeout
        with group.cond:
            while True:
                next_due = group.release_due()
                if group.queue or self.closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                group.cond.wait(remaining if next_due is None else min(remaining, next_due))
            out: list[MemoryMessage] = []
            while group.queue and len(out) < max_messages and not self.closed:
                message = group.queue.popleft()
                message.deliveries += 1
                message._owner = self
                self.in_flight.add(message)
                group.in_flight += 1
                out.append(message)
            return out

    def ack_all(self, messages: list[MemoryMessage]) -> None:
        for message in messages:
            message.ack()

    def lag(self) -> int:
        with self._group.cond:
            return len(self._group.queue) + len(self._group.delayed)

    def close(self) -> None:
        group = self._group
        with group.cond:
            if self.closed:
                return
            self.closed = True
            # un-acked messages go back, oldest first, for the other members (or a later one)
            for message in sorted(self.in_flight, key=lambda m: int(m.id), reverse=True):
                message._owner = None
                group.queue.appendleft(message)
            group.in_flight -= len(self.in_flight)
            self.in_flight.clear()
            group.members -= 1
            group.cond.notify_all()


class MemoryBus:
    def __init__(self, max_pending: int = 100_000, publish_timeout: float = 60.0) -> None:
        self.max_pending = max_pending
        self.publish_timeout = publish_timeout
        self._groups: dict[tuple[str, str], _Group] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self.dropped = 0

    def publish(self, subject: str, payload: bytes, key: str = "", born: float | None = None) -> None:
        with self._lock:
            targets = [g for g in self._groups.values() if subject_matches(g.pattern, subject)]
        if not targets:
            self.dropped += 1
            return
        seq = str(next(self._sequence))
        for group in targets:
            with group.cond:
                if not group.room() and not group.cond.wait_for(group.room, self.publish_timeout):
                    raise BusError(f"memory bus: group on {group.pattern!r} full for {self.publish_timeout}s "
                                   f"({group.max_pending} pending); is its consumer stuck?")
                group.queue.append(MemoryMessage(subject, payload, key, seq, born=born or time.time(), _group=group))
                group.cond.notify_all()

    def publish_many(self, items: list[tuple[str, bytes, str]], born: list[float] | None = None) -> None:
        for i, (subject, payload, key) in enumerate(items):
            self.publish(subject, payload, key, born[i] if born is not None else None)

    def subscribe(self, subject: str, group: str, *, max_in_flight: int | None = None,
                  ack_wait: float | None = None) -> MemorySubscription:
        """`ack_wait` does not apply in one process (a member that goes away closes its subscription);
        `max_in_flight` bounds the group on its first subscription."""
        with self._lock:
            g = self._groups.get((group, subject))
            if g is None:
                g = self._groups[(group, subject)] = _Group(subject, max_in_flight or self.max_pending)
            g.members += 1
        return MemorySubscription(self, g)

    def pending(self, subject: str, group: str) -> int:
        """Messages of the group not yet acked (queued or in flight)."""
        g = self._groups.get((group, subject))
        return 0 if g is None else len(g.queue) + len(g.delayed) + g.in_flight

    def connected(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            groups = list(self._groups.values())
        for g in groups:
            with g.cond:
                g.cond.notify_all()
