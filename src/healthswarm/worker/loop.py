"""One stage's consume loop: fetch a batch, commit its effects (in a thread), ack it; nak it on failure; and
every `flush_every` seconds, between batches, let the stage commit what only time completes.

A stop request is looked at between batches only, so a batch in flight is finished and acked before the
loop ends, and the stage is flushed one last time; what was never fetched stays with the durable for the
other workers of the role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import nats.errors

from healthswarm.worker import metrics
from healthswarm.worker.config import Role
from healthswarm.worker.delivery import delivery
from healthswarm.worker.jetstream import Consumer
from healthswarm.worker.stage import Stage

log = logging.getLogger("healthswarm.worker.loop")
LINGER = 0.05  # seconds a fetch waits to fill its batch once it has a message
NAK_DELAY = 1.0  # seconds before a failed batch comes back: a cut database gets a moment to return


class StageLoop:
    def __init__(self, role: Role, stage: Stage, consumer: Consumer, stream_created: str, batch: int,
                 on_commit: asyncio.Event, flush_every: float) -> None:
        self.role = role
        self.stage = stage
        self.consumer = consumer
        self.stream_created = stream_created
        self.batch = batch
        self.on_commit = on_commit
        self.flush_every = flush_every
        self.active = False

    async def run(self, stop: asyncio.Event) -> None:
        next_flush = time.monotonic() + self.flush_every
        while not stop.is_set():
            self.active = await asyncio.to_thread(self.stage.active)
            if not self.active:
                await _sleep_unless(stop, 1.0)
                continue
            # checked at least once a second: a fetch waits no longer for its first message
            if time.monotonic() >= next_flush:
                await self._flush()
                next_flush = time.monotonic() + self.flush_every
            try:
                msgs = await self._fetch()
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # disconnected, reconnecting, server restarting: try again shortly
                log.warning("fetch failed", exc_info=exc, extra={"role": self.role.value})
                await _sleep_unless(stop, 0.5)
                continue
            await self._process(msgs)
        if self.active:
            await self._flush()

    async def _flush(self) -> None:
        role = self.role.value
        try:
            await asyncio.to_thread(self.stage.flush)
        except Exception as exc:
            metrics.FAILURES.labels(role).inc()
            log.error("flush failed; retried with the next one", exc_info=exc, extra={"role": role})
            return
        self.on_commit.set()

    async def _fetch(self) -> list[Any]:
        """Wait up to a second for the first message, then take what else is there within LINGER: a pull for a
        whole batch would hold a trickle of messages until the batch is full or the second is up."""
        msgs = await self.consumer.sub.fetch(1, timeout=1.0)
        if self.batch > 1:
            with contextlib.suppress(nats.errors.TimeoutError):
                msgs += await self.consumer.sub.fetch(self.batch - 1, timeout=LINGER)
        return msgs

    async def _process(self, msgs: list[Any]) -> None:
        role = self.role.value
        started = time.perf_counter()
        try:
            batch = [delivery(m, self.stream_created) for m in msgs]
            await asyncio.to_thread(self.stage.handle, batch)
        except Exception as exc:
            metrics.FAILURES.labels(role).inc()
            log.error("batch failed; nak'ed for redelivery", exc_info=exc, extra={"role": role, "messages": len(msgs)})
            await _settle(msgs, nak=True)
            return
        metrics.BATCH_SECONDS.labels(role).observe(time.perf_counter() - started)
        await _settle(msgs, nak=False)
        metrics.MESSAGES.labels(role).inc(len(msgs))
        self.on_commit.set()


async def _settle(msgs: list[Any], nak: bool) -> None:
    """Ack (or nak) every message; one that cannot be settled (connection gone) returns after ack_wait, and its
    effects are idempotent, so a lost ack costs a redelivery, never a duplicate."""
    for m in msgs:
        try:
            await (m.nak(delay=NAK_DELAY) if nak else m.ack())
        except Exception:
            return


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
