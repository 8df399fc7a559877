"""Files, directories, globs, compressed files and stdin, read through a format into the pipeline.

Identity: a file is its resolved path plus a hash of its first bytes (up to 1 KiB, the count kept in
the identity so a file that was smaller when first seen is re-hashed over the same span). A rotated
file with new content is therefore a new source; a checkpoint resumes only the content it was made
for. A file shorter than its checkpoint was truncated: it starts again as a new generation.

Compressed files (gzip, bzip2, xz; recognised by their magic bytes, not their names) are read
through the decompressor, and positions are offsets in the decompressed text. Resuming one seeks to
its checkpoint, which the decompressor does by decompressing and discarding what comes before:
a re-read of CPU time, never a re-store, and no special case in the formats or the checkpoints.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import hashlib
import io
import lzma
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from healthswarm.errors import InputError, Location, Problem
from healthswarm.ingest.formats import SNIFF_BYTES, Format
from healthswarm.ingest.pipeline import Pipeline, detect
from healthswarm.store.events import Checkpoint, get_checkpoint

IDENTITY_BYTES = 1024
_MAGIC: tuple[tuple[bytes, str], ...] = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz")


def expand(paths: list[str]) -> list[Path]:
    """Files named, found under directories (recursively) or matched by globs (`**` recursive), sorted
    and without repeats; every path that names nothing is reported at once."""
    out: list[Path] = []
    problems: list[Problem] = []
    for text in paths:
        path = Path(text)
        if glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                problems.append(Problem(Location(text), "no file matches this pattern"))
            out.extend(files)
        elif path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            out.append(path)
        else:
            problems.append(Problem(Location(text), "no such file or directory"))
    if problems:
        raise InputError(problems)
    seen: set[Path] = set()
    unique = []
    for p in out:
        resolved = p.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(p)
    return unique


def compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def decompressed(raw: BinaryIO, kind: str | None) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    return raw


def plain_name(path: Path) -> str:
    """The name a format sniffs: without the compression suffix (`conn.log.gz` → `conn.log`)."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def source_name(path: Path) -> str:
    return str(path.resolve())


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def new_identity(name: str, head: bytes) -> str:
    span = head[:IDENTITY_BYTES]
    return f"{name}#{len(span)}:{_digest(span)}"


def same_content(identity: str, head: bytes) -> bool:
    """Whether a file starting with `head` is the content `identity` was made for."""
    try:
        span_text, digest = identity.rsplit("#", 1)[1].split(":", 1)
        span = int(span_text)
    except (IndexError, ValueError):
        return False
    digest = digest.split("@", 1)[0]
    return len(head) >= span and _digest(head[:span]) == digest


def resume_point(name: str, head: bytes, size: int, compressed: bool, cp: Checkpoint | None) -> tuple[str, int]:
    """(identity, start position) for a file whose first bytes are `head` and raw size `size`."""
    if cp is None or not same_content(cp.identity, head):
        return new_identity(name, head), 0
    if not compressed and cp.position > size:
        # truncated and rewritten with the same first bytes: a new generation, not the old content
        return f"{new_identity(name, head)}@{os.urandom(6).hex()}", 0
    return cp.identity, cp.position


@dataclass
class FileResult:
    path: Path
    format: str
    start: int
    position: int | None  # last committed position; None when nothing new was read
    skipped: str = ""  # why nothing was read (empty, unchanged, no format recognised)


def ingest_file(
    pipeline: Pipeline,
    path: Path,
    fmt: Format | None = None,
    progress: Callable[[int], None] | None = None,
) -> FileResult:
    """Read one file from its checkpoint to its end. `progress` gets raw bytes consumed so far."""
    name = source_name(path)
    with path.open("rb") as raw:
        head = raw.read(IDENTITY_BYTES)
        size = os.fstat(raw.fileno()).st_size
        if not head:
            return FileResult(path, "", 0, None, "empty")
        kind = compression(head)
        with pipeline.store.read() as conn:
            cp = get_checkpoint(conn, name)
        identity, start = resume_point(name, head, size, kind is not None, cp)
        if kind is None and start >= size:
            if progress:
                progress(size)
            return FileResult(path, fmt.name if fmt else "", start, None, "unchanged since their checkpoint")
        raw.seek(0)
        stream = decompressed(raw, kind)
        if fmt is None:
            sniffed = stream.read(SNIFF_BYTES)
            stream.seek(0)
            fmt = detect(sniffed, plain_name(path))
            if fmt is None:
                pipeline.quarantine_unrecognised(name, identity, sniffed)
                if progress:
                    progress(size)
                return FileResult(path, "", 0, None, "no format recognised")
        report = (lambda _pos: progress(raw.tell())) if progress else None
        last = pipeline.run(fmt.parse(stream, name, start), source=name, identity=identity, on_commit=report)
        if progress:
            progress(size)
        return FileResult(path, fmt.name, start, last)


class _Prefixed(io.RawIOBase):
    """A non-seekable stream that replays `head` before the rest (stdin after sniffing)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def ingest_stdin(pipeline: Pipeline, fmt: Format | None = None, stream: BinaryIO | None = None) -> FileResult:
    """Read standard input to its end. It cannot resume, but its events are keyed by a hash of its
    first bytes and their position: piping the same content again stores nothing twice."""
    stream = stream if stream is not None else sys.stdin.buffer
    head = stream.read(SNIFF_BYTES)
    name = "stdin"
    identity = new_identity(name, head)
    if not head:
        return FileResult(Path("-"), "", 0, None, "empty")
    if fmt is None:
        fmt = detect(head, "")
        if fmt is None:
            pipeline.quarantine_unrecognised(name, identity, head)
            return FileResult(Path("-"), "", 0, None, "no format recognised")
    whole = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 20)
    last = pipeline.run(fmt.parse(whole, name, 0), source=name, identity=identity, checkpoint=False)  # type: ignore[arg-type]
    return FileResult(Path("-"), fmt.name, 0, last)


def sizes(paths: list[Path]) -> Iterator[int]:
    for p in paths:
        try:
            yield p.stat().st_size
        except OSError:
            yield 0
