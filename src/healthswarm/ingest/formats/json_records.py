"""Splitting a byte stream of JSON into records: JSON lines, concatenated pretty-printed objects, arrays.

Used by the Windows JSON, FHIR and DICOM-audit formats. It works line by line on top of `iter_lines`
(so positions stay resumable byte offsets): a line holding a whole object is decoded at once (the
fast path for JSON lines); otherwise lines are gathered until the braces balance, counted outside
strings. A JSON string cannot span lines, so the string state restarts on every line: a broken
record cannot swallow the rest of the file. A `{` in column 0 while a record is still open starts a
new record and the open one is reported as truncated (pretty printers indent nested objects).

Also accepted: a top-level array of objects (one line or pretty-printed), and evtx_dump's
`Record N` separator lines between objects, which carry no data (the record id is in the object).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from healthswarm.ingest.formats.lines import iter_lines, max_line_bytes
from healthswarm.model.words import counted

_TOKENS = re.compile(rb'\\.|["{}\[\]]')
_RECORD_SEPARATOR = re.compile(rb"^Record \d+$")


@dataclass(slots=True)
class JsonItem:
    """One record: `value` when it decoded, else `error` says why; `raw` is its text."""

    value: Any
    raw: bytes
    position: int
    line: int
    error: str = ""


def _scan(text: bytes) -> tuple[int, bool]:
    """(bracket depth change, whether the line ends inside a string) of one line."""
    depth, in_string = 0, False
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[:1] == b"\\":
            continue
        if token == b'"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if token in (b"{", b"[") else -1
    return depth, in_string


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _binary(line: bytes) -> bool:
    """A line no JSON text holds: control bytes or bytes that are not UTF-8."""
    if _CONTROL.search(line):
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _decode(text: bytes, position: int, line: int) -> JsonItem:
    try:
        return JsonItem(orjson.loads(text), text, position, line)
    except orjson.JSONDecodeError as exc:
        return JsonItem(None, text, position, line, f"invalid JSON: {exc}")


class _Splitter:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer: list[bytes] = []
        self.size = 0
        self.depth = 0
        self.first_line = 0
        self.last_position = 0
        self.in_array = False
        self.oversized = False

    def feed(self, line: bytes | None, position: int, number: int) -> Iterator[JsonItem]:
        if line is None:
            if self.buffer or self.oversized:
                yield self._truncated()
            yield JsonItem(
                None, b"", position, number, f"line longer than {max_line_bytes()} bytes: expected a JSON record"
            )
        elif self.buffer or self.oversized:
            if line[:1] in (b"{", b"[") or _binary(line):
                # a new record or array in column 0 (pretty printers indent what is nested), or bytes no
                # JSON holds: the open record ends here, cut
                yield self._truncated()
                yield from self._start(line, position, number)
            else:
                yield from self._continue(line, position)
        else:
            yield from self._start(line, position, number)
        self.last_position = position

    def finish(self) -> Iterator[JsonItem]:
        if self.buffer or self.oversized:
            yield self._truncated()

    def _truncated(self) -> JsonItem:
        raw = b"\n".join(self.buffer)
        item = JsonItem(
            None,
            raw[: self.max_bytes],
            self.last_position,
            self.first_line,
            f"truncated JSON: the object that began at line {self.first_line} is not closed "
            f"(expected {counted(self.depth, 'more closing bracket')})",
        )
        self._reset()
        return item

    def _reset(self) -> None:
        self.buffer, self.size, self.depth, self.oversized = [], 0, 0, False

    def _start(self, line: bytes, position: int, number: int) -> Iterator[JsonItem]:
        text = line.strip()
        if not text or _RECORD_SEPARATOR.match(text):
            return
        if text[:1] == b"[" and not self.in_array:
            value = _decode(text, position, number)
            if not value.error and isinstance(value.value, list) and not any(
                isinstance(element, dict) for element in value.value
            ):
                # `[1,2,3]`: no record in it, one bad record (the line) that the format rejects as a
                # list, not one per element
                yield value
                return
            if not value.error and isinstance(value.value, list):
                # one line, many records: distinct positions (the line's last bytes) keep idempotency keys
                # apart; a checkpoint inside the line makes iter_json_from re-read from the top
                count = len(value.value)
                for index, element in enumerate(value.value):
                    yield JsonItem(element, orjson.dumps(element), position - (count - 1 - index), number)
                return
            self.in_array = True
            text = text[1:].strip()
            if not text:
                return
        if text[:1] in (b"]", b","):
            # closing an array / separating its elements: not data (also after a resume mid-array)
            self.in_array = self.in_array and text[:1] == b","
            text = text[1:].strip().lstrip(b",").strip()
            if not text:
                return
        if text.endswith(b","):
            text = text[:-1]
        if text[:1] != b"{":
            value = _decode(text, position, number)
            if value.error:
                value.error = f"expected a JSON object, found {text[:40]!r}"
            yield value  # a scalar or array inside an array: the caller rejects non-objects
            return
        if text.endswith(b"}"):
            value = _decode(text, position, number)
            if not value.error:
                yield value
                return
        depth, open_string = _scan(text)
        if depth <= 0:
            yield _decode(text, position, number)
            return
        if open_string or _binary(text):
            # a JSON string cannot span lines: this record is cut here, and the next line is another
            yield JsonItem(None, text, position, number,
                           f"truncated JSON: line {number} ends inside a string (expected "
                           f"{counted(depth, 'more closing bracket')})")
            return
        self.buffer, self.size, self.depth, self.first_line = [text], len(text), depth, number

    def _continue(self, line: bytes, position: int) -> Iterator[JsonItem]:
        change, open_string = _scan(line)
        self.depth += change
        if open_string and not self.oversized and self.depth > 0:
            self.buffer.append(line)
            yield self._truncated()  # cut inside a string: what was gathered is one broken record
            return
        if not self.oversized:
            self.buffer.append(line)
            self.size += len(line) + 1
            if self.size > self.max_bytes:
                self.oversized = True  # stop holding it; report once the braces close
        if self.depth > 0:
            return
        if self.oversized:
            item = JsonItem(
                None,
                b"\n".join(self.buffer)[:4096],
                position,
                self.first_line,
                f"JSON record longer than {self.max_bytes} bytes (began at line {self.first_line})",
            )
            self._reset()
            yield item
            return
        text = b"\n".join(self.buffer).strip()
        first = self.first_line
        closing_array = self.depth < 0 and self.in_array
        self._reset()
        if closing_array and text.endswith(b"]"):
            text = text[:-1].rstrip()
            self.in_array = False
        yield _decode(text[:-1] if text.endswith(b",") else text, position, first)


def iter_json_items(
    lines: Iterable[tuple[bytes | None, int, int]], max_bytes: int | None = None
) -> Iterator[JsonItem]:
    """JSON records from `iter_lines`-style (line, end_position, line_number) triples; a record longer
    than `max_bytes` (default `[ingest] max_record_bytes`) is rejected."""
    splitter = _Splitter(max_bytes or max_line_bytes())
    for line, position, number in lines:
        yield from splitter.feed(line, position, number)
    yield from splitter.finish()


def iter_json_from(stream: BinaryIO, start: int = 0) -> Iterator[JsonItem]:
    """JSON records of `stream` whose position is greater than `start`.

    A checkpoint normally falls on a record boundary (a line end followed by a new record), and reading
    seeks there. Positions inside a record exist too (the entries of a FHIR Bundle, the elements of a
    one-line array); for those the stream is read from the top and earlier records are skipped.
    """
    begin = start
    if start and stream.seekable():
        stream.seek(start - 1)
        around = stream.read(2)
        if around[:1] != b"\n" or around[1:2] not in (b"", b"{", b"[", b"\n", b"\r", b"R"):
            begin = 0
        stream.seek(begin)
    for item in iter_json_items(iter_lines(stream, begin)):
        if item.position > start:
            yield item
