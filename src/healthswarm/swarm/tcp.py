"""The node transport: one asyncio TCP connection per message, a 4-byte length prefix, then the frame;
optionally inside TLS, with the consortium CA verifying both ends.

Why plain asyncio TCP rather than FastAPI + uvicorn: the protocol is one-way messages (an ack is a
message of its own), so HTTP's request/response and routing add nothing but a second of start-up per
process and a framework in the hot path; a length prefix lets the receiver refuse an oversized frame
before reading it, and TCP carries digests larger than a UDP datagram.

TLS keeps what is said private and lets only certificate holders of the consortium connect; the
Ed25519 signatures inside the frames still say who said it, end to end across relays. A failed
handshake (a plaintext or unknown client) closes the connection before `_serve` sees it; asyncio logs it
at debug level only, so a scanner cannot flood the log.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass

from healthswarm.config import TlsSettings
from healthswarm.security.tls import client_context, server_context
from healthswarm.swarm.guard import Drop

HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class TransportTls:
    """The two contexts a node needs: to accept (requiring peers' certificates if mutual) and to connect."""

    server: ssl.SSLContext
    client: ssl.SSLContext

    @classmethod
    def from_settings(cls, settings: TlsSettings) -> TransportTls | None:
        if not settings.enabled:
            return None
        return cls(server_context(settings, require_client_cert=settings.mutual), client_context(settings))


class TcpTransport:
    def __init__(self, host: str, port: int, on_frame: Callable[[bytes], None],
                 on_drop: Callable[[Drop], None], max_frame: int, timeout: float = 2.0,
                 tls: TransportTls | None = None) -> None:
        self.host, self.port = host, port
        self.on_frame, self.on_drop = on_frame, on_drop
        self.max_frame, self.timeout = max_frame, timeout
        self.tls = tls
        self.send_failures = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        context = self.tls.server if self.tls is not None else None
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=context,
                                                  ssl_handshake_timeout=self.timeout if context else None)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = HEADER.unpack(await asyncio.wait_for(reader.readexactly(HEADER.size), self.timeout))
            if size > self.max_frame:
                self.on_drop(Drop("oversize", f"frame of {size} bytes > {self.max_frame}"))
                return
            self.on_frame(await asyncio.wait_for(reader.readexactly(size), self.timeout))
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
            self.on_drop(Drop("truncated", f"peer stopped mid-transfer ({type(exc).__name__})"))
        finally:
            writer.close()

    def send(self, addr: str, frame: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._send(addr, frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, addr: str, frame: bytes) -> None:
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")  # an IPv6 literal written [::1]:7400
        context = self.tls.client if self.tls is not None else None
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), ssl=context, server_hostname=host if context else None,
                                        ssl_handshake_timeout=self.timeout if context else None), self.timeout)
            writer.write(HEADER.pack(len(frame)) + frame)
            await asyncio.wait_for(writer.drain(), self.timeout)
            writer.close()
        except (OSError, TimeoutError, ValueError):  # ssl.SSLError is an OSError: an untrusted peer is a failure
            self.send_failures += 1
