"""Windows events as JSON: evtx_dump, winlogbeat (6.x and 7+), OTRF Security-Datasets; plain or archived.

Layouts, recognised per record:
- evtx_dump / the evtx package: `{"Event": {"System": …, "EventData": …}}`, one per line, pretty-printed
  and concatenated (with or without evtx_dump's `Record N` lines), or an array;
- winlogbeat 7+: `winlog.event_id`, `winlog.channel`, `winlog.event_data` …; winlogbeat 6.x:
  `event_id`, `log_name`, `source_name`, `computer_name`, `event_data` …;
- OTRF Security-Datasets (NXLog/Logstash): flat JSON lines with `EventID`, `Channel`, `SourceName`,
  `Hostname` and the event data beside them.
All become the flat Sigma dict of `windows_fields` (`original`) and the same ECS fields as EVTX.

Containers: a zip (every member, in archive order), a tar — plain, .tar.gz, .tar.bz2, .tar.xz —
(members streamed, nothing extracted to disk) or a gzip-compressed JSON file. There `position` is the
record ordinal across members (items that could not be read count too, so a resume skips them);
in a plain JSON file it is the byte offset after the record. macOS archivers add `__MACOSX/` and
`._name` members (Finder metadata, not JSON): they hold no records and are skipped.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.json_records import JsonItem, iter_json_from, iter_json_items
from healthswarm.ingest.formats.lines import iter_lines
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
_SPOOL_BYTES = 64 * 1024 * 1024

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
            if head.startswith(_GZIP) and len(inner) > 512 and inner[257:262] == b"ustar":
                inner = inner[512:]
            return _content_score(inner[:65536])
        text = head.lstrip()
        if text[:1] not in (b"{", b"[", b"R"):
            return 0.0
        return _content_score(head)

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        try:
            magic = _peek(stream, 4)
        except OSError as exc:
            yield self._reject(source, start + 1, 0, f"unreadable stream: {exc}", b"")
            return
        if magic.startswith(_ZIP):
            yield from self._zip(stream, source, start)
        elif magic.startswith(_GZIP):
            yield from self._gzip(stream, source, start)
        elif _is_tar(_peek(stream, 512)):
            yield from self._tar(stream, source, start, mode="r|")
        else:
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

    def _member(
        self, member: BinaryIO, name: str, source: str, ordinal: list[int], start: int
    ) -> Iterator[Event | Reject]:
        """Records of one archive member; `ordinal` is shared across members (a one-item list)."""
        for item in iter_json_items(iter_lines(_SmallReads(member))):
            ordinal[0] += 1
            if ordinal[0] > start:
                if item.error:
                    item.error = f"{name}: {item.error}"
                yield self._item(item, source, ordinal[0], ordinal[0])

    # -- containers -----------------------------------------------------------------------------
    def _zip(self, stream: BinaryIO, source: str, start: int) -> Iterator[Event | Reject]:
        ordinal = [0]
        try:
            seekable = stream if stream.seekable() else _spool(stream)
            archive = zipfile.ZipFile(seekable)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            yield self._reject(source, start + 1, start + 1, f"unreadable zip archive: {exc}", _peek(stream, 512))
            return
        with archive:
            for info in archive.infolist():
                if info.is_dir() or _apple_metadata(info.filename):
                    continue
                try:
                    with archive.open(info) as member:
                        yield from self._member(member, info.filename, source, ordinal, start)  # type: ignore[arg-type]
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                    yield from self._broken(source, ordinal, start, f"zip member {info.filename!r} unreadable", exc)

    def _broken(self, source: str, ordinal: list[int], start: int, what: str,
                exc: BaseException) -> Iterator[Reject]:
        """One reject for an archive member or stream that stopped being readable; it counts as a record."""
        ordinal[0] += 1
        if ordinal[0] > start:
            yield self._reject(source, ordinal[0], ordinal[0], f"{what} after {ordinal[0] - 1} records: {exc}", b"")

    def _gzip(self, stream: BinaryIO, source: str, start: int) -> Iterator[Event | Reject]:
        unzipped = io.BufferedReader(_Gunzip(stream), 1024 * 1024)
        try:
            block = unzipped.peek(512)[:512]
        except (OSError, EOFError, zlib.error) as exc:
            yield self._reject(source, start + 1, start + 1, f"unreadable gzip stream: {exc}", _peek(stream, 512))
            return
        if _is_tar(block):
            yield from self._tar(unzipped, source, start, mode="r|")
            return
        ordinal = [0]
        try:
            yield from self._member(unzipped, "gzip", source, ordinal, start)
        except (OSError, EOFError, zlib.error) as exc:
            yield from self._broken(source, ordinal, start, "gzip stream truncated or corrupt", exc)

    def _tar(self, stream: BinaryIO, source: str, start: int, mode: str) -> Iterator[Event | Reject]:
        ordinal = [0]
        name = "(header)"
        try:
            with tarfile.open(fileobj=stream, mode=mode) as archive:
                for info in archive:
                    name = info.name
                    if not info.isfile() or _apple_metadata(info.name):
                        continue
                    member = archive.extractfile(info)
                    if member is not None:
                        yield from self._member(member, info.name, source, ordinal, start)  # type: ignore[arg-type]
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            yield from self._broken(source, ordinal, start, f"tar archive truncated or corrupt in member {name!r}", exc)


class _SmallReads:
    """Reads of at most 64 KiB: when an archive turns out truncated, only the records of the last piece
    read are lost with the error (a read that fails returns nothing of what it had)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(65536 if size < 0 else min(size, 65536))

    def seekable(self) -> bool:
        return False


class _Gunzip(io.RawIOBase):
    """gzip decompression as a stream, one member after another.

    Bytes after a complete member that do not start another member are ignored, as gzip(1) does
    ("trailing garbage ignored"): some Security-Datasets archives end with a stray newline, which
    Python's GzipFile refuses. A stream that ends inside a member raises EOFError (truncated).
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            if self._inflate.eof:
                rest = self._inflate.unused_data
                if len(rest) < 2:
                    rest += self._stream.read(2 - len(rest))
                if not rest.startswith(_GZIP):
                    self._done = True
                    break
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = self._inflate.decompress(rest, len(buffer))
                continue
            tail = self._inflate.unconsumed_tail
            data = tail or self._stream.read(256 * 1024)
            if not data:
                raise EOFError("gzip stream ends before its end-of-stream marker (truncated)")
            self._pending = self._inflate.decompress(data, len(buffer))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _peek(stream: BinaryIO, size: int) -> bytes:
    if stream.seekable():
        where = stream.tell()
        data = stream.read(size)
        stream.seek(where)
        return data
    peek = getattr(stream, "peek", None)
    return peek(size)[:size] if peek else b""


def _is_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
        return True
    except (tarfile.TarError, ValueError, UnicodeError):
        return False


def _apple_metadata(name: str) -> bool:
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith("._")


def _spool(stream: BinaryIO) -> BinaryIO:
    """A zip needs random access (its directory is at the end): a pipe is copied to a spooled buffer."""
    spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    while chunk := stream.read(1024 * 1024):
        spooled.write(chunk)
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


FORMAT = WindowsJsonFormat()
