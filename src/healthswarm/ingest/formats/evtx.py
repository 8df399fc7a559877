"""Windows EVTX files, read with the `evtx` package (Rust parser; records rendered as JSON).

`original` is the flat Sigma dict of `windows_fields`, `fields` its ECS mapping.
`position` is the record ordinal: the 1-based count of items read (events and rejects), so a
resume neither repeats nor loses one.

A damaged chunk is salvaged record by record: the parser gives up on a whole chunk (64 KiB, often
100 records) when a few bytes of it are wrong, so once it fails the file is read again chunk by
chunk, and a chunk that fails is repaired in memory before it is parsed — its string and template
caches cleared (rebuilt from the records as they are read), the records found by their magic
`**\0\0` with a size that its trailing copy confirms, and each damaged span between them turned
into one filler record that the parser rejects on its own. So only what cannot be read is
quarantined: the damaged spans, and records whose template was defined inside one.
A file that ends inside a chunk (a truncated copy) gets a Reject for that partial chunk, because the
parser ignores it without a word.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from healthswarm.ingest.formats.timestamps import parse_iso
from healthswarm.ingest.formats.windows_fields import ecs_fields, event_timestamp, flatten_event_json
from healthswarm.model import Event, Reject

_MAGIC = b"ElfFile\x00"
_CHUNK_MAGIC = b"ElfChnk\x00"
_RECORD_MAGIC = re.compile(b"\\*\\*\x00\x00")
_HEADER = 4096
_CHUNK = 65536
_CHUNK_HEADER = 512
# an unused (preallocated) chunk, compared at memcmp speed: strip(b"\0") scanned it byte by byte, 8 % of
# the parse of the attack samples, whose files are mostly such chunks
_ZEROS = bytes(_CHUNK)
_RECORD_HEADER = 24  # magic, size, record id, time; the size is repeated in the record's last 4 bytes
_BATCH = 256  # records taken from the parser at a time


class EvtxFormat:
    name: ClassVar[str] = "evtx"
    description: ClassVar[str] = "Windows EVTX event log files (evtx package)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head.startswith(_MAGIC):
            return 1.0
        return 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        ordinal = 0
        stream = _random_access(stream)
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
        damaged = bool(_damaged_chunks(stream))  # a checksum that does not match: read chunk by chunk
        more = not damaged
        while more:
            batch, more, damaged = _next_records(records)
            for record in batch:
                ordinal += 1
                if ordinal > start:
                    yield self._event(record, source, ordinal)
        if damaged:
            done = ordinal
            ordinal = 0
            for item in _chunk_by_chunk(stream, _damaged_chunks(stream)):
                ordinal += 1
                if ordinal <= max(start, done):
                    continue
                if isinstance(item, str):
                    yield self._reject(source, ordinal, item, b"")
                else:
                    yield self._event(item, source, ordinal)
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
        except Exception as exc:  # a damaged record renders as anything: a reject, never a traceback
            raw = data.encode("utf-8", "replace") if isinstance(data, str) else b""
            return self._reject(source, ordinal, f"EVTX record rendered without an Event object: {exc}", raw)
        timestamp = event_timestamp(flat) or _header_time(record.get("timestamp"))
        if timestamp is None:
            return self._reject(
                source, ordinal, "EVTX record without a valid TimeCreated/SystemTime", data.encode("utf-8", "replace")
            )
        return Event(timestamp, ecs_fields(flat), flat, source, ordinal, ordinal)  # record, position: the ordinal

    def _reject(self, source: str, ordinal: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=ordinal, reason=reason, raw=raw, format=self.name, record=ordinal)


def _next_records(records: Iterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool, bool]:
    """Up to _BATCH records; (them, whether more may follow, whether the parser failed: a damaged chunk).

    Batched so that the warnings guard is entered once per batch, not once per record (it cost a tenth
    of the parse); the guard is not held across a yield, where the caller's code runs."""
    batch: list[dict[str, Any]] = []
    append = batch.append
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for _ in range(_BATCH):
                append(next(records))
        except StopIteration:
            return batch, False, False
        except Exception:  # a damaged chunk: the caller reads the file again chunk by chunk, salvaging it
            return batch, False, True
    return batch, True, False


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

    return evtx.PyEvtxParser(stream, number_of_threads=1)


def _random_access(stream: BinaryIO) -> BinaryIO:
    """The parser seeks between chunks; a pipe or an archive member is held in memory (EVTX files are
    at most a few GB, usually 20 MB — the default maximum size of a Windows log)."""
    where = None
    try:
        where = stream.tell()
        stream.seek(0, io.SEEK_END)  # a decompressed stream seeks only forward by reading: not random access
        stream.seek(where)
        return stream
    except (AttributeError, OSError, ValueError):
        if where is not None:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.seek(where)
    return io.BytesIO(stream.read())


