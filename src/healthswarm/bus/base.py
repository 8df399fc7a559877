"""The bus protocol every stage meets on: publish bytes to a subject, subscribe with a consumer group.

Semantics shared by every implementation:
- a subject is dot-separated (`healthswarm.events.suricata`); a subscription may use NATS wildcards
  (`*` one token, `>` the rest);
- each consumer group receives every message once; the subscriptions of one group share the work;
- delivery is at least once: a message is done when acked; `nak()` or closing the subscription with
  it un-acked delivers it again (to any member of the group). Consumers deduplicate by `key`.
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

    def ack(self) -> None: ...

    def nak(self) -> None: ...


@runtime_checkable
class Subscription(Protocol):
    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Message]:
        """Up to `max_messages` messages, waiting at most `timeout` seconds for the first."""
        ...

    def close(self) -> None:
        """Stop receiving; messages delivered but not acked go back to the group."""
        ...


@runtime_checkable
class Bus(Protocol):
    def publish(self, subject: str, payload: bytes, key: str = "") -> None: ...

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        """Publish (subject, payload, key) triples; returns when the bus holds all of them."""
        ...

    def subscribe(self, subject: str, group: str) -> Subscription: ...

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
