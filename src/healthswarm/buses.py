"""Buses by URL scheme: the plug-in point of `bus/` (a `plugins.Registry`, entry-point group
`healthswarm.buses`).

`memory` is the in-process bus, `nats://host:port` JetStream; another package adds a scheme with
`@register_bus("scheme")` on a factory `url -> Bus`, or through the entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from healthswarm.plugins import Registry, UnknownPluginError

if TYPE_CHECKING:
    from healthswarm.bus.base import Bus

BusFactory = Callable[[str], "Bus"]

BUSES: Registry[BusFactory] = Registry("bus", "healthswarm.buses", {
    "memory": "healthswarm.buses:memory_bus",
    "nats": "healthswarm.buses:nats_bus",
}, expect=Callable)


def register_bus(scheme: str) -> Callable[[BusFactory], BusFactory]:
    """Decorator: `factory(url)` opens a bus for URLs `scheme://…` (or the bare word `scheme`)."""
    return BUSES.register(name=scheme)


def memory_bus(url: str) -> Bus:
    from healthswarm.bus.memory import MemoryBus

    return MemoryBus()


def nats_bus(url: str) -> Bus:
    from healthswarm.bus.nats import NatsBus

    return NatsBus(url)


def open_registered_bus(url: str) -> Bus:
    """The bus `url` names by its scheme: `memory`, `nats://host:port` or a plug-in's."""
    from healthswarm.bus.base import BusError

    scheme, separator, _ = url.partition("://")
    if (scheme == "memory") == bool(separator):
        scheme = ""  # `memory` is the one bare word (it takes no address); every other bus is scheme://address
    try:
        factory = BUSES.get(scheme)
    except UnknownPluginError:
        others = [f"{name}://host:port" for name in BUSES.names() if name != "memory"]
        raise BusError(f"bus {url!r}: expected 'memory' or {' or '.join(others)}") from None
    return factory(url)
