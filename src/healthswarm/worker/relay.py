"""The outbox relay: publishes unsent outbox rows to JetStream and marks them sent.

A row is marked sent only after JetStream acknowledged it. A crash in between publishes it again later with
the same `Nats-Msg-Id`, which JetStream drops inside its duplicate window (and the consumer's idempotency key
drops after it). On PostgreSQL the claimed rows stay locked until marked, so relays of several workers share
the backlog without publishing a row twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import Connection

from healthswarm.store import Store
from healthswarm.worker import metrics, outbox
from healthswarm.worker.delivery import BORN_HEADER
from healthswarm.worker.jetstream import DUPLICATE_WINDOW

log = logging.getLogger("healthswarm.worker.relay")
PRUNE_EVERY = 60.0
PUBLISH_TIMEOUT = 10.0


class Relay:
    def __init__(self, store: Store, js: JetStreamContext, batch: int = 1_000) -> None:
        self.store = store
        self.js = js
        self.batch = batch
        self.wake = asyncio.Event()
        self._pruned = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set and the outbox is empty (or unreachable): a graceful stop leaves nothing."""
        failures = 0
        while True:
            try:
                sent = await self.publish_once()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("outbox relay: will retry", exc_info=exc, extra={"failures": failures})
                if stop.is_set() and failures >= 3:
                    return
                await asyncio.sleep(min(0.2 * failures, 2.0))
                continue
            if sent == self.batch:
                continue
            if stop.is_set():
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.25)
            await self._maybe_prune()

    async def publish_once(self) -> int:
        conn = await asyncio.to_thread(self.store.engine.connect)
        try:
            pending = await asyncio.to_thread(outbox.claim, conn, self.batch)
            if self.store.backend != "postgresql":
                # SQLite: end the read now; a read transaction held while publishing could not become the
                # write that marks the rows once a stage has committed in between
                await asyncio.to_thread(conn.rollback)
            if pending:
                await self._publish(pending)
                await asyncio.to_thread(self._mark, conn, [p.row_id for p in pending])
                for p in pending:
                    metrics.PUBLISHED.labels("events" if ".events." in p.message.subject else "alerts").inc()
            return len(pending)
        finally:
            await asyncio.to_thread(conn.close)

    async def _publish(self, pending: list[outbox.Pending]) -> None:
        """Publish and wait for every acknowledgement, for PUBLISH_TIMEOUT at most. An ack lost with a dropped
        connection never arrives: its future is cancelled here, which also frees its slot in the client's
        bounded set of pending publishes (left alone, such slots fill up and the relay stalls for ever)."""
        acks: list[asyncio.Future[Any]] = []
        try:
            for p in pending:
                acks.append(await self.js.publish_async(
                    p.message.subject, p.message.payload, wait_stall=PUBLISH_TIMEOUT,
                    headers={"Nats-Msg-Id": p.message.msg_id, BORN_HEADER: repr(p.message.born)}))
            await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT)
        finally:
            for ack in acks:
                if not ack.done():
                    ack.cancel()

    @staticmethod
    def _mark(conn: Connection, row_ids: list[int]) -> None:
        outbox.mark_sent(conn, row_ids)
        conn.commit()

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()

        def prune() -> int:
            with self.store.transaction() as conn:
                return outbox.prune(conn, timedelta(seconds=DUPLICATE_WINDOW * 2))

        await asyncio.to_thread(prune)
