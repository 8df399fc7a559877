"""NATS JetStream bus: a stream holds the subjects, a durable pull consumer per consumer group. The project's
one JetStream client: `healthswarm ingest nats://`, the agent's NATS source and the scale-out roles
(`agent run --role`) all use it.

A sync facade over nats-py (asyncio): the store, the formats and the pipeline are synchronous, and a
detector is a plain loop; rather than make every stage async for the sake of one client, the client
runs on a private event loop in a daemon thread and each call waits for its coroutine there.

- publish: JetStream publish with `Nats-Msg-Id` = the event key, so the stream drops a copy
  re-published within its duplicate window (what a restart after a crash does); `born` travels in a header;
- subscribe(subject, group): a durable pull consumer named after the group (and the subject), with
  explicit acks, `ack_wait` for redelivery of what a dead consumer held, and `max_ack_pending` as
  the bound on messages in flight for the whole group; several subscriptions (of several processes)
  of one group share it, which makes them one queue group: a new member adds throughput;
- nak(delay) redelivers after the delay; term() never again; closing a subscription naks what it holds;
- a subscription hands out a stream message it holds, or has acked or terminated, no second time: nats-server
  before 2.10.15 may, when a redelivery meets an expired pull request, send the last message again with a delivery
  count of 1 (nats-server#4460, fixed by #5305); such a copy is acked again and dropped;
- `reconnect_forever`: a long-running process (a scale-out role) keeps reconnecting through a NATS
  restart instead of failing after a few attempts; the first connection still fails at once, with why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from healthswarm.bus.base import BusError
from healthswarm.model.words import counted

T = TypeVar("T")
log = logging.getLogger("healthswarm.bus.nats")
DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "HEALTHSWARM"
DEFAULT_SUBJECTS = ("healthswarm.>",)
#: header carrying when the record a message descends from entered the system (epoch seconds)
BORN_HEADER = "Healthswarm-Born"
LINGER = 0.05  # seconds a fetch waits to fill its batch once it has a message
LINGER_GRACE = 0.05  # and for the server's answer after that (the status ending its pull request)
PUBLISH_TIMEOUT = 10.0
ACK_CONFIRM_TIMEOUT = 10  # seconds for the server to answer the PING after a batch's acks
SETTLED_REMEMBERED = 65_536  # stream sequences a subscription remembers having acked or terminated
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def shown(url: str) -> str:
    """The URL as it may be shown: scheme, host and port, never a user or password."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


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
    born: float
    sequence: int = field(repr=False)
    _msg: Any = field(repr=False)
    _sub: NatsSubscription = field(repr=False)

    def ack(self) -> None:
        self._sub._settle(self, self._msg.ack(), done=True)

    def nak(self, delay: float = 0.0) -> None:
        self._sub._settle(self, self._msg.nak(delay=delay) if delay > 0 else self._msg.nak(), done=False)

    def term(self) -> None:
        self._sub._settle(self, self._msg.term(), done=True)


async def _linger(psub: Any, n: int) -> list[Any]:
    """Up to `n` more messages of a pull subscription within LINGER: what nats-py's `fetch(n, LINGER)` asks of the
    server (one pull request, which the server fills or ends with a status at its expiry), but taking the messages
    from the subscription's queue as they come, without the task, timer and uuid that `next_msg` spends on each
    (they cost the event loop more than all the rest of a message). Status messages (no messages, the request
    expired, a conflict) end the wait; one left by an earlier request is skipped."""
    sub = psub._sub
    queue: asyncio.Queue[Any] = sub._pending_queue
    got: list[Any] = []

    def take() -> Any:
        msg = queue.get_nowait()
        sub._pending_size -= len(msg.data)  # nats-py's slow-consumer accounting, as its own fetch keeps it
        return msg

    while not queue.empty() and len(got) < n:  # delivered late to an earlier request
        msg = take()
        if not _status(msg):
            got.append(msg)
    if len(got) == n:
        return got
    await psub._nc.publish(psub._nms, orjson.dumps({"batch": n - len(got), "expires": int(LINGER * 1e9)}),
                           psub._deliver)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER + LINGER_GRACE
    while len(got) < n:
        if queue.empty():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:  # a wait per time the queue runs dry, not per message
                msg = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:  # asyncio.Queue.get gives up without taking a message
                break
            sub._pending_size -= len(msg.data)
        else:
            msg = take()
        if _status(msg):
            break
        got.append(msg)
    return got


def _status(msg: Any) -> str | None:
    """The status header of a JetStream status message (404, 408, 409, 100), None for a stream message."""
    return msg.headers.get("Status") if msg.headers else None


