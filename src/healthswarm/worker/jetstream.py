"""The worker's JetStream plumbing (asyncio): the connection, the stream, the role's durable pull consumer.

Workers of a role bind the same durable, which makes them one queue group: JetStream hands each message to
one of them, so a new worker adds throughput without reconfiguring anything. `max_ack_pending` is the
backpressure: the server stops delivering when that many messages are out un-acked, whoever holds them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from healthswarm.errors import ConfigError
from healthswarm.worker.config import redact

log = logging.getLogger("healthswarm.worker.jetstream")
# how long JetStream remembers a Nats-Msg-Id: a relay re-publishing after a crash is dropped within it
DUPLICATE_WINDOW = 600.0
CONNECT_TIMEOUT = 8.0


async def connect(url: str, name: str) -> Client:
    """Connect, and keep reconnecting for ever once connected: a NATS restart must not end a worker."""

    async def disconnected() -> None:
        log.warning("NATS disconnected", extra={"nats": redact(url)})

    async def reconnected() -> None:
        log.info("NATS reconnected", extra={"nats": redact(url)})

    async def error(exc: Exception) -> None:
        if up:  # before the first connection the one error line below says it all
            log.warning("NATS: %s", redact(str(exc)) or type(exc).__name__)

    up = False
    await _reachable(url)
    try:
        # with unlimited reconnects nats-py would also retry the first connection for ever: bound it here
        client = await asyncio.wait_for(
            nats.connect(servers=[url], name=name, connect_timeout=3, max_reconnect_attempts=-1,
                         reconnect_time_wait=0.5, disconnected_cb=disconnected, reconnected_cb=reconnected,
                         error_cb=error, allow_reconnect=True),
            CONNECT_TIMEOUT)
    except Exception as exc:
        raise ConfigError(f"NATS at {redact(url)}: cannot connect ({type(exc).__name__})") from None
    up = True
    return client


async def _reachable(url: str) -> None:
    """Fail at once, with the reason, where nats-py (told to reconnect for ever) would keep retrying."""
    parts = urlsplit(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), 3)
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"NATS at {redact(url)}: cannot connect ({reason})") from None
    writer.close()


async def ensure_stream(js: JetStreamContext, name: str, subjects: list[str]) -> None:
    """Create the stream (file storage, a long duplicate window), or add subjects it lacks."""
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE,
                                             duplicate_window=DUPLICATE_WINDOW))
        except nats.js.errors.BadRequestError as exc:  # e.g. the subjects overlap another stream's
            raise ConfigError(f"JetStream stream {name}: {exc.description}") from None
        return
    missing = [s for s in subjects if s not in (info.config.subjects or [])]
    if missing:
        info.config.subjects = [*(info.config.subjects or []), *missing]
        await js.update_stream(info.config)


@dataclass
class Consumer:
    """A bound durable: fetch from `sub`; `lag()` is what the server still holds for the group."""

    js: JetStreamContext
    stream: str
    durable: str
    sub: Any

    async def lag(self) -> int:
        info = await self.js.consumer_info(self.stream, self.durable)
        return int(info.num_pending or 0)


async def bind(js: JetStreamContext, stream: str, durable: str, subject: str, max_in_flight: int,
               ack_wait: float) -> Consumer:
    """The role's durable pull consumer, created by the first worker of the role and shared by the rest."""
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                            ack_wait=ack_wait, max_ack_pending=max_in_flight, filter_subject=subject,
                            max_waiting=512)
    try:
        await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_consumer(stream, config)
        except nats.js.errors.BadRequestError as exc:
            # another worker of the role created it at the same moment: bind to theirs
            if "already" not in str(exc.description).lower():
                raise
    sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
    return Consumer(js, stream, durable, sub)


def message_id(stream: str, created: str, sequence: int) -> str:
    """A message's stable id across redeliveries: the stream (name and creation time, so a stream made again
    does not reuse the keys of the old one) and its sequence; as `healthswarm ingest nats://` names it."""
    return f"{stream}@{created}:{sequence}"


__all__ = ["Client", "Consumer", "bind", "connect", "ensure_stream", "message_id"]
