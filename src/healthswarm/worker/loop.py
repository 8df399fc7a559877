"""One role's consume loop (a thread): fetch a batch from the bus, commit its effects, ack it; and every
`flush_every` seconds, between batches, let the role commit what only time completes.

A failed batch: when the failure is the infrastructure's (the database or the bus unreachable, the disk
full), the whole batch is given back with a delay and comes again; nothing is lost. Otherwise one message
may be what fails it (a record no stage can take), so each message is tried alone: the others commit and
flow on, and the one that fails is given back with a delay — until it has failed `max_deliveries` times,
when it is published to the dead-letter subject `<prefix>.dead.<role>` with the reason, terminated (never
delivered again), counted in the metrics and shown in /readyz.

A stop request is looked at between batches only, so a batch in flight is finished and acked before the loop
ends, and the role is flushed one last time; what was never fetched stays with the group for its other
workers.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Sequence

import orjson
from sqlalchemy import exc as db_errors

from healthswarm.bus.base import Bus, BusError, Message, Subscription
from healthswarm.detect.correlate_stage import LeaseLost
from healthswarm.worker import metrics
from healthswarm.worker.config import Role
from healthswarm.worker.roles import RoleWork

log = logging.getLogger("healthswarm.worker.loop")
NAK_DELAY = 1.0  # seconds before a failed message comes back: a cut database gets a moment to return


def infrastructure_failure(exc: BaseException) -> bool:
    """Did the batch fail for want of the database, the bus or disk space (not because of what it holds)?"""
    if isinstance(exc, db_errors.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (db_errors.OperationalError, db_errors.InterfaceError, db_errors.DisconnectionError,
                            db_errors.PendingRollbackError, OSError, TimeoutError, BusError, LeaseLost))


class StageLoop:
    def __init__(self, role: Role, work: RoleWork, subscription: Subscription, bus: Bus, dead_subject: str, *,
                 batch: int, max_deliveries: int, on_commit: threading.Event, flush_every: float) -> None:
        self.role = role
        self.work = work
        self.subscription = subscription
        self.bus = bus
        self.dead_subject = dead_subject
        self.batch = batch
        self.max_deliveries = max_deliveries
        self.on_commit = on_commit
        self.flush_every = flush_every
        self.active = False
        self.dead_letters = 0

    def run(self, stop: threading.Event) -> None:
        next_flush = time.monotonic() + self.flush_every
        while not stop.is_set():
            self.active = self.work.active()
            if not self.active:
                stop.wait(1.0)
                continue
            # checked at least once a second: a fetch waits no longer for its first message
            if time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + self.flush_every
            try:
                with metrics.timed(f"{self.role.value}.fetch"):
                    msgs = self.subscription.fetch(self.batch, 1.0)
            except Exception as exc:  # disconnected, reconnecting, server restarting: try again shortly
                log.warning("fetch failed", exc_info=exc, extra={"role": self.role.value})
                stop.wait(0.5)
                continue
            if msgs:
                self._process(msgs)
        if self.active:
            self._flush()

    def _flush(self) -> None:
        try:
            self.work.flush()
        except Exception as exc:
            metrics.FAILURES.labels(self.role.value).inc()
            log.error("flush failed; retried with the next one", exc_info=exc, extra={"role": self.role.value})
            return
        self.on_commit.set()

    def _process(self, msgs: Sequence[Message]) -> None:
        role = self.role.value
        started = time.perf_counter()
        try:
            with metrics.timed(f"{role}.handle"):
                self.work.handle(msgs)
        except Exception as exc:
            metrics.FAILURES.labels(role).inc()
            if len(msgs) > 1 and not infrastructure_failure(exc):
                log.warning("batch failed; each message tried alone", exc_info=exc,
                            extra={"role": role, "messages": len(msgs)})
                for m in msgs:
                    self._process([m])
                return
            log.error("batch failed; given back for redelivery", exc_info=exc,
                      extra={"role": role, "messages": len(msgs)})
            self._give_back(msgs, exc)
            return
        metrics.BATCH_SECONDS.labels(role).observe(time.perf_counter() - started)
        with metrics.timed(f"{role}.ack"):
            acked = _settle(lambda: self.subscription.ack_all(list(msgs)))
        if acked:
            self.work.settled(msgs)
        metrics.MESSAGES.labels(role).inc(len(msgs))
        self.on_commit.set()

    def _give_back(self, msgs: Sequence[Message], exc: BaseException) -> None:
        """Redelivered after NAK_DELAY; a message that failed on its own for the last allowed time is dead."""
        for m in msgs:
            if len(msgs) == 1 and not infrastructure_failure(exc) and m.deliveries >= self.max_deliveries:
                self._dead(m, exc)
            else:
                _settle(lambda m=m: m.nak(NAK_DELAY))  # type: ignore[misc]

    def _dead(self, m: Message, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        letter = orjson.dumps({"role": self.role.value, "subject": m.subject, "id": m.id, "key": m.key,
                               "deliveries": m.deliveries, "reason": reason,
                               "data_base64": base64.b64encode(m.data).decode()})
        try:
            self.bus.publish_many([(self.dead_subject, letter, f"dead:{m.id}")], born=[m.born])
        except Exception as publish_exc:  # the bus is away: the message comes back and dies next time
            log.warning("dead letter not published", exc_info=publish_exc, extra={"role": self.role.value})
            _settle(lambda: m.nak(NAK_DELAY))
            return
        if _settle(m.term):
            self.work.settled([m])
        self.dead_letters += 1
        metrics.DEAD_LETTERS.labels(self.role.value).inc()
        log.error("message given up on: published to %s", self.dead_subject,
                  extra={"role": self.role.value, "subject": m.subject, "id": m.id, "deliveries": m.deliveries,
                         "reason": reason})


def _settle(settle: Callable[[], None]) -> bool:
    """Ack, nak or term; True when the bus confirmed it. One that cannot be settled (connection gone) returns
    after ack_wait, and its effects are idempotent, so a lost ack costs a redelivery, never a duplicate."""
    try:
        settle()
    except Exception as exc:
        log.debug("could not settle: %s", type(exc).__name__)
        return False
    return True
