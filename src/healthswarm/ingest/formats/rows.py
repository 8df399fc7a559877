"""Plumbing shared by the row formats (JSON lines and delimited text): reading, decoding, rejecting.

Every row format reads lines with `lines.iter_lines`, so positions are byte offsets just past a
record. Line numbers in reasons and in `record` are the file's own, also when resuming: the lines
before `start` are counted (at C speed, `bytes.count`) rather than restarting at 1.
Blank lines are not records (they carry nothing); they yield neither an event nor a reject.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from healthswarm.ingest.formats.lines import iter_lines, max_line_bytes
from healthswarm.model import Reject

BOM = b"\xef\xbb\xbf"
_CHUNK = 1024 * 1024


def prefix_memo(stream: BinaryIO) -> dict[str, Any] | None:
    """What earlier reads of this file learnt about its bytes before a position, kept across them by the reader of a
    growing file (the follower's window, ingest/sources/follow.py), or None. A followed file is read again and again
    from later offsets; counting its lines (or, for Zeek TSV, its header lines) from the start at every pass made
    following cost time in proportion to the file's size per pass. Entries are keyed by what they hold, each
    `(offset, …)`: valid for any read from that offset on, as an appended file's earlier bytes do not change."""
    return getattr(getattr(stream, "raw", stream), "prefix_memo", None)


def count_lines_before(stream: BinaryIO, start: int) -> int:
    """Number of line endings in the first `start` bytes (0 when `start` is 0); counted on from the last count of a
    growing file (`prefix_memo`), else from its start."""
    if start <= 0:
        return 0
    memo = prefix_memo(stream)
    offset, count = memo.get("lines", (0, 0)) if memo is not None else (0, 0)
    if offset > start:
        offset, count = 0, 0
    stream.seek(offset)
    remaining = start - offset
    while remaining > 0 and (chunk := stream.read(min(_CHUNK, remaining))):
        remaining -= len(chunk)
        count += chunk.count(b"\n")
    if memo is not None:
        memo["lines"] = (start, count)
    return count


def too_long(fmt: str, source: str, position: int, record: int) -> Reject:
    # iter_lines dropped the bytes of the runaway line to bound memory: there is no raw to keep
    return Reject(source, position, f"line {record}: longer than {max_line_bytes()} bytes", b"", fmt, record)


def json_reason(exc: orjson.JSONDecodeError) -> str:
    """'truncated JSON: unexpected end of data at column 80' rather than orjson's one-line-document text."""
    what = str(exc).split(":", 1)[0]
    if "end of data" in what:
        kind = "truncated JSON"
    elif "UTF-8" in str(exc):
        kind, what = "not UTF-8", "invalid byte sequence"
    else:
        kind = "invalid JSON"
    return f"{kind}: {what} at column {exc.colno}"


def json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    return "a number"


def json_failure(line: bytes, exc: orjson.JSONDecodeError, fmt: str, source: str, position: int, record: int) -> Any:
    """What a line orjson refused becomes: None for a blank line (not a record), the object when only
    a leading byte-order mark was in the way, else a Reject saying why."""
    if not line.strip():
        return None
    if record == 1 and line.startswith(BOM):
        if not line[3:].strip():
            return None
        try:
            return orjson.loads(line[3:])
        except orjson.JSONDecodeError as again:
            exc = again
    return Reject(source, position, f"line {record}: {json_reason(exc)}", line, fmt, record)


def not_object(obj: Any, line: bytes, fmt: str, source: str, position: int, record: int) -> Reject:
    reason = f"line {record}: JSON value is {json_kind(obj)}, expected an object"
    return Reject(source, position, reason, line, fmt, record)


def json_lines(stream: BinaryIO, source: str, start: int, fmt: str) -> Iterator[tuple[dict, bytes, int, int] | Reject]:
    """(object, raw line, position, line number) for each JSON-object line after `start`, or a Reject.

    (Suricata inlines this loop: one generator less per line is measurable on its hot path.)
    """
    base = count_lines_before(stream, start)
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    for line, position, number in iter_lines(stream, start):
        record = base + number
        if line is None:
            yield too_long(fmt, source, position, record)
            continue
        try:
            obj = loads(line)
        except decode_error as exc:
            obj = json_failure(line, exc, fmt, source, position, record)
            if obj is None:
                continue
            if type(obj) is Reject:
                yield obj
                continue
        if type(obj) is not dict:
            yield not_object(obj, line, fmt, source, position, record)
            continue
        yield obj, line, position, record


def head_objects(head: bytes, limit: int = 5) -> list[dict]:
    """The JSON objects on the first complete lines of a sniffed head (a cut last line is skipped)."""
    if head.startswith(BOM):
        head = head[3:]
    out: list[dict] = []
    start = 0
    while start <= len(head):  # line by line: splitting the whole head cost a binary file thousands of pieces
        end = head.find(b"\n", start)
        if end < 0:
            if start:
                break  # the head may end mid-line
            end = len(head)
        line = head[start:end]
        start = end + 1
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            break
        if not isinstance(obj, dict):
            break
        out.append(obj)
        if len(out) >= limit:
            break
    return out


def decode(line: bytes) -> str | None:
    try:
        return line.decode()
    except UnicodeDecodeError:
        return None


def utf8_reason(line: bytes) -> str:
    try:
        line.decode()
    except UnicodeDecodeError as exc:
        return f"not UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
    return "not UTF-8"


def split_csv(text: str) -> list[str]:
    # quotes are rare in these data sets: plain split unless the row needs the csv module
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]))


