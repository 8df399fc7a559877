"""The outbox relay (a thread): publishes queued outbox rows on the bus and deletes them once acknowledged.

Two ways in. The fast way: a role hands the rows it just committed to its own process's relay (`handoff`),
which publishes them from memory, in commit order, and deletes them: one statement every DELETE_EVERY
seconds, no read back of payloads. The safe way: every relay also claims rows queued more than STALE seconds
ago (another worker crashed before publishing them, or its relay fell behind and dropped its hand-offs), so
nothing committed is ever left behind; a hand-off older than STALE / 2 is dropped for that reason rather than
published late.

A row is deleted only after the bus acknowledged it. A crash in between publishes it again later with the
same key (`Nats-Msg-Id`), which JetStream drops inside its duplicate window (and the consumer's idempotency
key drops after it); so does a row that both ways happened to publish. On PostgreSQL claimed rows stay locked
until deleted, so relays of several workers share the stale backlog without publishing a row twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from datetime import timedelta

from healthswarm.bus.base import Bus
from healthswarm.store import Store
from healthswarm.worker import metrics, outbox

log = logging.getLogger("healthswarm.worker.relay")
STALE = 5.0  # seconds after which any relay publishes a row (its own relay normally has within milliseconds)
# seconds between deletes of the rows published from hand-offs: one statement for them all (a transaction per
# hand-off cost the relay more than publishing); a row published but not yet deleted is at worst published again
DELETE_EVERY = 0.5


class Relay:
    # rows per publish: a row of events holds up to 100 of them (worker/roles.py), so this bounds what one batch
    # holds in memory as well as how long it waits for the bus
    def __init__(self, store: Store, bus: Bus, batch: int = 200) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.wake = threading.Event()
        self._handed: deque[tuple[float, list[outbox.Pending]]] = deque()  # (when, rows) from the roles
        self._stopping = False
        self._claimed_at = 0.0  # monotonic time of the last claim of stale rows
        self._published: list[int] = []  # rows of hand-offs published, not deleted yet
        self._deleted_at = 0.0

    def handoff(self, rows: list[outbox.Pending]) -> None:
        """Rows a role's transaction just committed (called after the commit, never before: a row handed off
        must exist). Thread-safe: deque appends are atomic."""
        if rows:
            self._handed.append((time.monotonic(), rows))
            self.wake.set()

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set and the outbox is empty (or unreachable): a graceful stop leaves nothing."""
        failures = 0
        while True:
            self._stopping = stop.is_set()
            try:
                sent = self.publish_once()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("outbox relay: will retry", exc_info=exc, extra={"failures": failures})
                if stop.is_set() and failures >= 3:
                    return
                time.sleep(min(0.2 * failures, 2.0))
                continue
            if sent or self._handed:  # more may be waiting
                continue
            if stop.is_set():
                return
            self.wake.wait(0.25)
            self.wake.clear()

    def publish_once(self) -> int:
        """One batch: the rows handed off, else (and at least every STALE seconds) the stale rows of the table,
        looked for every STALE / 2 seconds (every row, at once, when stopping); the rows published from hand-offs
        are deleted every DELETE_EVERY seconds, and before any claim."""
        handed = self._take_handed() if time.monotonic() - self._claimed_at < STALE else []
        if handed:
            self._publish(handed)
            self._published += [p.row_id for p in handed]
        if self._published and (self._stopping or len(self._published) >= self.batch
                                or time.monotonic() - self._deleted_at >= DELETE_EVERY):
            self._delete_published()
        if handed:
            return len(handed)
        if self._published or (not self._stopping and time.monotonic() - self._claimed_at < STALE / 2):
            return 0  # stale rows are at least STALE old: looking for them more often finds nothing more
        self._claimed_at = time.monotonic()
        with self.store.engine.connect() as conn:
            with metrics.timed("relay.claim"):
                pending = outbox.claim(conn, self.batch, timedelta(seconds=0 if self._stopping else STALE))
            if self.store.backend != "postgresql":
                # SQLite: end the read now; a read transaction held while publishing could not become the
                # write that deletes the rows once a stage has committed in between
                conn.rollback()
            if pending:
                self._publish(pending)
                with metrics.timed("relay.delete"):
                    outbox.remove(conn, [p.row_id for p in pending])
                    conn.commit()
            return len(pending)

    def _delete_published(self) -> None:
        with metrics.timed("relay.delete"), self.store.transaction() as conn:
            outbox.remove(conn, self._published)
        self._published = []
        self._deleted_at = time.monotonic()

    def _take_handed(self) -> list[outbox.Pending]:
        rows: list[outbox.Pending] = []
        too_old = time.monotonic() - STALE / 2
        while self._handed and len(rows) < self.batch:
            when, batch = self._handed.popleft()
            if when >= too_old:
                rows.extend(batch)
            else:  # the claim of some relay publishes it once STALE has passed
                metrics.HANDOFFS_DROPPED.inc(len(batch))
        return rows

    def _publish(self, rows: list[outbox.Pending]) -> None:
        with metrics.timed("relay.publish"):
            self.bus.publish_many([(p.message.subject, p.message.payload, p.message.msg_id) for p in rows],
                                  born=[p.message.born for p in rows])
        kinds = Counter("events" if ".events." in p.message.subject
                        else "incidents" if p.message.subject.endswith(".incidents") else "alerts" for p in rows)
        for kind, count in kinds.items():
            metrics.PUBLISHED.labels(kind).inc(count)
