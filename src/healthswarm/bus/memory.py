"""The in-process bus: the embedded default, one process, no server.

Each consumer group has one queue per subscription pattern; a published message goes to every group
whose pattern matches, and any subscription of the group may take it. Un-acked messages go back to
the front of the group's queue on `nak()` or when their subscription closes. Every group holds at
most `max_pending` messages (queued plus delivered but un-acked): a publisher that finds one full
waits, which slows ingestion to the pace of the slowest consumer instead of growing memory.
A message published while no group matches is dropped: in one process nobody could read it later.
"""

from __future__ import annotations

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
    _group: _Group | None = field(default=None, repr=False)
    _owner: MemorySubscription | None = field(default=None, repr=False)

    def ack(self) -> None:
        if self._group is not None and self._owner is not None:
            self._group.settle(self, self._owner, requeue=False)

    def nak(self) -> None:
        if self._group is not None and self._owner is not None:
            self._group.settle(self, self._owner, requeue=True)


class _Group:
    def __init__(self, pattern: str, max_pending: int) -> None:
        self.pattern = pattern
        self.max_pending = max_pending
        self.queue: deque[MemoryMessage] = deque()
        self.in_flight = 0
        self.cond = threading.Condition()
        self.members = 0

    def room(self) -> bool:
        return len(self.queue) + self.in_flight < self.max_pending

    def settle(self, message: MemoryMessage, owner: MemorySubscription, requeue: bool) -> None:
        with self.cond:
            if message._owner is not owner or message not in owner.in_flight:
                return  # already settled (acked twice, or returned when its subscription closed)
            owner.in_flight.discard(message)
            message._owner = None
            self.in_flight -= 1
            if requeue:
                self.queue.appendleft(message)
            self.cond.notify_all()


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
            while not group.queue and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                group.cond.wait(remaining)
            out: list[MemoryMessage] = []
            while group.queue and len(out) < max_messages and not self.closed:
                message = group.queue.popleft()
                message.deliveries += 1
                message._owner = self
                self.in_flight.add(message)
                group.in_flight += 1
                out.append(message)
            return out

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

    def publish(self, subject: str, payload: bytes, key: str = "") -> None:
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
                group.queue.append(MemoryMessage(subject, payload, key, seq, _group=group))
                group.cond.notify_all()

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        for subject, payload, key in items:
            self.publish(subject, payload, key)

    def subscribe(self, subject: str, group: str) -> MemorySubscription:
        with self._lock:
            g = self._groups.get((group, subject))
            if g is None:
                g = self._groups[(group, subject)] = _Group(subject, self.max_pending)
            g.members += 1
        return MemorySubscription(self, g)

    def pending(self, subject: str, group: str) -> int:
        """Messages of the group not yet acked (queued or in flight)."""
        g = self._groups.get((group, subject))
        return 0 if g is None else len(g.queue) + g.in_flight

    def close(self) -> None:
        with self._lock:
            groups = list(self._groups.values())
        for g in groups:
            with g.cond:
                g.cond.notify_all()