def header_cells(text: str) -> list[str] | None:
    """The header row's names, stripped; None when the csv module cannot split it (a carriage return inside a
    row that has quotes): its caller rejects the header and the rows after it, as for an undecodable one."""
    try:
        return [n.strip() for n in split_csv(text)]
    except csv.Error:
        return None


def read_header(stream: BinaryIO) -> tuple[str | None, bytes, int, int]:
    """The first non-blank line of the stream as (text or None when undecodable, raw, end position, line number)."""
    stream.seek(0)
    for line, position, number in iter_lines(stream, 0):
        if line is None:
            return None, b"", position, number
        if number == 1 and line.startswith(BOM):
            line = line[3:]
        if line.strip():
            return decode(line), line, position, number
    return None, b"", 0, 0


def csv_rows(
    stream: BinaryIO, source: str, start: int, fmt: str, width: int | None
) -> Iterator[tuple[list[str], bytes, int, int] | Reject]:
    """(cells, raw line, position, line number) for each comma-separated row after `start`, or a Reject.

    With `width`, a row with another number of cells is rejected. The caller reads any header line
    itself (see `read_header`) and passes `start` at or past it.
    """
    base = count_lines_before(stream, start)
    for line, position, number in iter_lines(stream, start):
        record = base + number
        if line is None:
            yield too_long(fmt, source, position, record)
            continue
        if record == 1 and line.startswith(BOM):
            line = line[3:]
        if not line.strip():
            continue  # blank line (ASCII white space only, as everywhere here): not a record
        try:
            text = line.decode()
        except UnicodeDecodeError:
            yield Reject(source, position, f"line {record}: {utf8_reason(line)}", line, fmt, record)
            continue
        try:
            cells = split_csv(text)
        except csv.Error as exc:
            yield Reject(source, position, f"line {record}: malformed CSV: {exc}", line, fmt, record)
            continue
        if width is not None and len(cells) != width:
            yield Reject(source, position, f"line {record}: {len(cells)} columns, expected {width}", line, fmt, record)
            continue
        yield cells, line, position, record


def header_failure(
    stream: BinaryIO, source: str, start: int, fmt: str, raw: bytes, header_end: int, header_line: int,
    decoded: bool = False,
) -> Iterator[Reject]:
    """When the header row cannot be read (`decoded`: it is text, but not CSV), it and every row after it are
    rejected (none is dropped)."""
    if not header_end:
        return  # empty input: nothing to read, nothing to reject
    if decoded:
        why = f"line {header_line}: header row is not CSV (a carriage return inside a quoted row)"
    elif raw:
        why = f"line {header_line}: header row is not UTF-8 text"
    else:
        why = f"line {header_line}: header row too long"
    if start < header_end:
        yield Reject(source, header_end, why, raw, fmt, header_line)
    for item in csv_rows(stream, source, max(start, header_end), fmt, None):
        if type(item) is tuple:
            _, line, position, record = item
            yield Reject(source, position, f"line {record}: no usable header ({why})", line, fmt, record)
        else:
            yield item


def number(text: str) -> int | float | str:
    """A CSV cell as int or float when it is one, else the stripped text."""
    value = text.strip()
    if "_" in value or value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return value  # Python would read 1_000 and nan as numbers; the data meant text
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value
