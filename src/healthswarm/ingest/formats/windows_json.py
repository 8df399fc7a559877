"""Windows events as JSON: evtx_dump, winlogbeat (6.x and 7+), OTRF Security-Datasets; plain or archived.

Layouts, recognised per record:
- evtx_dump / the evtx package: `{"Event": {"System": …, "EventData": …}}`, one per line, pretty-printed
  and concatenated (with or without evtx_dump's `Record N` lines), or an array;
- winlogbeat 7+: `winlog.event_id`, `winlog.channel`, `winlog.event_data` …; winlogbeat 6.x:
  `event_id`, `log_name`, `source_name`, `computer_name`, `event_data` …;
- OTRF Security-Datasets (NXLog/Logstash): flat JSON lines with `EventID`, `Channel`, `SourceName`,
  `Hostname` and the event data beside them.
All become the flat Sigma dict of `windows_fields` (`original`) and the same ECS fields as EVTX.

Containers (zip, tar, tar.gz, gzip, nested; `__MACOSX/` skipped) are opened by the shared container
layer, `ingest/containers.py`, as for every format; `parse()` hands a container it is given directly
to that layer. In an archive `position` is the item ordinal across members; in a JSON file (plain or
gzip-compressed) it is the byte offset after the record.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest import containers
from healthswarm.ingest.formats.json_records import JsonItem, iter_json_from
from healthswarm.ingest.formats.windows_fields import (
    ecs_fields,
    event_timestamp,
    flatten_event_json,
    flatten_flat,
    flatten_winlogbeat,
)
from healthswarm.model import Event, Reject

_ZIP = b"PK\x03\x04"
_GZIP = b"\x1f\x8b"

_EVTX_DUMP = re.compile(rb'"Event"\s*:\s*\{\s*"(#attributes|System)"')
_WINLOG = re.compile(rb'"winlog"\s*:\s*\{')
_WINLOG_ID = re.compile(rb'"event_id"\s*:')
_WINLOGBEAT6 = re.compile(rb'"(computer_name|log_name|source_name)"\s*:')
_FLAT_ID = re.compile(rb'"EventID"\s*:\s*"?\d')
_FLAT_CONTEXT = re.compile(rb'"(Channel|SourceName|Hostname|ProviderGuid)"\s*:')


def _content_score(text: bytes) -> float:
    if _EVTX_DUMP.search(text):
        return 0.95
    if _WINLOG.search(text) and _WINLOG_ID.search(text):
        return 0.9
    if _WINLOG_ID.search(text) and _WINLOGBEAT6.search(text):
        return 0.85
    if _FLAT_ID.search(text) and _FLAT_CONTEXT.search(text):
        return 0.85
    return 0.0


def _inflate_head(head: bytes) -> bytes:
    """The first decompressed bytes of a zip's first member or of a gzip stream, from `head` alone."""
    try:
        if head.startswith(_GZIP):
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 256 * 1024)
        if head.startswith(_ZIP) and len(head) >= 30:
            method = int.from_bytes(head[8:10], "little")
            name_len = int.from_bytes(head[26:28], "little")
            extra_len = int.from_bytes(head[28:30], "little")
            body = head[30 + name_len + extra_len :]
            if method == 0:
                return body
            if method == 8:
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, 256 * 1024)
    except zlib.error:
        return b""
    return b""


def to_flat(value: Any) -> dict[str, Any] | str:
    """A decoded JSON record → the flat Sigma dict, or the reason it is not a Windows event."""
    if not isinstance(value, dict):
        return f"expected a JSON object (a Windows event), found {type(value).__name__}"
    event = value.get("Event")
    if isinstance(event, dict) and isinstance(event.get("System"), dict):
        flat = flatten_event_json(event)
    elif isinstance(value.get("winlog"), dict) or (
        "event_id" in value and ("event_data" in value or "computer_name" in value or "log_name" in value)
    ):
        flat = flatten_winlogbeat(value)
    elif "EventID" in value:
        flat = flatten_flat(value)
    else:
        return (
            "not a Windows event: expected Event.System (evtx_dump), winlog.event_id (winlogbeat) "
            "or EventID (Security-Datasets/NXLog)"
        )
    if not isinstance(flat.get("EventID"), int):
        return f"Windows event without an integer EventID (found {flat.get('EventID')!r})"
    return flat


class WindowsJsonFormat:
    name: ClassVar[str] = "windows-json"
    description: ClassVar[str] = "Windows events as JSON: evtx_dump, winlogbeat, OTRF Security-Datasets (zip/tar.gz)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head.startswith((_ZIP, _GZIP)):
            inner = _inflate_head(head)
            if head.startswith(_GZIP) and containers.is_tar(inner[:512]):
                inner = inner[512:]
            return _content_score(inner[:65536])
        if containers.is_tar(head[:512]):
            return _content_score(head[512:])
        text = head.lstrip()
        if text[:1] not in (b"{", b"[", b"R"):
            return 0.0
        return _content_score(head)

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        head = _peek(stream, 512)
        if containers.kind(head) is not None:
            yield from containers.read(stream, source, start, self)
            return
        for item in iter_json_from(stream, start):
            yield self._item(item, source, item.position, item.line)

    # -- records --------------------------------------------------------------------------------
    def _item(self, item: JsonItem, source: str, position: int, record: int) -> Event | Reject:
        if item.error:
            return self._reject(source, position, record, item.error, item.raw)
        flat = to_flat(item.value)
        if isinstance(flat, str):
            return self._reject(source, position, record, flat, item.raw)
        timestamp = event_timestamp(flat)
        if timestamp is None:
            return self._reject(
                source,
                position,
                record,
                "Windows event without a valid time: expected TimeCreated/SystemTime, @timestamp or UtcTime",
                item.raw,
            )
        return Event(
            timestamp=timestamp, fields=ecs_fields(flat), original=flat, source=source, record=record, position=position
        )

    def _reject(self, source: str, position: int, record: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)


def _peek(stream: BinaryIO, size: int) -> bytes:
    try:
        seekable = stream.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        where = stream.tell()
        data = stream.read(size)
        stream.seek(where)
        return data
    peek = getattr(stream, "peek", None)
    return peek(size)[:size] if peek else b""


FORMAT = WindowsJsonFormat()
