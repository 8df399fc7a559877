"""NATS JetStream subscription as an ingest source: a durable pull consumer, acked after the commit.

The subject's stream is found on the server, or created (`INGEST_<subject>`, file storage) when no
stream holds the subject yet. A message's key part is its stream sequence (with the stream's name and
creation time, so a stream deleted and created again does not reuse the keys of the old one), which
stays the same across redeliveries: a message redelivered after a crash is stored once.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from healthswarm.bus.base import BusError
from healthswarm.bus.nats import NatsBus, NatsMessage, NatsSubscription, stream_name_for


def parse_url(url: str) -> tuple[str, str]:
    """nats://host[:port]/subject → (server URL, subject)."""
    rest = url.removeprefix("nats://")
    hostport, _, subject = rest.partition("/")
    if not hostport or not subject:
        raise BusError(f"{url!r}: expected nats://host:port/subject")
    if ":" not in hostport:
        hostport += ":4222"
    return f"nats://{hostport}", subject


class NatsSource:
    def __init__(self, server: str, subject: str, group: str = "healthswarm-ingest", **bus_options: Any) -> None:
        self.subject = subject
        self._bus = NatsBus(server, stream=None, **bus_options)
        try:
            if self._bus.stream_for(subject) is None:
                self._bus.ensure_stream(stream_name_for(subject), [subject])
            self._sub: NatsSubscription = self._bus.subscribe(subject, group)
        except Exception:
            self._bus.close()
            raise

    @classmethod
    def from_url(cls, url: str, group: str = "healthswarm-ingest", **bus_options: Any) -> NatsSource:
        server, subject = parse_url(url)
        return cls(server, subject, group, **bus_options)

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[NatsMessage]:
        return self._sub.fetch(max_messages, timeout)

    def ack_all(self, messages: list[NatsMessage]) -> None:
        self._sub.ack_all(messages)

    def close(self) -> None:
        self._sub.close()
        self._bus.close()

    def __enter__(self) -> NatsSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
