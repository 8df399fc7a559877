"""NATS JetStream bus: a stream holds the subjects, a durable pull consumer per consumer group.

A sync facade over nats-py (asyncio): the store, the formats and the pipeline are synchronous, and a
detector is a plain loop; rather than make every stage async for the sake of one client, the client
runs on a private event loop in a daemon thread and each call waits for its coroutine there.

- publish: JetStream publish with `Nats-Msg-Id` = the event key, so the stream drops a copy
  re-published within its duplicate window (what a restart after a crash does);
- subscribe(subject, group): a durable pull consumer named after the group (and the subject), with
  explicit acks, `ack_wait` for redelivery of what a dead consumer held, and `max_ack_pending` as
  the bound on messages in flight for the whole group; several subscriptions of one group share it;
- nak() redelivers at once; closing a subscription naks what it holds un-acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from healthswarm.bus.base import BusError

T = TypeVar("T")
DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "HEALTHSWARM"
DEFAULT_SUBJECTS = ("healthswarm.>",)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats-bus", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def durable_name(group: str, subject: str) -> str:
    """A consumer name from the group, unique per subject (one durable cannot have two filters)."""
    digest = hashlib.blake2b(subject.encode(), digest_size=4).hexdigest()
    return f"{_NAME_UNSAFE.sub('_', group)[:200]}-{digest}"


def stream_name_for(subject: str) -> str:
    return "INGEST_" + _NAME_UNSAFE.sub("_", subject.replace(".", "_").replace(">", "all").replace("*", "any"))[:200]


@dataclass(eq=False)
class NatsMessage:
    subject: str
    data: bytes
    key: str
    id: str
    deliveries: int
    _msg: Any = field(repr=False)
    _sub: NatsSubscription = field(repr=False)

    def ack(self) -> None:
        self._sub._settle(self, "ack")

    def nak(self) -> None:
        self._sub._settle(self, "nak")


class NatsSubscription:
    def __init__(self, bus: NatsBus, psub: Any, subject: str, stream_id: str) -> None:
        self._bus = bus
        self._psub = psub
        self.subject = subject
        # prefixes message ids: a stream deleted and created again restarts its sequence at 1
        self.stream_id = stream_id
        self._held: set[NatsMessage] = set()
        self._lock = threading.Lock()
        self.closed = False

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[NatsMessage]:
        if self.closed:
            return []
        try:
            raw = self._bus._loop.run(self._psub.fetch(max_messages, timeout=max(timeout, 0.01)), timeout + 30)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        out = []
        for m in raw:
            meta = m.metadata
            headers = m.headers or {}
            out.append(NatsMessage(m.subject, m.data, headers.get("Nats-Msg-Id", ""),
                                   f"{self.stream_id}:{meta.sequence.stream}", meta.num_delivered, m, self))
        with self._lock:
            self._held.update(out)
        return out

    def _settle(self, message: NatsMessage, how: str) -> None:
        with self._lock:
            if message not in self._held:
                return
            self._held.discard(message)
        coro = message._msg.ack() if how == "ack" else message._msg.nak()
        self._bus._loop.run(coro)

    def ack_all(self, messages: list[NatsMessage]) -> None:
        """Ack many in one hop to the loop thread (the ingest path acks whole batches)."""
        with self._lock:
            mine = [m for m in messages if m in self._held]
            self._held.difference_update(mine)

        async def _ack() -> None:
            for m in mine:
                await m._msg.ack()

        self._bus._loop.run(_ack())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._lock:
            held = list(self._held)
            self._held.clear()

        async def _return() -> None:
            for m in held:
                await m._msg.nak()
            await self._psub.unsubscribe()

        # if the connection is gone the server redelivers after ack_wait anyway
        with contextlib.suppress(Exception):
            self._bus._loop.run(_return(), 10)


class NatsBus:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str | None = DEFAULT_STREAM,
        subjects: tuple[str, ...] = DEFAULT_SUBJECTS,
        ack_wait: float = 30.0,
        max_in_flight: int = 10_000,
        duplicate_window: float = 120.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self.url = url
        self.ack_wait = ack_wait
        self.max_in_flight = max_in_flight
        self.duplicate_window = duplicate_window
        self._loop = _LoopThread()
        try:
            self._nc = self._loop.run(nats.connect(servers=[url], connect_timeout=connect_timeout,
                                                   max_reconnect_attempts=3, allow_reconnect=True),
                                      connect_timeout * 3 + 5)
        except Exception as exc:
            self._loop.stop()
            raise BusError(f"NATS at {url}: cannot connect ({type(exc).__name__}: {exc})") from None
        self._js = self._nc.jetstream()
        self.stream = stream
        if stream is not None:
            self.ensure_stream(stream, subjects)

    # --- streams -------------------------------------------------------------------------------

    def ensure_stream(self, name: str, subjects: tuple[str, ...] | list[str]) -> None:
        """Create the stream, or add subjects missing from an existing one."""

        async def _ensure() -> None:
            try:
                info = await self._js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await self._js.add_stream(StreamConfig(
                    name=name, subjects=list(subjects), storage=StorageType.FILE,
                    duplicate_window=self.duplicate_window))
                return
            missing = [s for s in subjects if s not in (info.config.subjects or [])]
            if missing:
                info.config.subjects = [*(info.config.subjects or []), *missing]
                await self._js.update_stream(info.config)

        self._loop.run(_ensure())

    def stream_for(self, subject: str) -> str | None:
        async def _find() -> str | None:
            try:
                return await self._js.find_stream_name_by_subject(subject)
            except nats.js.errors.NotFoundError:
                return None

        return self._loop.run(_find())

    def delete_stream(self, name: str) -> None:
        async def _delete() -> None:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_stream(name)

        self._loop.run(_delete())

    # --- the bus protocol ----------------------------------------------------------------------

    def publish(self, subject: str, payload: bytes, key: str = "") -> None:
        headers = {"Nats-Msg-Id": key} if key else None
        try:
            self._loop.run(self._js.publish(subject, payload, headers=headers))
        except nats.js.errors.NoStreamResponseError:
            raise BusError(f"NATS: no stream holds subject {subject!r}") from None

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        """Publish asynchronously (the client bounds what is pending) and wait for every ack."""

        async def _publish() -> None:
            futures = []
            for subject, payload, key in items:
                headers = {"Nats-Msg-Id": key} if key else None
                futures.append(await self._js.publish_async(subject, payload, headers=headers))
            await asyncio.gather(*futures)

        if items:
            self._loop.run(_publish(), 60.0 + len(items) / 1000)

    def subscribe(self, subject: str, group: str) -> NatsSubscription:
        stream = self.stream_for(subject)
        if stream is None:
            raise BusError(f"NATS: no stream holds subject {subject!r}")
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait,
            max_ack_pending=self.max_in_flight, filter_subject=subject,
        )
        psub = self._loop.run(self._js.pull_subscribe(subject, durable=durable_name(group, subject), stream=stream,
                                                       config=config))
        info = self._loop.run(self._js.stream_info(stream))
        return NatsSubscription(self, psub, subject, f"{stream}@{info.created or ''}")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed or unreachable: nothing left to flush
            self._loop.run(self._nc.drain(), 10)
        self._loop.stop()
