"""The bus protocol every stage meets on: publish bytes to a subject, subscribe with a consumer group.

Semantics shared by every implementation:
- a subject is dot-separated (`healthswarm.events.suricata`); a subscription may use NATS wildcards
  (`*` one token, `>` the rest);
- each consumer group receives every message once; the subscriptions of one group share the work;
- delivery is at least once: a message is done when acked; `nak()` or closing the subscription with
  it un-acked delivers it again (to any member of the group). Consumers deduplicate by `key`;
- `deliveries` counts the times a message was handed out (1 the first time), so a consumer can tell a
  message that keeps failing (and give up on it: `term()`, see worker/loop.py's dead letters) from one that
  failed once; `nak(delay)` hands it out again no sooner than `delay` seconds later;
- `born` is when the record a message descends from entered the system (epoch seconds), carried along by
  `publish_many(…, born=…)`: latency figures are measured from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


class BusError(Exception):
    """The bus could not do what was asked (unreachable server, full queue, bad subject)."""


@runtime_checkable
class Message(Protocol):
    subject: str
    data: bytes
    key: str
    # stable across redeliveries of this message (JetStream stream sequence, memory sequence)
    id: str
    deliveries: int
    born: float

    def ack(self) -> None: ...

    def nak(self, delay: float = 0.0) -> None: ...

    def term(self) -> None:
        """Done with it, though not processed: it is never delivered again (a dead letter)."""
        ...


@runtime_checkable
class Subscription(Protocol):
    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Message]:
        """Up to `max_messages` messages, waiting at most `timeout` seconds for the first."""
        ...

    def ack_all(self, messages: list[Message]) -> None:
        """Ack many at once (a batch committed in one transaction)."""
        ...

    def lag(self) -> int:
        """Messages of the group not delivered yet (the backlog the group's members have still to take)."""
        ...

    def close(self) -> None:
        """Stop receiving; messages delivered but not acked go back to the group."""
        ...


@runtime_checkable
class Bus(Protocol):
    def publish(self, subject: str, payload: bytes, key: str = "") -> None: ...

    def publish_many(self, items: list[tuple[str, bytes, str]], born: list[float] | None = None) -> None:
        """Publish (subject, payload, key) triples (and, if given, when each one's record was born); returns
        when the bus holds all of them."""
        ...

    def subscribe(self, subject: str, group: str, *, max_in_flight: int | None = None,
                  ack_wait: float | None = None) -> Subscription:
        """`max_in_flight`: messages the whole group holds un-acked at most (the bus's default if None);
        `ack_wait`: seconds before a message held un-acked by a member that went away is handed out again."""
        ...

    def connected(self) -> bool:
        """Is the bus reachable now (readiness probes)?"""
        ...

    def close(self) -> None: ...


def messages(subscription: Subscription, idle: float = 1.0, batch: int = 100) -> Iterator[Message]:
    """Messages one by one until none arrives for `idle` seconds (bounded, unlike a bare loop)."""
    while True:
        got = subscription.fetch(batch, idle)
        if not got:
            return
        yield from got


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` matches one token, a final `>` matches one or more."""
    if pattern == subject:
        return True
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return i == len(p_tokens) - 1 and len(s_tokens) > i
        if i >= len(s_tokens) or (token != "*" and token != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)
