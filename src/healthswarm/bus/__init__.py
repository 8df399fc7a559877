"""The bus: where stages meet. `memory` in one process (the default), `nats` (JetStream) scaled out."""

from __future__ import annotations

from healthswarm.bus.base import Bus, BusError, Message, Subscription, messages, subject_matches
from healthswarm.bus.codec import event_from_bytes, event_to_bytes


def open_bus(url: str = "memory") -> Bus:
    """`memory` or a `nats://host:port` URL."""
    if url == "memory":
        from healthswarm.bus.memory import MemoryBus

        return MemoryBus()
    if url.startswith("nats://"):
        from healthswarm.bus.nats import NatsBus

        return NatsBus(url)
    raise BusError(f"bus {url!r}: expected 'memory' or nats://host:port")


__all__ = ["Bus", "BusError", "Message", "Subscription", "event_from_bytes", "event_to_bytes", "messages",
           "open_bus", "subject_matches"]
