"""Files, directories, globs, compressed files and stdin, read through a format into the pipeline.

Identity: a file is its resolved path plus a hash of its first bytes (up to 1 KiB, the count kept in
the identity so a file that was smaller when first seen is re-hashed over the same span). A rotated
file with new content is therefore a new source; a checkpoint resumes only the content it was made
for. A file shorter than its checkpoint was truncated: it starts again as a new generation.

Every input goes through the container layer (`ingest/containers.py`): compressed files (gzip,
bzip2, xz; recognised by their magic bytes, not their names) are read through the decompressor, and
positions are offsets in the decompressed text. Resuming one seeks to its checkpoint, which the
decompressor does by decompressing and discarding what comes before: a re-read of CPU time, never a
re-store, and no special case in the formats or the checkpoints. Archives (zip, tar, tar.gz, nested)
are read member by member, each with its own sniffed format; positions are item ordinals there.
What one input may cost is bounded by `[ingest]` (decompression bombs are quarantined).
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from healthswarm.errors import InputError, Location, Problem
from healthswarm.ingest import containers
from healthswarm.ingest.formats import SNIFF_BYTES, Format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.store.events import Checkpoint, get_checkpoint

IDENTITY_BYTES = 1024


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


def plain_name(path: Path) -> str:
    """The name a format sniffs: without the compression suffix (`conn.log.gz` → `conn.log`)."""
    return containers.plain_name(path.name)


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
    container: str = "plain"  # plain, gzip, zip, tar, tar.gzip, …
    stopped: str = ""  # why reading stopped before the end (a bound of [ingest] was reached)


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
        kind = containers.kind(head)
        with pipeline.store.read() as conn:
            cp = get_checkpoint(conn, name)
        identity, start = resume_point(name, head, size, kind is not None, cp)
        if kind is None and start >= size:
            if progress:
                progress(size)
            return FileResult(path, fmt.name if fmt else "", start, None, "unchanged since their checkpoint")
        raw.seek(0)
        opened = containers.Opened(raw, name, fmt, name=path.name, limits=pipeline.limits)  # type: ignore[arg-type]
        if not opened.recognised:
            pipeline.quarantine_unrecognised(name, identity, opened.head[:SNIFF_BYTES])
            if progress:
                progress(size)
            return FileResult(path, "", 0, None, "no format recognised", opened.kind)
        report = (lambda _pos: progress(raw.tell())) if progress else None
        last = pipeline.run(opened.records(start), source=name, identity=identity, on_commit=report)
        if progress:
            progress(size)
        return FileResult(path, _formats(opened), start, last, container=opened.kind, stopped=opened.stopped)


def _formats(opened: containers.Opened) -> str:
    if opened.format is not None:
        return opened.format.name
    return ",".join(sorted(opened.formats))


def ingest_stdin(pipeline: Pipeline, fmt: Format | None = None, stream: BinaryIO | None = None) -> FileResult:
    """Read standard input to its end. It cannot resume, but its events are keyed by a hash of its
    first bytes and their position: piping the same content again stores nothing twice."""
    stream = stream if stream is not None else sys.stdin.buffer
    head = stream.read(SNIFF_BYTES)
    name = "stdin"
    identity = new_identity(name, head)
    if not head:
        return FileResult(Path("-"), "", 0, None, "empty")
    whole = io.BufferedReader(containers.Prefixed(head, stream), buffer_size=1 << 20)
    opened = containers.Opened(whole, name, fmt, name="", limits=pipeline.limits)  # type: ignore[arg-type]
    if not opened.recognised:
        pipeline.quarantine_unrecognised(name, identity, opened.head[:SNIFF_BYTES])
        return FileResult(Path("-"), "", 0, None, "no format recognised", opened.kind)
    last = pipeline.run(opened.records(0), source=name, identity=identity, checkpoint=False)
    return FileResult(Path("-"), _formats(opened), 0, last, container=opened.kind, stopped=opened.stopped)


def sizes(paths: list[Path]) -> Iterator[int]:
    for p in paths:
        try:
            yield p.stat().st_size
        except OSError:
            yield 0