def _chunks(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(index, bytes) of every whole chunk."""
    size = stream.seek(0, io.SEEK_END)
    for index, offset in enumerate(range(_HEADER, size - _CHUNK + 1, _CHUNK)):
        stream.seek(offset)
        yield index, stream.read(_CHUNK)


def _damaged_chunks(stream: BinaryIO) -> set[int]:
    """Chunks whose records checksum (CRC-32 of the records, in the chunk header) does not match."""
    damaged = set()
    where = stream.tell()
    for index, chunk in _chunks(stream):
        if chunk[:8] != _CHUNK_MAGIC:
            if chunk != _ZEROS:
                damaged.add(index)
            continue
        free = struct.unpack_from("<I", chunk, 48)[0]
        if not _CHUNK_HEADER <= free <= _CHUNK or zlib.crc32(chunk[_CHUNK_HEADER:free]) != struct.unpack_from(
                "<I", chunk, 52)[0]:
            damaged.add(index)
    stream.seek(where)
    return damaged


def _expected_records(chunk: bytes) -> int | None:
    """How many records the chunk header says the chunk holds, when that is believable."""
    first, last = struct.unpack_from("<QQ", chunk, 8)
    count = last - first + 1
    return count if 0 < count <= _CHUNK // (_RECORD_HEADER + 4) else None


def _chunk_by_chunk(stream: BinaryIO, damaged: set[int]) -> Iterator[dict[str, Any] | str]:
    """Every record of the file (a dict) or the reason one could not be read (a str), chunk by chunk,
    damaged chunks salvaged (see the module docstring)."""
    import evtx

    stream.seek(0)
    header = stream.read(_HEADER)
    for index, chunk in _chunks(stream):
        if chunk[:8] != _CHUNK_MAGIC and chunk == _ZEROS:
            continue  # an unused chunk slot
        items, failed = _read_chunk(evtx, header + chunk)
        expected = _expected_records(chunk)
        short = index in damaged and expected is not None and len(items) < expected
        if failed or short:
            repaired = _repair_chunk(chunk)
            if repaired is None:
                yield f"EVTX chunk {index} unreadable and no record in it could be found: {failed or 'damaged'}"
                continue
            salvaged, _ = _read_chunk(evtx, header + repaired)
            if len(salvaged) >= len(items) or failed:
                items = [f"EVTX record in damaged chunk {index} unreadable: {item}" if isinstance(item, str)
                         else item for item in salvaged]
        yield from items
        if (index in damaged and expected is not None and len(items) < expected
                and not any(isinstance(item, str) for item in items)):  # a loss is never silent
            yield (f"EVTX chunk {index} damaged: its header counts {expected} records, {len(items)} could be "
                   "told apart (the others lie in a damaged span)")


def _read_chunk(evtx: Any, data: bytes) -> tuple[list[dict[str, Any] | str], str]:
    """The records of a one-chunk file, errors as str; and the first error ('' when none)."""
    items: list[dict[str, Any] | str] = []
    first = ""
    try:
        records = evtx.PyEvtxParser(io.BytesIO(data), number_of_threads=1).records_json()
    except Exception as exc:  # the parser reports every failure as OSError/RuntimeError/ValueError
        return [str(exc)], str(exc)
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                items.append(next(records))
        except StopIteration:
            break
        except Exception as exc:
            first = first or str(exc)
            items.append(str(exc))
            if "header magic" in str(exc) or "chunk" in str(exc).lower():
                break  # the parser cannot go on in this chunk
    return items, first


def _repair_chunk(chunk: bytes) -> bytes | None:
    """`chunk` made readable record by record (see the module docstring), or None without records."""
    size = len(chunk)
    starts: list[tuple[int, int]] = []
    for match in _RECORD_MAGIC.finditer(chunk, _CHUNK_HEADER):
        at = match.start()
        length = struct.unpack_from("<I", chunk, at + 4)[0] if at + 8 <= size else 0
        if _RECORD_HEADER + 4 <= length <= size - at and struct.unpack_from("<I", chunk, at + length - 4)[0] == length:
            starts.append((at, length))
    if not starts:
        return None
    fixed = bytearray(chunk)
    fixed[:8] = _CHUNK_MAGIC
    fixed[128:_CHUNK_HEADER] = bytes(_CHUNK_HEADER - 128)  # string and template caches: rebuilt while reading
    valid = dict(starts)
    end = max(at + length for at, length in starts)
    position = _CHUNK_HEADER
    while position < end:
        if position in valid:
            position += valid[position]
            continue
        following = [at for at, _ in starts if at >= position + _RECORD_HEADER + 4]
        target = following[0] if following else end
        if target - position < _RECORD_HEADER + 4:
            end = position  # a damaged tail too short for a filler: the records end here
            break
        _filler(fixed, position, target - position)
        position = target
    struct.pack_into("<I", fixed, 48, end)  # free space offset: where the records end
    return bytes(fixed)


def _filler(chunk: bytearray, at: int, length: int) -> None:
    """A record over a damaged span, whose body no parser reads as an event (one reject for the span)."""
    struct.pack_into("<4sIQQ", chunk, at, b"**\x00\x00", length, 0, 0)
    chunk[at + _RECORD_HEADER] = 0xFF  # not a BinXML token
    struct.pack_into("<I", chunk, at + length - 4, length)


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
