"""Reading line-oriented input with resumable positions, shared by the text and JSON-lines formats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

# A single line longer than this is rejected whole rather than held in memory without bound.
MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


def iter_lines(stream: BinaryIO, start: int = 0) -> Iterator[tuple[bytes | None, int, int]]:
    """Yield (line, end_position, line_number) for every line after byte offset `start`.

    `line` is without its line ending, or None when the line exceeded MAX_LINE_BYTES (the caller
    rejects it; reading goes on at the next line). `end_position` is the offset just past the
    line's ending: the checkpoint after it. Line numbers are 1-based and, when resuming, counted
    from `start` on (the number of lines before it is not known without reading them).
    A final line without a newline is yielded too.
    """
    if start:
        stream.seek(start)
    position, number = start, 0
    pending = b""
    oversized = False
    while chunk := stream.read(_CHUNK):
        pending += chunk
        begin = 0
        while (newline := pending.find(b"\n", begin)) >= 0:
            line = pending[begin:newline]
            position += newline + 1 - begin
            number += 1
            if oversized:
                oversized = False
                yield None, position, number
            else:
                yield line.rstrip(b"\r"), position, number
            begin = newline + 1
        pending = pending[begin:]
        if len(pending) > MAX_LINE_BYTES:
            # keep counting the position but stop holding the bytes of this runaway line
            position += len(pending)
            pending = b""
            oversized = True
    if oversized or pending:
        number += 1
        position += len(pending)
        yield (None if oversized else pending.rstrip(b"\r")), position, number
