"""The bus: where stages meet. `memory` in one process (the default), `nats` (JetStream) scaled out."""

from __future__ import annotations

from healthswarm.bus.base import Bus, BusError, Message, Subscription, messages, subject_matches
from healthswarm.bus.codec import event_from_bytes, event_to_bytes, events_from_bytes, events_to_bytes


def open_bus(url: str = "memory") -> Bus:
    """`memory`, a `nats://host:port` URL, or a plug-in bus's `scheme://…` (healthswarm/buses.py)."""
    from healthswarm.buses import open_registered_bus

    return open_registered_bus(url)


__all__ = ["Bus", "BusError", "Message", "Subscription", "event_from_bytes", "event_to_bytes", "events_from_bytes",
           "events_to_bytes", "messages", "open_bus", "subject_matches"]
