"""`--follow`: tail a file as it grows, across rotation and truncation, with a bounded poll.

Each pass reads only complete lines (up to the last newline written so far), so a line the writer has
half-written is never parsed as a broken record; following is therefore for line-oriented logs.
The checkpoint is committed per pass like any file read, so a restarted follower resumes.

- growth: the next pass reads from the checkpoint;
- rotation (the path now names another inode, or is gone): the old file is read to its very end
  through the descriptor still open on it, then the new file is opened from its start;
- truncation (the file is shorter than what was read): it starts again as a new generation.
The poll interval doubles while nothing happens, from `poll` up to `max_poll` seconds.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from healthswarm.ingest.formats import SNIFF_BYTES, Format
from healthswarm.ingest.pipeline import Pipeline, detect
from healthswarm.ingest.sources.file import IDENTITY_BYTES, plain_name, resume_point, source_name
from healthswarm.store.events import get_checkpoint

_BACKSCAN = 64 * 1024


class _Window(io.RawIOBase):
    """The bytes of an open file up to `limit`, as a seekable stream (what a pass may parse), with the memo of what
    the passes before learnt about the file's earlier bytes (formats/rows.py `prefix_memo`)."""

    def __init__(self, fd: int, limit: int, prefix_memo: dict[str, Any]) -> None:
        self._fd = fd
        self._limit = limit
        self._pos = 0
        self.prefix_memo = prefix_memo

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._limit}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._limit - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        memoryview(buffer)[: len(data)] = data
        self._pos += len(data)
        return len(data)


def complete_lines_end(fd: int, start: int, size: int) -> int:
    """Offset just past the last newline in [start, size); `start` when there is none yet."""
    end = size
    while end > start:
        begin = max(start, end - _BACKSCAN)
        chunk = os.pread(fd, end - begin, begin)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return begin + i + 1
        end = begin
    return start


@dataclass
class _Open:
    fd: int
    inode: tuple[int, int]
    name: str
    identity: str
    position: int
    fmt: Format
    prefix_memo: dict[str, Any] = field(default_factory=dict)  # this file's, across passes (see _Window)


class Follower:
    def __init__(self, pipeline: Pipeline, path: Path, fmt: Format | None = None,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.pipeline = pipeline
        self.path = path
        self.fixed_format = fmt
        self.on_progress = on_progress
        self.current: _Open | None = None
        self.unrecognised = False  # the current file was quarantined whole; wait for a rotation

    def _open(self) -> _Open | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        st = os.fstat(fd)
        head = os.pread(fd, max(IDENTITY_BYTES, SNIFF_BYTES), 0)
        if not head:
            os.close(fd)
            return None
        name = source_name(self.path)
        with self.pipeline.store.read() as conn:
            cp = get_checkpoint(conn, name)
        identity, start = resume_point(name, head[:IDENTITY_BYTES], st.st_size, False, cp)
        fmt = self.fixed_format or detect(head, plain_name(self.path))
        if fmt is None:
            if len(head) < SNIFF_BYTES:
                os.close(fd)
                return None  # too little to tell yet; look again when it has grown
            self.pipeline.quarantine_unrecognised(name, identity, head[:SNIFF_BYTES])
            self.unrecognised = True
        return _Open(fd, (st.st_dev, st.st_ino), name, identity, start, fmt)  # type: ignore[arg-type]

    def _read(self, current: _Open, to_end: bool) -> bool:
        """One pass over what is new; True when something was read."""
        size = os.fstat(current.fd).st_size
        end = size if to_end else complete_lines_end(current.fd, current.position, size)
        if end <= current.position or self.unrecognised:
            return False
        window = _Window(current.fd, end, current.prefix_memo)
        stream: BinaryIO = io.BufferedReader(window, buffer_size=1 << 20)  # type: ignore[assignment]
        last = self.pipeline.run(current.fmt.parse(stream, current.name, current.position),
                                 source=current.name, identity=current.identity)
        current.position = end if last is None else max(last, current.position)
        if self.on_progress:
            self.on_progress(end)
        return True

    def _close(self) -> None:
        if self.current is not None:
            os.close(self.current.fd)
            self.current = None
            self.unrecognised = False

    def step(self) -> bool:
        """Look once: open, read growth, handle rotation or truncation. True when work was done."""
        if self.current is None:
            self.current = self._open()
            return self.current is not None and self._read(self.current, to_end=False)
        current = self.current
        try:
            st = os.stat(self.path)
            rotated = (st.st_dev, st.st_ino) != current.inode
        except FileNotFoundError:
            rotated = True
        if rotated:
            self._read(current, to_end=True)  # the writer has moved on: its last line is complete
            self._close()
            return True
        if os.fstat(current.fd).st_size < current.position:
            # truncated: resume_point sees the checkpoint past the end and starts a new generation
            self._close()
            self.current = self._open()
            return True
        return self._read(current, to_end=False)

    def run(self, should_stop: Callable[[], bool], wait: Callable[[float], object],
            poll: float = 0.2, max_poll: float = 2.0) -> None:
        interval = poll
        try:
            while not should_stop():
                if self.step():
                    interval = poll
                    continue
                wait(interval)
                interval = min(interval * 2, max_poll)
        finally:
            self._close()
