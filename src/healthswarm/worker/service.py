"""A scale-out role process: connect to the bus (NATS JetStream), join one consumer group per role, run the role
loops, the outbox relay, the lag probe and the HTTP endpoints, each in a thread; on SIGTERM/SIGINT finish the
batches in flight, flush the roles, then the outbox, and exit 0."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import text

from healthswarm.agent.health import serve
from healthswarm.agent.logs import redact
from healthswarm.bus.base import BusError
from healthswarm.bus.nats import NatsBus
from healthswarm.errors import ConfigError
from healthswarm.store import Store
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import DUPLICATE_WINDOW, Role, WorkerConfig
from healthswarm.worker.loop import StageLoop
from healthswarm.worker.relay import Relay
from healthswarm.worker.roles import EVENTS_PER_MESSAGE, RoleWork, role_work

log = logging.getLogger("healthswarm.worker")
PROBE_EVERY = 5.0


class Worker:
    def __init__(self, config: WorkerConfig, store: Store, workspace: Path) -> None:
        self.config = config
        self.store = store
        self.workspace = workspace
        self.bus: NatsBus | None = None
        self.loops: list[StageLoop] = []

    def readiness(self) -> tuple[dict[str, bool], dict[str, Any]]:
        """Called from the HTTP thread: a live database round trip, whether the bus is connected, and whether
        every role's group is joined. A standby correlator is ready (it takes over when the active one goes)."""
        try:
            with self.store.read() as conn:
                conn.execute(text("SELECT 1"))
            db = True
        except Exception:
            db = False
        bound = len(self.loops) == len(self.config.role.stages())
        checks = {"database": db, "nats": bool(self.bus and self.bus.connected()), "consumers_bound": bound}
        return checks, {"active": {loop.role.value: loop.active for loop in self.loops},
                        "dead_letters": {loop.role.value: loop.dead_letters for loop in self.loops}}

    def run(self) -> int:
        config = self.config
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _s, _f: stop.set())
        if config.metrics_port is not None:
            serve(config.metrics_port, self.readiness, metrics.REGISTRY)
        try:
            self.bus = NatsBus(config.nats, stream=config.stream, subjects=(f"{config.prefix}.>",),
                               ack_wait=config.ack_wait, max_in_flight=config.max_in_flight,
                               duplicate_window=DUPLICATE_WINDOW, reconnect_forever=True,
                               name=f"healthswarm-{config.role.value}-{socket.gethostname()}-{os.getpid()}")
        except BusError as exc:
            raise ConfigError(str(exc)) from None
        relay = Relay(self.store, self.bus)
        works: list[RoleWork] = []
        try:
            for role in config.role.stages():
                work = role_work(role, self.store, config, self.workspace, relay.handoff)
                works.append(work)
                subscription = self.bus.subscribe(config.filter_subject(role), config.group(role),
                                                  max_in_flight=config.max_in_flight, ack_wait=config.ack_wait)
                # --batch counts events: the detect role's messages hold up to EVENTS_PER_MESSAGE each
                batch = max(1, config.batch // EVENTS_PER_MESSAGE) if role is Role.detect else config.batch
                self.loops.append(StageLoop(role, work, subscription, self.bus, config.dead_subject(role),
                                            batch=batch, max_deliveries=config.max_deliveries,
                                            on_commit=relay.wake, flush_every=config.flush_interval))
            log.info("worker started", extra={"role": config.role.value, "db": redact(config.db),
                                               "nats": redact(config.nats), "stream": config.stream,
                                               "groups": [config.group(r) for r in config.role.stages()]})
            threads = [threading.Thread(target=loop.run, args=(stop,), name=f"role-{loop.role.value}", daemon=True)
                       for loop in self.loops]
            # the relay outlives the role loops: what their last batch and last flush queued is published too
            loops_done = threading.Event()
            relaying = threading.Thread(target=relay.run, args=(loops_done,), name="outbox-relay", daemon=True)
            probe = threading.Thread(target=self._probe, args=(stop,), name="lag-probe", daemon=True)
            for thread in [*threads, relaying, probe]:
                thread.start()
            while not stop.wait(0.5):
                if not any(t.is_alive() for t in threads):
                    break
            for thread in threads:
                thread.join()
            log.info("stopping: batches in flight finished and roles flushed; flushing the outbox")
            loops_done.set()
            relay.wake.set()
            relaying.join()
        finally:
            for work in works:
                work.close()
            for loop in self.loops:
                loop.subscription.close()
            self.bus.close()
        log.info("worker stopped")
        return 0

    def _probe(self, stop: threading.Event) -> None:
        """Lag (what each group has still to take) and the outbox backlog, for the metrics."""
        while not stop.is_set():
            metrics.sample_thread_cpu()
            for loop in self.loops:
                try:
                    metrics.LAG.labels(loop.role.value).set(loop.subscription.lag())
                except Exception:  # NATS away: the figure stays as last seen
                    continue
            with contextlib.suppress(Exception):  # database away: the figure stays as last seen
                metrics.OUTBOX_BACKLOG.set(self._backlog())
            stop.wait(PROBE_EVERY)

    def _backlog(self) -> int:
        with self.store.read() as conn:
            return outbox.backlog(conn)