class NatsSubscription:
    def __init__(self, bus: NatsBus, psub: Any, subject: str, stream_id: str, stream: str = "",
                 durable: str = "") -> None:
        self._bus = bus
        self._psub = psub
        self.subject = subject
        self.stream = stream
        self.durable = durable
        # prefixes message ids: a stream deleted and created again restarts its sequence at 1
        self.stream_id = stream_id
        self._held: set[NatsMessage] = set()
        self._holding: dict[int, int] = {}  # stream sequence held -> its delivery count
        self._settled: OrderedDict[int, None] = OrderedDict()  # acked or terminated, the latest last
        self._lock = threading.Lock()
        self.closed = False

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[NatsMessage]:
        """Wait up to `timeout` for the first message, then take what else is there within LINGER: one pull for
        the whole batch would hold a trickle of messages until the batch is full or the time is up."""
        if self.closed:
            return []

        async def _fetch() -> list[Any]:
            got = await self._psub.fetch(1, timeout=max(timeout, 0.01))
            if max_messages > 1:
                got += await _linger(self._psub, max_messages - 1)
            return got

        try:
            raw = self._bus._loop.run(_fetch(), timeout + 30)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        return self._admit(raw)

    def _admit(self, raw: list[Any]) -> list[NatsMessage]:
        """The deliveries to hand out, held from now on. A copy of a message this subscription acked or terminated,
        or of one it holds with no higher delivery count, is the server's (nats-server#4460): acked again (a held
        one is settled by its holder: the server keys acks by stream sequence) and dropped. A delivery with a higher
        count is a real redelivery (its ack wait ran out) and is handed out."""
        out = []
        copies = []
        with self._lock:
            for m in raw:
                meta = m.metadata
                sequence = meta.sequence.stream
                if sequence in self._settled:
                    copies.append(m)
                    continue
                if self._holding.get(sequence, 0) >= meta.num_delivered:
                    log.debug("NATS %s: dropped a second copy of held message %d", self.subject, sequence)
                    continue
                headers = m.headers or {}
                try:
                    born = float(headers[BORN_HEADER])
                except (KeyError, ValueError):
                    born = meta.timestamp.timestamp()
                message = NatsMessage(m.subject, m.data, headers.get("Nats-Msg-Id", ""),
                                      f"{self.stream_id}:{sequence}", meta.num_delivered, born, sequence, m, self)
                self._held.add(message)
                self._holding[sequence] = meta.num_delivered
                out.append(message)
        if copies:
            self._drop_copies(copies)
        return out

    def _drop_copies(self, copies: list[Any]) -> None:
        """Ack again, and drop, the server's second copies of messages this subscription acked or terminated."""
        log.debug("NATS %s: dropped %s delivered a second time", self.subject,
                  counted(len(copies), "settled message"))

        async def _ack() -> None:
            for m in copies:
                await m.ack()

        with contextlib.suppress(Exception):
            self._bus._loop.run(_ack(), 10)

    def _release(self, messages: list[NatsMessage], *, done: bool) -> None:
        """Under the lock: these held messages were settled; `done`: acked or terminated, never to be handed out
        again."""
        for m in messages:
            self._held.discard(m)
            if self._holding.get(m.sequence) == m.deliveries:
                del self._holding[m.sequence]
            if done:
                self._settled[m.sequence] = None
        while len(self._settled) > SETTLED_REMEMBERED:
            self._settled.popitem(last=False)

    def _settle(self, message: NatsMessage, settle: Coroutine[Any, Any, None], *, done: bool) -> None:
        with self._lock:
            if message not in self._held:
                settle.close()
                return
            self._release([message], done=done)
        self._bus._loop.run(settle)

    def lag(self) -> int:
        async def _lag() -> int:
            info = await self._bus._js.consumer_info(self.stream, self.durable)
            return int(info.num_pending or 0)

        return self._bus._loop.run(_lag(), 10)

    def ack_all(self, messages: list[NatsMessage]) -> None:
        """Ack many in one hop to the loop thread (the roles ack whole batches); returns once the server holds
        the acks (a PING after them answered: the connection delivers in order), so a caller may forget what it
        kept for a redelivery. Raises when that is not known (connection lost): the acks may still arrive."""
        with self._lock:
            mine = [m for m in messages if m in self._held]
            self._release(mine, done=True)

        async def _ack() -> None:
            for m in mine:
                await m._msg.ack()
            await self._bus._nc.flush(ACK_CONFIRM_TIMEOUT)

        self._bus._loop.run(_ack())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._lock:
            held = list(self._held)
            self._held.clear()
            self._holding.clear()

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
        reconnect_forever: bool = False,
        name: str | None = None,
    ) -> None:
        self.url = url
        self.ack_wait = ack_wait
        self.max_in_flight = max_in_flight
        self.duplicate_window = duplicate_window
        self._loop = _LoopThread()
        try:
            self._nc = self._loop.run(self._connect(connect_timeout, reconnect_forever, name),
                                      connect_timeout * 3 + 5)
        except Exception as exc:
            self._loop.stop()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise BusError(f"NATS at {shown(url)}: cannot connect ({reason})") from None
        self._js = self._nc.jetstream()
        self.stream = stream
        if stream is not None:
            self.ensure_stream(stream, subjects)

    async def _connect(self, timeout: float, forever: bool, name: str | None) -> Any:
        if not forever:
            return await nats.connect(servers=[self.url], connect_timeout=timeout, max_reconnect_attempts=3,
                                      allow_reconnect=True, name=name)
        # with unlimited reconnects nats-py would also retry the first connection for ever: fail at once where
        # the server does not answer, then let the client reconnect for ever once connected
        parts = urlsplit(self.url)
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), timeout)
        writer.close()
        up = False

        async def disconnected() -> None:
            log.warning("NATS disconnected", extra={"nats": shown(self.url)})

        async def reconnected() -> None:
            log.info("NATS reconnected", extra={"nats": shown(self.url)})

        async def error(exc: Exception) -> None:
            if up:  # before the first connection the error raised says it all
                log.warning("NATS: %s", type(exc).__name__)

        client = await nats.connect(servers=[self.url], connect_timeout=timeout, max_reconnect_attempts=-1,
                                    reconnect_time_wait=0.5, allow_reconnect=True, name=name,
                                    disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
        up = True
        return client

    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    def created(self, stream: str) -> str:
        """When the stream was created: message ids name it, so a stream made again does not reuse old ids."""
        return str(self._loop.run(self._js.stream_info(stream)).created or "")

    # --- streams -------------------------------------------------------------------------------

    def ensure_stream(self, name: str, subjects: tuple[str, ...] | list[str]) -> None:
        """Create the stream, or add subjects missing from an existing one."""

        async def _ensure() -> None:
            try:
                info = await self._js.stream_info(name)
            except nats.js.errors.NotFoundError:
                try:
                    await self._js.add_stream(StreamConfig(
                        name=name, subjects=list(subjects), storage=StorageType.FILE,
                        duplicate_window=self.duplicate_window))
                except nats.js.errors.BadRequestError as exc:  # e.g. the subjects overlap another stream's
                    raise BusError(f"JetStream stream {name}: {exc.description}") from None
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

    def publish_many(self, items: list[tuple[str, bytes, str]], born: list[float] | None = None) -> None:
        """Publish asynchronously (the client bounds what is pending) and wait for every ack, PUBLISH_TIMEOUT
        at most once the last is sent. An ack lost with a dropped connection never arrives: its future is
        cancelled here, which also frees its slot in the client's bounded set of pending publishes (left
        alone, such slots fill up and every later publish stalls)."""

        async def _publish() -> None:
            acks: list[asyncio.Future[Any]] = []
            try:
                for i, (subject, payload, key) in enumerate(items):
                    headers = {"Nats-Msg-Id": key} if key else {}
                    if born is not None:
                        headers[BORN_HEADER] = repr(born[i])
                    acks.append(await self._js.publish_async(subject, payload, headers=headers or None,
                                                             wait_stall=PUBLISH_TIMEOUT))
                await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT)
            finally:
                for ack in acks:
                    if not ack.done():
                        ack.cancel()

        if items:
            try:
                self._loop.run(_publish(), 60.0 + len(items) / 1000)
            except nats.js.errors.NoStreamResponseError:
                raise BusError("NATS: no stream holds one of the subjects published to") from None

    def subscribe(self, subject: str, group: str, *, max_in_flight: int | None = None,
                  ack_wait: float | None = None) -> NatsSubscription:
        """The group's durable, created by its first member and bound by the rest (processes started together
        may race to create it: the loser binds the winner's)."""
        stream = self.stream_for(subject)
        if stream is None:
            raise BusError(f"NATS: no stream holds subject {subject!r}")
        durable = durable_name(group, subject)
        config = ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait or self.ack_wait, max_ack_pending=max_in_flight or self.max_in_flight,
            filter_subject=subject, max_waiting=512,
        )

        async def _bind() -> tuple[Any, str]:
            try:
                await self._js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:
                try:
                    await self._js.add_consumer(stream, config)
                except nats.js.errors.BadRequestError as exc:
                    if "already" not in str(exc.description).lower():
                        raise BusError(f"JetStream consumer {durable}: {exc.description}") from None
            psub = await self._js.pull_subscribe_bind(durable=durable, stream=stream)
            info = await self._js.stream_info(stream)
            return psub, str(info.created or "")

        psub, created = self._loop.run(_bind())
        return NatsSubscription(self, psub, subject, f"{stream}@{created}", stream, durable)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed or unreachable: nothing left to flush
            self._loop.run(self._nc.drain(), 10)
        self._loop.stop()
