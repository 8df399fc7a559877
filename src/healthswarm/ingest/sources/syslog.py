"""A syslog receiver: RFC 5424 and RFC 3164 messages over UDP (RFC 5426) and TCP (RFC 6587: octet counting
or newline framing, told apart per frame), optionally inside TLS (RFC 5425), into the ingest pipeline.

Messages are parsed by the syslog format (`ingest/formats/syslog.py`) and stored through
`Pipeline.run_messages` in batches (up to `batch` messages, or what arrived within `latency` seconds), one
transaction a batch. Each message is keyed by this receiver's run (a random id drawn at start) and its
arrival number, so it is stored exactly once — two identical lines sent twice are two events, as they were
two messages.

What "resume exactly" means here: syslog has no acknowledgement (UDP none at all, TCP only the transport's),
so a sender cannot replay what a receiver lost; nothing is stored twice, and what was received but not yet
committed when the process is killed (at most one batch, `latency` seconds of traffic) is lost with it, as
with any syslog daemon without a disk queue. A graceful stop commits everything received first.

Framing on TCP: a frame that starts with a digit is `MSG-LEN SP SYSLOG-MSG` (octet counting); anything else
runs to the next LF (a CR before it and a trailing NUL are dropped). Frames longer than `max_message` bytes
are cut there (counted in `truncated`).
"""

from __future__ import annotations

import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline

MAX_MESSAGE = 64 * 1024
_READ = 64 * 1024


@dataclass(eq=False, slots=True)
class SyslogMessage:
    """One received message, in the shape `Pipeline.run_messages` takes (nothing to acknowledge)."""

    subject: str  # "udp/<peer address>" or "tcp/<peer address>": the event's source is syslog://<subject>
    data: bytes
    id: str

    def ack(self) -> None:
        return None


