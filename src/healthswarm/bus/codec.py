"""Events as bytes on the bus (orjson), in one place so every producer and consumer agrees.

One event is one JSON document; several events travel as one message of JSON lines (JSON text holds no raw
newline), so a message of one event is the same bytes either way and `events_from_bytes` reads both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from healthswarm.model import Event

_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    # Parsers keep originals as JSON-like values; anything else (bytes, sets) travels as text
    # rather than failing a whole batch.
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def event_to_bytes(event: Event) -> bytes:
    return orjson.dumps(
        {
            "timestamp": event.timestamp,
            "fields": event.fields,
            "original": event.original,
            "source": event.source,
            "record": event.record,
            "position": event.position,
            "key": event.key,
        },
        option=_DUMP_OPTIONS,
        default=_default,
    )


def event_from_bytes(data: bytes) -> Event:
    doc = orjson.loads(data)
    return Event(
        timestamp=datetime.fromisoformat(doc["timestamp"]),
        fields=doc["fields"],
        original=doc.get("original"),
        source=doc.get("source", ""),
        record=doc.get("record", 0),
        position=doc.get("position", 0),
        key=doc.get("key", ""),
    )


def events_to_bytes(events: Sequence[Event]) -> bytes:
    return b"\n".join(event_to_bytes(e) for e in events)


def events_from_bytes(data: bytes) -> list[Event]:
    return [event_from_bytes(line) for line in data.split(b"\n")]
