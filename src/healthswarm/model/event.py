"""The normalised event every source becomes, and the record of input that could not become one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any


@dataclass(slots=True)
class Event:
    """One normalised event.

    `fields` holds ECS field names as flat dotted keys (`source.ip`, `event.category`, ...), with
    `observer.type` naming the format, and `organization.id` / `asset.id` once the inventory resolves
    them. Patient identifiers go to `patient.*` fields so later stages can protect them.
    `original` is the record as the source wrote it, parsed (dict for JSON, XML-derived dict for
    EVTX, text otherwise): Sigma rules written against vendor field names match on it.
    `source` is where the record came from (file path, topic, subject); `record` is its 1-based line
    or record number there, for people; `position` is where reading resumes after it (the byte
    offset just past the record for text formats, the record ordinal for container formats such as
    EVTX), for checkpoints; `key` is the idempotency key the source assigns (see `event_key`).
    `original_json` is the original's JSON text exactly as read, set by parsers of JSON input that
    kept the line, so the store writes those bytes instead of serialising `original` again (the
    largest value of an event). It is not a constructor argument, so `dataclasses.replace` (a new
    `original`) drops it; code that changes `original` in place must set it to None.
    """

    timestamp: datetime
    fields: dict[str, Any]
    original: Any
    source: str = ""
    record: int = 0
    position: int = 0
    key: str = ""
    original_json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = self.timestamp.tzinfo
        if zone is UTC:  # what parsers produce: skips a utcoffset() call per event on the ingest hot path
            return
        if zone is None:
            raise ValueError("event timestamps must be timezone-aware (UTC)")
        if self.timestamp.utcoffset():
            self.timestamp = self.timestamp.astimezone(UTC)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def nested(self) -> dict[str, Any]:
        """The ECS fields as nested objects, as ECS documents are usually written."""
        out: dict[str, Any] = {"@timestamp": self.timestamp.isoformat()}
        for dotted, value in self.fields.items():
            parts = dotted.split(".")
            node = out
            for part in parts[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[parts[-1]] = value
        return out


_SPAN = 16**16  # positions written as 16 hex digits


def event_key(source_identity: str, position: int | str) -> str:
    """Idempotency key of an event: the same record read twice gets the same key.

    32 hex digits: 16 of a hash of the source's identity, then 16 of where the record is in it (its position, for
    the numbers streams use; a hash of it for the others: a message's part, a duplicate's `N#k`). A source's keys
    therefore grow with its positions, and the store's unique index on them takes a batch at the end of the
    source's range: a few pages written per batch, where keys hashed whole put each event on a random page of an
    index that outgrows every cache (a 30-minute run at 5,000 events/s of the agent fell behind as it grew)."""
    return _key(_source_prefix(source_identity), source_identity, position)


def event_keyer(source_identity: str) -> Callable[[int | str], str]:
    """`event_key` bound to one source (a stream keys every record): the identity is hashed once."""
    return partial(_key, _source_prefix(source_identity), source_identity)


def _source_prefix(source_identity: str) -> str:
    return hashlib.blake2b(source_identity.encode(), digest_size=8).hexdigest()


def _key(prefix: str, source_identity: str, position: int | str) -> str:
    if type(position) is int and 0 <= position < _SPAN:
        return f"{prefix}{position:016x}"
    text = str(position)
    # the writer process gets positions as text
    if text.isascii() and text.isdigit() and (number := int(text)) < _SPAN:
        return f"{prefix}{number:016x}"
    return prefix + hashlib.blake2b(f"{source_identity}\x00{text}".encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class Reject:
    """Input that could not be parsed: kept in quarantine with where it was and why."""

    source: str
    position: int
    reason: str
    raw: bytes
    format: str = ""
    record: int = 0
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