def parse_address(text: str, default_port: int = 514) -> tuple[str, int]:
    """`host:port` (`[::1]:514` for IPv6) → (host, port); port 0 asks the system for a free one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r}: expected host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class FramingError(ValueError):
    """The peer sent a frame no receiver should hold (an octet count beyond any sane message)."""


def split_frames(buffer: bytearray, max_message: int = MAX_MESSAGE) -> tuple[list[bytes], int]:
    """Complete frames at the front of `buffer` (removed from it) and how many were cut to `max_message`.
    Raises FramingError for an octet count above 16 × `max_message` (the connection is then closed)."""
    frames: list[bytes] = []
    cut = 0
    while buffer:
        skip = 0
        while skip < len(buffer) and buffer[skip] in b"\x00\r\n":  # trailers and blank lines between frames
            skip += 1
        if skip:
            del buffer[:skip]
            continue
        if buffer[0:1].isdigit():
            space = buffer.find(b" ", 0, 12)
            if space > 0 and buffer[:space].isdigit():
                length = int(buffer[:space])
                if length > 16 * max_message:
                    raise FramingError(f"octet count {length} above {16 * max_message}")
                end = space + 1 + length
                if len(buffer) < end:
                    break
                frame = bytes(buffer[space + 1 : end]).rstrip(b"\r\n\x00")
                del buffer[:end]
                if len(frame) > max_message:
                    frame, cut = frame[:max_message], cut + 1
                if frame:
                    frames.append(frame)
                continue
        newline = buffer.find(b"\n")
        if newline < 0:
            if len(buffer) > max_message:  # no LF in sight: cut here, go on with the rest
                frames.append(bytes(buffer[:max_message]))
                cut += 1
                del buffer[:max_message]
                continue
            break
        frame = bytes(buffer[:newline]).rstrip(b"\r").strip(b"\x00")
        del buffer[: newline + 1]
        if frame:
            if len(frame) > max_message:
                frame, cut = frame[:max_message], cut + 1
            frames.append(frame)
    return frames, cut


@dataclass
class ReceiverStats:
    received: int = 0
    truncated: int = 0
    connections: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class SyslogReceiver:
    """Listens on `udp` and/or `tcp` (host:port strings) until `stop()`; `tls` wraps the TCP listener."""

    def __init__(self, pipeline: Pipeline, *, udp: str = "", tcp: str = "", tls: ssl.SSLContext | None = None,
                 batch: int = 2_000, latency: float = 0.2, max_message: int = MAX_MESSAGE,
                 name: str = "syslog", on_batch: Callable[[int], None] | None = None) -> None:
        if not udp and not tcp:
            raise ValueError("syslog receiver: neither a UDP nor a TCP address")
        self.pipeline = pipeline
        self.tls = tls
        self.batch = batch
        self.latency = latency
        self.max_message = max_message
        self.name = name
        self.on_batch = on_batch
        self.stats = ReceiverStats()
        self._run = os.urandom(6).hex()
        self._sequence = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[SyslogMessage] = queue.Queue(maxsize=100_000)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        if udp:
            host, port = parse_address(udp)
            self._udp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self._udp.bind((host, port))
            self._udp.settimeout(0.5)
        if tcp:
            host, port = parse_address(tcp)
            self._tcp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._tcp.bind((host, port))
            self._tcp.listen(64)
            self._tcp.settimeout(0.5)
        self._format = get_format("syslog")

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self._udp.getsockname()[:2] if self._udp is not None else None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.getsockname()[:2] if self._tcp is not None else None

    def start(self) -> SyslogReceiver:
        if self._udp is not None:
            self._spawn(self._serve_udp, "syslog-udp")
        if self._tcp is not None:
            self._spawn(self._serve_tcp, "syslog-tcp")
        self._spawn(self._write, "syslog-writer")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, commit what was received, return when done."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _put(self, transport: str, peer: str, data: bytes) -> None:
        with self._lock:
            self._sequence += 1
            ident = f"{self._run}-{self._sequence}"
        self._queue.put(SyslogMessage(f"{transport}/{peer}", data, ident))
        self.stats.received += 1

    def _serve_udp(self) -> None:
        sock = self._udp
        assert sock is not None
        while not self._stopping.is_set():
            try:
                data, peer = sock.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            data = data.rstrip(b"\r\n\x00")
            if len(data) > self.max_message:
                data = data[: self.max_message]
                self.stats.truncated += 1
            if data:
                self._put("udp", peer[0], data)

    def _serve_tcp(self) -> None:
        sock = self._tcp
        assert sock is not None
        while not self._stopping.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.connections += 1
            threading.Thread(target=self._connection, args=(conn, peer[0]), name="syslog-conn", daemon=True).start()

    def _connection(self, conn: socket.socket, peer: str) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5.0)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.5)
            buffer = bytearray()
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(_READ)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buffer += chunk
                frames, cut = split_frames(buffer, self.max_message)
                self.stats.truncated += cut
                for frame in frames:
                    self._put("tcp", peer, frame)
            tail = bytes(buffer).strip(b"\r\n\x00")  # a last line without its LF, sent before closing
            if tail:
                self._put("tcp", peer, tail[: self.max_message])
        except (OSError, FramingError) as exc:
            self.stats.errors.append(f"{peer}: {type(exc).__name__}: {exc}"[:200])
            del self.stats.errors[:-20]
        finally:
            conn.close()

    def _write(self) -> None:
        """Batches to the pipeline; after a stop request, until the queue is empty."""
        while True:
            messages: list[SyslogMessage] = []
            try:
                messages.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                if self._stopping.is_set() and all(not t.is_alive() for t in self._threads[:-1]):
                    return
                continue
            deadline = time.monotonic() + self.latency
            while len(messages) < self.batch:
                try:
                    messages.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self.pipeline.run_messages(messages, scheme="syslog", fmt=self._format, name=self.name)
            except Exception as exc:  # a failed commit: keep the receiver alive, say why
                self.stats.errors.append(f"commit: {type(exc).__name__}: {exc}"[:200])
                del self.stats.errors[:-20]
                time.sleep(0.5)
                for m in messages:  # try again with the next batch: the keys make a retry harmless
                    self._queue.put(m)
                continue
            self.stats.batches += 1
            if self.on_batch is not None:
                self.on_batch(len(messages))
