"""Compressed files and archives, opened in one place for every format.

Users hand over what they have: a log as written, gzip / bzip2 / xz files (several members or
streams concatenated, trailing bytes after the last one ignored as gzip(1) does), zip archives and
tar archives — plain, .tar.gz/.tgz, .tar.bz2, .tar.xz — and these nested in the obvious ways (a
zip of .json.gz files, a tar.gz in a zip, a zip in a zip). Containers are recognised by their magic
bytes, never by their names; members are streamed (nothing is extracted to disk) and each member's
format is sniffed on its own first bytes and its name (or the format the user forced is used).
macOS archivers' `__MACOSX/` and `._name` members and `.DS_Store` (Finder metadata) are skipped.

Where an event came from, for people: `source` is `archive!member` (`a.zip!inner.tar.gz!x.json` when
nested) and `record` the line or record number inside the member, so `source:record` reads
`archive!member:line`. For resuming: in an archive `position` is the ordinal of the item (event or
reject) across all members, so a checkpoint skips exactly what was stored; in a single compressed
stream (a .json.gz) positions are the format's own, offsets in the decompressed text.

What an input may cost is bounded (`limits.py`): every decompressor charges what it produces against
the bytes read from the outermost stream; over the total or the ratio the input stops with one
quarantined reject saying why. A member or stream that stops being readable (truncated, corrupt,
encrypted) becomes one reject and reading goes on where it can (the next zip member).
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from healthswarm.ingest.formats import SNIFF_BYTES, Format, detect_format, format_names, get_format
from healthswarm.ingest.limits import Budget, LimitExceeded, Limits
from healthswarm.model import Event, Reject

GZIP, BZIP2, XZ, ZIP, TAR, DEFLATE = "gzip", "bzip2", "xz", "zip", "tar", "deflate"
COMPRESSIONS: dict[str, bytes] = {GZIP: b"\x1f\x8b", BZIP2: b"BZh", XZ: b"\xfd7zXZ\x00"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
SUFFIXES = (".gz", ".gzip", ".tgz", ".bz2", ".tbz2", ".xz", ".txz")
MAX_DEPTH = 4  # containers inside containers; deeper is refused (a zip quine nests without end)
# compressed bytes a decompressor reads at a time: small, so the ratio (bytes produced over bytes read)
# is measured closely and a bomb is caught within the grace span (zlib's speed does not depend on it)
_RAW_READ = 16 * 1024
_BUFFER = 1 << 20
_SKIPPED_NAMES = (".DS_Store", "Thumbs.db")


# -- recognising ------------------------------------------------------------------------------------


def kind(head: bytes) -> str | None:
    """The container `head` (an input's first bytes, at least 512 for tar) starts, or None."""
    for name, magic in COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    if head.startswith(_ZIP_MAGIC):
        return ZIP
    if is_tar(head):
        return TAR
    return None


def compression(head: bytes) -> str | None:
    """gzip, bzip2 or xz when `head` starts such a stream."""
    found = kind(head[:8])
    return found if found in COMPRESSIONS else None


def is_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")  # a valid header checksum
        return True
    except (tarfile.TarError, ValueError, UnicodeError):
        return False


def plain_name(name: str) -> str:
    """The name a format sniffs: without a compression suffix (`conn.log.gz` → `conn.log`)."""
    lower = name.lower()
    for suffix, replacement in ((".tgz", ".tar"), (".tbz2", ".tar"), (".txz", ".tar")):
        if lower.endswith(suffix):
            return name[: -len(suffix)] + replacement
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def skipped_member(name: str) -> bool:
    """Finder metadata and thumbnails: no records in them."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name or base.startswith("._") or base in _SKIPPED_NAMES


def available_formats() -> list[Format]:
    """Every format whose module can be imported."""
    out = []
    for name in format_names():
        try:
            out.append(get_format(name))
        except ModuleNotFoundError:
            continue
    return out


def detect(head: bytes, filename: str = "") -> Format | None:
    """The format most confident that `head` is its own (`formats.detect_format`, over the formats
    that can be imported)."""
    try:
        return detect_format(head, filename)
    except ModuleNotFoundError:
        pass
    best, best_score = None, 0.5
    for fmt in available_formats():
        score = fmt.sniff(head[:SNIFF_BYTES], filename)
        if score > best_score:
            best, best_score = fmt, score
    return best


def unrecognised_reason() -> str:
    return f"no format recognised (tried {', '.join(f.name for f in available_formats())})"


# -- streams ----------------------------------------------------------------------------------------


class Decompressed(io.RawIOBase):
    """A gzip, bzip2, xz or raw deflate (a zip member) stream decompressed as it is read.

    Members (gzip) and streams (bzip2, xz) written one after another are read one after another;
    bytes after the last that do not start another are ignored, as gzip(1) does ("trailing garbage
    ignored"; some OTRF archives end with a stray newline, which Python's GzipFile refuses). A stream
    that ends inside a member raises EOFError (truncated); with `crc`, a mismatch at the end raises.
    The budget is charged with every compressed byte fed to the decompressor and every byte it
    produces, once each (seeking back re-reads without charging again): their ratio is what a bomb
    gives away, measured as it inflates. Seekable when the compressed stream is: forward by reading,
    backwards by starting again.
    """

    def __init__(self, raw: BinaryIO, compression: str, budget: Budget, crc: int | None = None) -> None:
        self._raw = raw
        self._kind = compression
        self._magic = COMPRESSIONS.get(compression, b"")
        self._budget = budget
        self._crc_expected = crc
        self._origin = raw.tell() if _seekable(raw) else None
        self._high = 0  # bytes produced and charged so far
        self._fed_high = 0  # compressed bytes fed and charged so far
        self._start()

    def _new(self) -> Any:
        if self._kind == GZIP:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == DEFLATE:
            return zlib.decompressobj(-zlib.MAX_WBITS)
        if self._kind == BZIP2:
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def _start(self) -> None:
        self._decompressor = self._new()
        self._pending = b""
        self._offset = 0  # in _pending
        self._done = False
        self._position = 0
        self._fed = 0
        self._crc = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._origin is not None

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a decompressed stream seeks from its start or its position only")
        if offset < self._position:
            if self._origin is None:
                raise io.UnsupportedOperation("cannot seek back in a decompressed pipe")
            self._raw.seek(self._origin)
            self._start()
        while self._position < offset:
            if not self.read(min(_BUFFER, offset - self._position)):
                break
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        while self._offset >= len(self._pending) and not self._done:
            self._pending, self._offset = self._step(max(wanted, 64 * 1024)), 0
            if self._crc_expected is not None:
                self._crc = zlib.crc32(self._pending, self._crc)
        size = min(wanted, len(self._pending) - self._offset)
        buffer[:size] = self._pending[self._offset : self._offset + size]
        self._offset += size
        self._position += size
        if self._position > self._high:
            self._budget.charge(self._position - self._high)
            self._high = self._position
        return size

    def _feed(self) -> bytes:
        data = self._raw.read(_RAW_READ)
        self._fed += len(data)
        if self._fed > self._fed_high:
            self._budget.read += self._fed - self._fed_high
            self._fed_high = self._fed
        return data

    def _step(self, size: int) -> bytes:
        decompressor = self._decompressor
        if decompressor.eof:
            if self._kind == DEFLATE:
                self._done = True
                if self._crc_expected is not None and self._crc != self._crc_expected:
                    raise zipfile.BadZipFile(f"CRC-32 mismatch: {self._crc:08x}, expected {self._crc_expected:08x}")
                return b""
            rest = decompressor.unused_data
            if len(rest) < len(self._magic):
                rest += self._raw.read(len(self._magic) - len(rest))
            if not rest.startswith(self._magic):
                self._done = True  # the end, or trailing bytes that start no new member: ignored
                return b""
            self._decompressor = decompressor = self._new()
            return decompressor.decompress(rest, size)
        if self._kind in (GZIP, DEFLATE):
            data = decompressor.unconsumed_tail or self._feed()
        else:
            data = self._feed() if decompressor.needs_input else b""
        if not data and (self._kind in (GZIP, DEFLATE) or decompressor.needs_input):
            raise EOFError(f"{self._kind} stream ends before its end-of-stream marker (truncated)")
        return decompressor.decompress(data, size)


class _Slice(io.RawIOBase):
    """`size` bytes of `stream` from `offset` (a zip member's compressed data), seekable."""

    def __init__(self, stream: BinaryIO, offset: int, size: int) -> None:
        self._stream = stream
        self._offset = offset
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._position)
        if n <= 0:
            return 0
        self._stream.seek(self._offset + self._position)
        data = self._stream.read(n)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position


class _Metered(io.RawIOBase):
    """A zip member being inflated: charges what it produces (once, however often it is re-read)."""

    def __init__(self, member: BinaryIO, budget: Budget) -> None:
        self._member = member
        self._budget = budget
        self._high = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._member.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        position = self._member.tell()
        if position > self._high:
            self._budget.charge(position - self._high)
            self._high = position
        return n

    def seekable(self) -> bool:
        return _seekable(self._member)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._member.seek(offset, whence)

    def tell(self) -> int:
        return self._member.tell()


class _Salvage(io.RawIOBase):
    """What a format reads from a member or decompressed stream: reads of at most 64 KiB from the
    stream below, and when that fails (truncated, corrupt, a limit) the bytes read before the failure
    and then the end of the stream; the failure is kept in `error` for the container layer to report.
    So the records before a break are read, not lost with the read that failed."""

    _PIECE = 64 * 1024

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        view = memoryview(buffer)
        got = 0
        try:
            while got < len(view):
                data = self._stream.read(min(self._PIECE, len(view) - got))
                if not data:
                    break
                view[got : got + len(data)] = data
                got += len(data)
        except Exception as exc:  # kept, reported after the format has read what came before
            self.error = exc
        return got

    def seekable(self) -> bool:
        return _seekable(self._stream)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


class Prefixed(io.RawIOBase):
    """A stream that cannot seek, replaying `head` (already read to sniff it) before the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _random_access(stream: Any) -> bool:
    """Seekable to any offset, its end included (a decompressed stream seeks only by reading)."""
    return _seekable(stream) and not isinstance(getattr(stream, "raw", stream), Decompressed)


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        data = stream.read(size - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def peek(stream: BinaryIO, size: int = SNIFF_BYTES) -> tuple[bytes, BinaryIO]:
    """The first `size` bytes of `stream` and a stream that still starts with them."""
    if _seekable(stream):
        where = stream.tell()
        head = _read_up_to(stream, size)
        stream.seek(where)
        return head, stream
    head = _read_up_to(stream, size)
    return head, io.BufferedReader(Prefixed(head, stream), _BUFFER)  # type: ignore[return-value]


def _in_memory(stream: BinaryIO, budget: Budget) -> BinaryIO:
    """A zip needs random access (its directory is at its end): one read from a pipe is held in memory,
    within the input's budget."""
    buffer = io.BytesIO()
    limit = budget.limits.max_total_bytes
    while chunk := stream.read(_BUFFER):
        buffer.write(chunk)
        if buffer.tell() > limit:
            raise LimitExceeded(
                f"a zip archive read from a pipe or inside another archive is held in memory, and this one is "
                f"over {limit:,} bytes (limit: [ingest] max_total_bytes)"
            )
    buffer.seek(0)
    return buffer


# -- reading ----------------------------------------------------------------------------------------


class Opened:
    """One input, opened: what it is (`kind`: plain, a compression, or an archive), the format of its
    single stream (None for an archive unless forced, and when nothing recognised it), and `records()`."""

    def __init__(self, stream: BinaryIO, source: str, fmt: Format | None = None, *, name: str = "",
                 limits: Limits | None = None) -> None:
        self.source = source
        self.budget = Budget(limits)
        self.forced = fmt
        self.formats: set[str] = set()  # formats actually used (an archive's members may differ)
        self.stopped = ""  # the reason reading stopped early (a limit), empty otherwise
        head, stream = peek(stream)
        found = kind(head)
        if found is None:  # the common case: no wrapper at all
            self.kind, self._stream, self.head, self.name = "plain", stream, head, name
        else:
            counted: Any = stream
            self.kind = found
            try:
                kind_inside, self._stream, self.head, self.name = self._peel(counted, name, 0)  # type: ignore[arg-type]
            except LimitExceeded as exc:
                kind_inside, self._stream, self.head, self.name = "broken", counted, head, name
                self.stopped = exc.reason
            except Exception as exc:  # whatever the bytes, a reject, never a traceback
                kind_inside, self._stream, self.head, self.name = "broken", counted, head, name
                self.stopped = f"{found} stream unreadable: {_describe(exc)}"
            if kind_inside in (ZIP, TAR):
                self.kind = kind_inside if found in (ZIP, TAR) else f"{kind_inside}.{found}"
            elif kind_inside == "broken":
                self.kind = "broken"
        self.archive = self.kind not in ("plain", "broken") and self.kind.split(".")[0] in (ZIP, TAR)
        self.format = fmt
        if fmt is None and not self.archive and self.kind != "broken":
            self.format = detect(self.head, self.name)

    @property
    def recognised(self) -> bool:
        return self.archive or self.kind == "broken" or self.format is not None

    def records(self, start: int = 0) -> Iterator[Event | Reject]:
        """Events and rejects after position `start`."""
        if self.kind == "broken":
            if start < 1:
                yield Reject(self.source, 1, self.stopped, self.head[:4096], record=1)
            return
        if self.archive:
            counter = [0]
            yield from self._members(self.kind.split(".")[0], self._stream, self.source, 1, counter, start)
            return
        fmt = self.format
        if fmt is None:
            if start < 1:
                yield Reject(self.source, 1, unrecognised_reason(), self.head[:4096], record=1)
            return
        self.formats.add(fmt.name)
        last = start
        stream = self._stream
        leaf = _Salvage(stream) if self.kind != "plain" else None
        try:
            for item in fmt.parse(leaf or stream, self.source, start):  # type: ignore[arg-type]
                last = item.position
                yield item
            if leaf is not None and leaf.error is not None:
                raise leaf.error
        except LimitExceeded as exc:
            self.stopped = exc.reason
            yield Reject(self.source, last + 1, exc.reason, b"", fmt.name)
        except Exception as exc:  # a stream that stops being readable is a reject
            what = f"{self.kind} stream" if self.kind != "plain" else "input"
            yield Reject(self.source, last + 1, f"{what} truncated or corrupt: {_describe(exc)}", b"", fmt.name)

    # -- inside containers ---------------------------------------------------------------------------

    def _peel(self, stream: BinaryIO, name: str, depth: int) -> tuple[str, BinaryIO, bytes, str]:
        """Decompress layer after layer: (what is inside: zip, tar or plain; its stream; head; name)."""
        while True:
            head, stream = peek(stream)
            found = kind(head)
            if found in COMPRESSIONS:
                if depth >= MAX_DEPTH:
                    raise LimitExceeded(f"containers nested more than {MAX_DEPTH} deep")
                stream = io.BufferedReader(Decompressed(stream, found, self.budget), _BUFFER)  # type: ignore[arg-type,assignment]
                name, depth = plain_name(name), depth + 1
                continue
            if found in (ZIP, TAR):
                return found, stream, head, name
            return "plain", stream, head, name

    def _members(self, archive: str, stream: BinaryIO, source: str, depth: int, counter: list[int],
                 start: int) -> Iterator[Event | Reject]:
        if depth > MAX_DEPTH:
            yield from self._reject(source, counter, start, f"containers nested more than {MAX_DEPTH} deep")
            return
        if archive == ZIP:
            yield from self._zip(stream, source, depth, counter, start)
        else:
            yield from self._tar(stream, source, depth, counter, start)

    def _zip(self, stream: BinaryIO, source: str, depth: int, counter: list[int],
             start: int) -> Iterator[Event | Reject]:
        try:
            archive = zipfile.ZipFile(stream if _random_access(stream) else _in_memory(stream, self.budget))
        except LimitExceeded as exc:
            self.stopped = exc.reason
            yield from self._reject(source, counter, start, exc.reason)
            return
        except Exception as exc:
            yield from self._reject(source, counter, start, f"unreadable zip archive: {_describe(exc)}")
            return
        with archive:
            for info in archive.infolist():
                if self.stopped:
                    return
                if info.is_dir() or skipped_member(info.filename):
                    continue
                inner = f"{source}!{info.filename}"
                try:
                    member = self._open_member(archive, info)
                except Exception as exc:  # encrypted, unsupported method, bad header
                    yield from self._reject(inner, counter, start, f"zip member unreadable: {_describe(exc)}")
                    continue
                yield from self._entry(member, inner, info.filename, depth, counter, start)

    def _open_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> BinaryIO:
        """A zip member's bytes. Deflate and bzip2 are inflated here, from the member's compressed bytes
        read 16 KiB at a time, so the budget sees the true ratio as it grows (the standard library's
        reader reads as many compressed bytes as it was asked for decompressed ones)."""
        if info.flag_bits & 0x1:
            raise ValueError("the member is encrypted (a password is needed)")
        method = info.compress_type
        if method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2) and archive.fp is not None:
            fp: Any = archive.fp
            fp.seek(info.header_offset)
            header = fp.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local file header at offset {info.header_offset}")
            offset = (info.header_offset + 30 + int.from_bytes(header[26:28], "little")
                      + int.from_bytes(header[28:30], "little"))
            data = _Slice(fp, offset, info.compress_size)
            if method == zipfile.ZIP_STORED:
                return io.BufferedReader(data, _BUFFER)  # type: ignore[return-value]
            kind_of = DEFLATE if method == zipfile.ZIP_DEFLATED else BZIP2
            crc = info.CRC if method == zipfile.ZIP_DEFLATED else None
            return io.BufferedReader(Decompressed(data, kind_of, self.budget, crc), _BUFFER)  # type: ignore[arg-type,return-value]
        # LZMA and the rest: the standard library's reader, charged against the member's whole compressed size
        self.budget.read += info.compress_size
        return io.BufferedReader(_Metered(archive.open(info), self.budget), _BUFFER)  # type: ignore[arg-type,return-value]

    def _tar(self, stream: BinaryIO, source: str, depth: int, counter: list[int],
             start: int) -> Iterator[Event | Reject]:
        name = "(its first header)"
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for info in archive:
                    name = info.name
                    if self.stopped:
                        return
                    if not info.isfile() or skipped_member(info.name):
                        continue
                    member = archive.extractfile(info)
                    if member is None:
                        continue
                    failed = yield from self._entry(member, f"{source}!{info.name}", info.name, depth, counter,
                                                    start)
                    if failed:
                        return  # a stream archive cannot go past a member it could not read
        except LimitExceeded as exc:
            self.stopped = exc.reason
            yield from self._reject(source, counter, start, exc.reason)
        except Exception as exc:
            yield from self._reject(source, counter, start,
                                    f"tar archive truncated or corrupt at member {name!r}: {_describe(exc)}")

    def _entry(self, stream: BinaryIO, source: str, name: str, depth: int, counter: list[int],
               start: int) -> Iterator[Event | Reject]:
        """The records of one member (itself perhaps compressed or an archive); returns True when it
        stopped being readable."""
        try:
            inside, stream, head, name = self._peel(stream, name, depth)
        except LimitExceeded as exc:
            self.stopped = exc.reason
            yield from self._reject(source, counter, start, exc.reason)
            return True
        except Exception as exc:
            yield from self._reject(source, counter, start, f"member unreadable: {_describe(exc)}")
            return True
        if inside in (ZIP, TAR):
            before = len(self.stopped)
            yield from self._members(inside, stream, source, depth + 1, counter, start)
            return len(self.stopped) != before
        fmt = self.forced or detect(head, name)
        if fmt is None:
            if not head.strip():
                return False  # an empty member holds no record
            yield from self._reject(source, counter, start, unrecognised_reason(), head[:4096])
            return False
        self.formats.add(fmt.name)
        records = 0
        leaf = _Salvage(stream)
        try:
            for item in fmt.parse(leaf, source, 0):  # type: ignore[arg-type]
                records += 1
                counter[0] += 1
                if counter[0] > start:
                    item.position = counter[0]
                    yield item
            if leaf.error is not None:
                raise leaf.error
        except LimitExceeded as exc:
            self.stopped = exc.reason
            yield from self._reject(source, counter, start, exc.reason, fmt=fmt.name)
            return True
        except Exception as exc:  # truncated, corrupt, CRC mismatch: one reject
            yield from self._reject(source, counter, start,
                                    f"member truncated or corrupt after {records} records: {_describe(exc)}",
                                    fmt=fmt.name)
            return True
        return False

    def _reject(self, source: str, counter: list[int], start: int, reason: str, raw: bytes = b"",
                fmt: str = "") -> Iterator[Reject]:
        """One reject that counts as an item of the archive (so a resume neither repeats nor loses it)."""
        counter[0] += 1
        if counter[0] > start:
            yield Reject(source, counter[0], reason, raw, fmt or (self.forced.name if self.forced else ""),
                         record=counter[0])


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def read(stream: BinaryIO, source: str, start: int = 0, fmt: Format | None = None, *, name: str = "",
         limits: Limits | None = None) -> Iterator[Event | Reject]:
    """Events and rejects of one input, whatever container it comes in (`name` is sniffed with)."""
    yield from Opened(stream, source, fmt, name=name or os.path.basename(source), limits=limits).records(start)


__all__ = ["COMPRESSIONS", "Decompressed", "LimitExceeded", "Limits", "Opened", "available_formats", "compression",
           "detect", "is_tar", "kind", "peek", "plain_name", "read", "skipped_member", "unrecognised_reason"]
