"""Windows EVTX files, read with the `evtx` package (Rust parser; records rendered as JSON).

`original` is the flat Sigma dict of `windows_fields`, `fields` its ECS mapping.
`position` is the record ordinal: the 1-based count of items read, where a chunk the parser
cannot read counts as one item (its Reject) so a resume neither repeats nor loses it.
A corrupt chunk becomes a Reject with the parser's reason and reading goes on with the next chunk;
a file that ends inside a chunk (a truncated copy) gets a Reject for that partial chunk, because the
parser ignores it without a word.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from healthswarm.ingest.formats.timestamps import parse_iso
from healthswarm.ingest.formats.windows_fields import ecs_fields, event_timestamp, flatten_event_json
from healthswarm.model import Event, Reject

_MAGIC = b"ElfFile\x00"
_HEADER = 4096
_CHUNK = 65536


class EvtxFormat:
    name: ClassVar[str] = "evtx"
    description: ClassVar[str] = "Windows EVTX event log files (evtx package)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head.startswith(_MAGIC):
            return 1.0
        return 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        ordinal = 0
        head = _peek(stream, 8)
        if head != _MAGIC:
            yield self._reject(source, 1, f"not an EVTX file: expected magic 'ElfFile\\0', found {head!r}", head)
            return
        try:
            parser = _open_parser(stream)
            records = parser.records_json()
        except Exception as exc:  # the Rust parser reports every failure as OSError/RuntimeError/ValueError
            yield self._reject(source, 1, f"EVTX header unreadable: {exc}", _peek(stream, _HEADER))
            return
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    record = next(records)
            except StopIteration:
                break
            except Exception as exc:  # a corrupt chunk/record: the iterator goes on after it
                ordinal += 1
                if ordinal > start:
                    yield self._reject(source, ordinal, f"EVTX chunk/record unreadable: {exc}", b"")
                continue
            ordinal += 1
            if ordinal <= start:
                continue
            yield self._event(record, source, ordinal)
        partial = _partial_chunk(stream)
        if partial is not None:
            ordinal += 1
            if ordinal > start:
                index, size = partial
                yield self._reject(
                    source,
                    ordinal,
                    f"EVTX file truncated: it ends {size} bytes into chunk {index} (expected {_CHUNK}); "
                    "the records of that chunk cannot be read",
                    b"",
                )

    def _event(self, record: dict[str, Any], source: str, ordinal: int) -> Event | Reject:
        data = record.get("data", "")
        try:
            parsed = orjson.loads(data)
            event = parsed["Event"]
            flat = flatten_event_json(event)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raw = data.encode("utf-8", "replace") if isinstance(data, str) else b""
            return self._reject(source, ordinal, f"EVTX record rendered without an Event object: {exc}", raw)
        timestamp = event_timestamp(flat) or _header_time(record.get("timestamp"))
        if timestamp is None:
            return self._reject(
                source, ordinal, "EVTX record without a valid TimeCreated/SystemTime", data.encode("utf-8", "replace")
            )
        return Event(
            timestamp=timestamp, fields=ecs_fields(flat), original=flat, source=source, record=ordinal, position=ordinal
        )

    def _reject(self, source: str, ordinal: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=ordinal, reason=reason, raw=raw, format=self.name, record=ordinal)


def _peek(stream: BinaryIO, size: int) -> bytes:
    try:
        where = stream.tell()
        data = stream.read(size)
        stream.seek(where)
        return data
    except (OSError, ValueError):
        return b""


def _open_parser(stream: BinaryIO) -> Any:
    import evtx  # imported on use: the Rust extension is not needed by other formats

    if not stream.seekable():
        # the parser seeks between chunks; a pipe is held in memory (EVTX files are at most a few GB,
        # usually 20 MB — the default maximum size of a Windows log)
        stream = io.BytesIO(stream.read())
    return evtx.PyEvtxParser(stream, number_of_threads=1)


def _partial_chunk(stream: BinaryIO) -> tuple[int, int] | None:
    """(chunk index, bytes present) of a trailing incomplete chunk, None when the file ends on a boundary."""
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        try:
            size = stream.seek(0, io.SEEK_END)
        except (OSError, ValueError):
            return None
    if size <= _HEADER:
        return None
    rest = (size - _HEADER) % _CHUNK
    if rest == 0:
        return None
    return (size - _HEADER) // _CHUNK, rest


def _header_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = parse_iso(value.removesuffix(" UTC"))
    # the record header of some files holds 0 (1601-01-01): that is "unknown", not a time
    return parsed if parsed is not None and parsed.year > 1601 else None


FORMAT = EvtxFormat()
