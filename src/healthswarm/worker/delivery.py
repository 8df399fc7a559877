"""One message as a stage sees it: plain data, no client object (stages run in a thread, not on the loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthswarm.worker.jetstream import message_id

#: NATS header carrying when the record a message descends from entered the system (epoch seconds).
BORN_HEADER = "Healthswarm-Born"


@dataclass(frozen=True, slots=True)
class Delivery:
    subject: str
    data: bytes
    # stable across redeliveries (stream, creation time, sequence): the key part of what it yields
    id: str
    born: float
    deliveries: int


def delivery(msg: Any, stream_created: str) -> Delivery:
    """From a nats-py JetStream message; `born` is the header a relay set, else the time JetStream stored it."""
    meta = msg.metadata
    headers = msg.headers or {}
    try:
        born = float(headers[BORN_HEADER])
    except (KeyError, ValueError):
        born = meta.timestamp.timestamp()
    return Delivery(msg.subject, msg.data, message_id(meta.stream, stream_created, meta.sequence.stream), born,
                    meta.num_delivered)
