"""Reading line-oriented input with resumable positions, shared by the text and JSON-lines formats."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from healthswarm.ingest.limits import Limits, current

# The default longest line ([ingest] max_record_bytes); a longer one is rejected whole rather than held
# in memory without bound.
MAX_LINE_BYTES = Limits().max_record_bytes
_CHUNK = 1024 * 1024
_NEWLINES = re.compile(b"\n+")


def max_line_bytes() -> int:
    """The longest line or record held now (`[ingest] max_record_bytes`)."""
    return current().max_record_bytes


def iter_lines(stream: BinaryIO, start: int = 0) -> Iterator[tuple[bytes | None, int, int]]:
    """Yield (line, end_position, line_number) for every line after byte offset `start`.

    `line` is without its line ending, or None when the line exceeded `max_line_bytes()` (the caller
    rejects it; reading goes on at the next line). `end_position` is the offset just past the
    line's ending: the checkpoint after it. Line numbers are 1-based and, when resuming, counted
    from `start` on (the number of lines before it is not known without reading them).
    A final line without a newline is yielded too. Empty lines are counted but not yielded (no format
    has a record in one): a run of them is passed over at C speed, so a file of newlines (a
    decompression bomb's favourite) costs a scan, not a Python loop per line.

    Time is linear in the input whatever the reads' sizes and the lines' lengths: the pieces of a
    line that spans reads are kept in a list and joined once, and an oversized line's bytes are
    dropped as they come (a 2 GiB line costs a scan, not a copy per read).
    """
    limit = max_line_bytes()
    if start:
        stream.seek(start)
    offset, number = start, 0  # offset: of the first byte of `chunk` in the stream
    parts: list[bytes] = []  # the current line's pieces from earlier reads
    held = 0
    oversized = False
    while chunk := stream.read(_CHUNK):
        begin = 0
        while (newline := chunk.find(b"\n", begin)) >= 0:
            if newline == begin and not parts and not oversized:
                run = _NEWLINES.match(chunk, begin).end()  # type: ignore[union-attr]
                number += run - begin
                begin = run
                continue
            number += 1
            position = offset + newline + 1
            if oversized or held + newline - begin > limit:
                oversized = False
                yield None, position, number
            elif parts:
                parts.append(chunk[begin:newline])
                yield b"".join(parts).rstrip(b"\r"), position, number
            else:
                yield chunk[begin:newline].rstrip(b"\r"), position, number
            if parts:
                parts, held = [], 0
            begin = newline + 1
        offset += len(chunk)
        if begin < len(chunk) and not oversized:
            held += len(chunk) - begin
            if held > limit:
                parts, held, oversized = [], 0, True  # stop holding the bytes of this runaway line
            else:
                parts.append(chunk[begin:] if begin else chunk)
    if oversized or parts:
        number += 1
        yield (None if oversized else b"".join(parts).rstrip(b"\r")), offset, number
