"""The outbox relay (a thread): publishes unsent outbox rows on the bus and marks them sent.

A row is marked sent only after the bus acknowledged it. A crash in between publishes it again later with the
same key (`Nats-Msg-Id`), which JetStream drops inside its duplicate window (and the consumer's idempotency
key drops after it). On PostgreSQL the claimed rows stay locked until marked, so relays of several workers
share the backlog without publishing a row twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import Connection

from healthswarm.bus.base import Bus
from healthswarm.store import Store
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import DUPLICATE_WINDOW

log = logging.getLogger("healthswarm.worker.relay")
PRUNE_EVERY = 60.0


class Relay:
    def __init__(self, store: Store, bus: Bus, batch: int = 1_000) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.wake = threading.Event()
        self._pruned = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set and the outbox is empty (or unreachable): a graceful stop leaves nothing."""
        failures = 0
        while True:
            try:
                sent = self.publish_once()
                self._maybe_prune()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("outbox relay: will retry", exc_info=exc, extra={"failures": failures})
                if stop.is_set() and failures >= 3:
                    return
                time.sleep(min(0.2 * failures, 2.0))
                continue
            if sent == self.batch:
                continue
            if stop.is_set():
                return
            self.wake.wait(0.25)
            self.wake.clear()

    def publish_once(self) -> int:
        with self.store.engine.connect() as conn:
            with metrics.timed("relay.claim"):
                pending = outbox.claim(conn, self.batch)
            if self.store.backend != "postgresql":
                # SQLite: end the read now; a read transaction held while publishing could not become the
                # write that marks the rows once a stage has committed in between
                conn.rollback()
            if pending:
                with metrics.timed("relay.publish"):
                    self.bus.publish_many([(p.message.subject, p.message.payload, p.message.msg_id)
                                           for p in pending], born=[p.message.born for p in pending])
                with metrics.timed("relay.mark"):
                    self._mark(conn, [p.row_id for p in pending])
                for p in pending:
                    metrics.PUBLISHED.labels("events" if ".events." in p.message.subject else "alerts").inc()
            return len(pending)

    @staticmethod
    def _mark(conn: Connection, row_ids: list[int]) -> None:
        outbox.mark_sent(conn, row_ids)
        conn.commit()

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        with self.store.transaction() as conn:
            outbox.prune(conn, timedelta(seconds=DUPLICATE_WINDOW * 2))
