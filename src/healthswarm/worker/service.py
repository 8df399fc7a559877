"""A worker process: connect, bind one durable per stage, run the stage loops, the outbox relay, the lag probe
and the HTTP endpoints; on SIGTERM/SIGINT finish the batches in flight, flush the stages, then the outbox, and
exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import text

from healthswarm.store import Store
from healthswarm.worker import health, metrics, outbox
from healthswarm.worker.config import Role, WorkerConfig, redact
from healthswarm.worker.correlate import CorrelateStage
from healthswarm.worker.detect import DetectStage
from healthswarm.worker.ingest import IngestStage
from healthswarm.worker.jetstream import Client, bind, connect, ensure_stream
from healthswarm.worker.loop import StageLoop
from healthswarm.worker.relay import Relay
from healthswarm.worker.stage import Stage

log = logging.getLogger("healthswarm.worker")
PROBE_EVERY = 5.0


def _stage(role: Role, store: Store, config: WorkerConfig, workspace: Path | None) -> Stage:
    if role is Role.ingest:
        return IngestStage(store, config)
    if role is Role.detect:
        return DetectStage(store, config, workspace)
    return CorrelateStage(store, config)


class Worker:
    def __init__(self, config: WorkerConfig, store: Store, workspace: Path | None = None) -> None:
        self.config = config
        self.store = store
        self.workspace = workspace
        self.nc: Client | None = None
        self.loops: list[StageLoop] = []

    def readiness(self) -> tuple[dict[str, bool], dict[str, Any]]:
        """Called from the HTTP thread: a live database round trip, what the loop knows of NATS, and whether
        every stage's durable is bound. A standby correlator is ready (it takes over when the active one goes)."""
        try:
            with self.store.read() as conn:
                conn.execute(text("SELECT 1"))
            db = True
        except Exception:
            db = False
        bound = len(self.loops) == len(self.config.role.stages())
        checks = {"database": db, "nats": bool(self.nc and self.nc.is_connected), "consumers_bound": bound}
        return checks, {"active": {loop.role.value: loop.active for loop in self.loops}}

    async def run(self) -> int:
        config = self.config
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if config.metrics_port is not None:
            health.serve(config.metrics_port, self.readiness)
        self.nc = await connect(config.nats, f"healthswarm-worker-{socket.gethostname()}-{os.getpid()}")
        js = self.nc.jetstream()
        await ensure_stream(js, config.stream, [f"{config.prefix}.>"])
        created = str((await js.stream_info(config.stream)).created or "")
        relay = Relay(self.store, js)
        stages: list[Stage] = []
        try:
            for role in config.role.stages():
                stage = await asyncio.to_thread(_stage, role, self.store, config, self.workspace)
                stages.append(stage)
                consumer = await bind(js, config.stream, config.durable(role), config.filter_subject(role),
                                      config.max_in_flight, config.ack_wait)
                self.loops.append(StageLoop(role, stage, consumer, created, config.batch, relay.wake,
                                            config.flush_interval))
            log.info("worker started", extra={"role": config.role.value, "db": redact(config.db),
                                               "nats": redact(config.nats), "stream": config.stream,
                                               "durables": [config.durable(r) for r in config.role.stages()]})
            probe = asyncio.create_task(self._probe(stop))
            # the relay outlives the stage loops: what their last batch and last flush queued is published too
            loops_done = asyncio.Event()
            relaying = asyncio.create_task(relay.run(loops_done))
            await asyncio.gather(*(stage_loop.run(stop) for stage_loop in self.loops))
            log.info("stopping: batches in flight finished and stages flushed; flushing the outbox")
            loops_done.set()
            relay.wake.set()
            await relaying
            probe.cancel()
        finally:
            for stage in stages:
                await asyncio.to_thread(stage.close)
            # acks are fire-and-forget publishes: flush them out before closing (drain would wait on the
            # pull subscriptions' long polls instead)
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            await self.nc.close()
        log.info("worker stopped")
        return 0

    async def _probe(self, stop: asyncio.Event) -> None:
        """Lag (the durable's num_pending) and the outbox backlog, for the metrics."""
        while not stop.is_set():
            for stage_loop in self.loops:
                try:
                    metrics.LAG.labels(stage_loop.role.value).set(await stage_loop.consumer.lag())
                except Exception:  # NATS away: the figure stays as last seen
                    continue
            with contextlib.suppress(Exception):  # database away: the figure stays as last seen
                metrics.OUTBOX_BACKLOG.set(await asyncio.to_thread(self._backlog))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_EVERY)

    def _backlog(self) -> int:
        with self.store.read() as conn:
            return outbox.backlog(conn)
