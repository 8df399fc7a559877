"""The agent's sources, each in its own thread, all into the ingest pipeline (ingest/pipeline.py) with its
checkpoints: followed files and folders (ingest/sources/follow.py), the syslog receiver
(ingest/sources/syslog.py), MQTT and NATS subscriptions (ingest/sources/mqtt.py, nats.py) and stdin.

Every store write of the agent goes through one lock (`AgentPipeline.write_lock`): SQLite has one writer
anyway, and a transaction that reads before it writes (the detection step) could otherwise fail with
"database is locked" instead of waiting. After each commit the pipeline publishes a wake-up on the bus
(`STORED_SUBJECT`), which the detection loop waits on.

`start_sources` starts them (not stdin) in the agent's process or, with `[agent] ingest_process`, in the ingest
process of agent/ingest_process.py, which announces its commits to the agent over a pipe instead.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select

from healthswarm.agent.config import AgentConfig, FileSource
from healthswarm.bus.base import Bus
from healthswarm.errors import ConfigError
from healthswarm.ingest.formats import Format, get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.stage import IngestStage
from healthswarm.store import Store
from healthswarm.store.tables import events

log = logging.getLogger("healthswarm.agent.sources")
STORED_SUBJECT = "healthswarm.agent.stored"
# names a log rotation gives the files it moved aside: app.log.1, app.log.2.gz, app.log-20261201, *.gz
ROTATED = re.compile(r"(\.\d+(\.(gz|bz2|xz|zst))?|[-_.]\d{8}(\d{2,6})?(\.(gz|bz2|xz|zst))?|\.(gz|bz2|xz|zst))$")


class Handoff:
    """Claim checks for freshly stored events: the ingest commit that stored ids (lo, hi] keeps its parsed
    events here, so that detection judges them without reading them back from the store (reading back and
    decoding costs as much CPU as the whole detection suite). Only complete, in-order batches are kept, and
    at most `limit` events in all: anything else detection reads from the store, by the same cursor."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._lock = threading.Condition()
        self._ranges: dict[int, tuple[int, list[Any]]] = {}  # lo → (hi, events)
        self._held = 0

    def put(self, lo: int, hi: int, events: list[Any]) -> bool:
        with self._lock:
            if self._held + len(events) > self.limit:
                return False
            self._ranges[lo] = (hi, events)
            self._held += len(events)
            return True

    def take(self, cursor: int) -> tuple[list[Any], int] | None:
        """The events stored right after `cursor` and the id they end at, if held; drops what is behind it."""
        with self._lock:
            for lo in [lo for lo, (hi, _) in self._ranges.items() if hi <= cursor]:
                self._held -= len(self._ranges.pop(lo)[1])
            found = self._ranges.pop(cursor, None)
            if found is not None:
                self._held -= len(found[1])
            self._lock.notify_all()
            return None if found is None else (found[1], found[0])

    def wait_for_room(self, count: int, stop: threading.Event | None, timeout: float = 10.0) -> None:
        """Until `count` more events fit (or none are held), a stop is asked for, or `timeout` seconds passed.
        A source that can wait (a file stays where it is, a broker keeps what is not acked) thus lets detection
        catch up rather than storing events that detection must read back and decode again (3 of the detection
        thread's 60 CPU s in a profiled drain). Detection that takes nothing for `timeout` does not stop ingest."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._held and self._held + count > self.limit and not (stop is not None and stop.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._lock.wait(min(left, 0.25))


class Room(Protocol):
    """What a source that can wait waits for before each commit: room for `count` more events that detection has
    not judged yet (Handoff in the agent's process; ingest_process.JudgedRoom in the ingest process)."""

    def wait_for_room(self, count: int, stop: threading.Event | None, timeout: float = 10.0) -> None: ...


class AgentPipeline(IngestStage):
    """The ingest stage (ingest/stage.py, as the scale-out ingest role runs it) whose commits take the agent's
    write lock, leave their events in the `handoff`, and announce the ids they stored on the bus
    (`STORED_SUBJECT`: "lo hi"), which wakes the detection loop.

    Ids: SQLite numbers rows in insertion order and every writer of the agent holds the lock, so a batch whose
    every event was new holds the ids just above the largest id before it, in the batch's order."""

    def __init__(self, store: Store, *, write_lock: threading.Lock, bus: Bus | None = None,
                 handoff: Handoff | None = None, room: Room | None = None, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.write_lock = write_lock
        self.wake_bus = bus
        self.handoff = handoff
        self.room = room if room is not None else handoff  # what a source that can wait waits for
        self.on_stored: Callable[[int], None] | None = None

    stop: threading.Event | None = None  # set: a read in progress ends at the next record boundary
    waits_for_detection = False  # a source that can wait: each commit waits for room in the handoff

    def run(self, records: Any, **kwargs: Any) -> int | None:  # type: ignore[override]
        return super().run(self._until_stopped(records), **kwargs)

    def _until_stopped(self, records: Any) -> Any:
        """The records until a stop is asked for, never cutting between the events of one record (they share a
        position): the pipeline then commits what it has with its checkpoint, and the next start resumes there."""
        last = None
        for item in records:
            position = item.position
            if last is not None and position != last and self.stop is not None and self.stop.is_set():
                return
            last = position
            yield item

    def _max_id(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)

    def _commit(self, batch: Any, stats: Any, checkpoint: tuple[str, str, int] | None) -> None:
        before = stats.stored
        if self.waits_for_detection and self.room is not None:
            self.room.wait_for_room(len(batch.events), self.stop)
        with self.write_lock:
            lo = self._max_id() if self.handoff is not None else 0
            super()._commit(batch, stats, checkpoint)
            stored = stats.stored - before
            if stored and self.handoff is not None:
                hi = self._max_id()
                if stored == len(batch.events) == hi - lo:
                    self.handoff.put(lo, hi, batch.events)
            if stored and self.wake_bus is not None:
                self.wake_bus.publish(STORED_SUBJECT, f"{lo} {lo + stored}".encode())
        if stored and self.on_stored is not None:
            self.on_stored(stored)


def choose_format(name: str, where: str) -> Format | None:
    if not name:
        return None
    try:
        return get_format(name)
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None


def matching_files(source: FileSource, config: AgentConfig) -> tuple[list[Path], list[Path]]:
    """(files matched now, explicit file paths to wait for) of one files source; rotated names left out."""
    found: list[Path] = []
    waiting: list[Path] = []
    for text in source.paths:
        path = config.path(text)
        if glob.has_magic(str(path)):
            found.extend(Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file())
        elif path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            waiting.append(path)  # a file that may not exist yet: followed once it does
    return [p for p in found if not ROTATED.search(p.name)], waiting


class FileWatcher:
    """Follows every file of the [[sources.files]] tables, picking up new files every `rescan` seconds."""

    def __init__(self, pipeline: Pipeline, config: AgentConfig) -> None:
        from healthswarm.ingest.sources.follow import Follower

        self._follower = Follower
        self.pipeline = pipeline
        self.config = config
        self.followers: dict[Path, Any] = {}
        self.formats = [choose_format(s.format, f"sources.files[{i}].format") for i, s in enumerate(config.files)]

    def rescan(self) -> None:
        for source, fmt in zip(self.config.files, self.formats, strict=True):
            found, waiting = matching_files(source, self.config)
            for path in [*found, *waiting]:
                key = path.resolve() if path.exists() else path.absolute()
                if key not in self.followers:
                    self.followers[key] = self._follower(self.pipeline, path, fmt)

    def run(self, stop: threading.Event) -> None:
        rescan_every = min((s.rescan for s in self.config.files), default=2.0) or 2.0
        interval, next_scan = 0.05, 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_scan:
                    self.rescan()
                    next_scan = time.monotonic() + rescan_every
                busy = False
                for follower in list(self.followers.values()):
                    try:
                        busy |= follower.step()
                    except OSError as exc:  # a file vanished or turned unreadable mid-read: try it again later
                        log.warning("file source: %s: %s", follower.path, exc)
                if not busy:
                    stop.wait(interval)
                interval = 0.05 if busy else min(interval * 2, 0.25)  # a trickle waits ≤ 0.25 s
        finally:
            for follower in self.followers.values():
                follower._close()


#: the threads of the sources that stop at `stop` and commit what they hold (syslog stops through its receiver)
SOURCE_THREADS = ("agent-files", "agent-mqtt", "agent-nats")


def start_sources(config: AgentConfig, pipeline: Callable[[bool], AgentPipeline], thread: Callable[..., None],
                  stop: threading.Event) -> Any:
    """The configured sources but stdin, each started with `thread(target, name, *args)` and a pipeline of its own
    (`pipeline(can_wait)`); the syslog receiver, or None. A source that cannot start raises ConfigError."""
    if config.files:
        watcher = FileWatcher(pipeline(True), config)
        thread(watcher.run, "agent-files", stop)
    syslog = start_syslog(config, pipeline(False)) if config.syslog.enabled else None
    for kind in ("mqtt", "nats"):
        source = getattr(config, kind)
        fmt = choose_format(source.format, f"sources.{kind}.format")
        for url in source.urls:
            if not url.startswith(f"{kind}://"):
                raise ConfigError(f"sources.{kind}.urls: {url!r}: expected {kind}://host:port/…")
            thread(consume_url, f"agent-{kind}", pipeline(True), url, fmt, stop)
    return syslog


def start_syslog(config: AgentConfig, pipeline: AgentPipeline) -> Any:
    """The syslog receiver of [sources.syslog], listening."""
    from healthswarm.ingest.sources.syslog import SyslogReceiver

    s = config.syslog
    tls = None
    if s.tls_cert or s.tls_key:
        import ssl

        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(config.path(s.tls_cert), config.path(s.tls_key or s.tls_cert))
    try:
        return SyslogReceiver(pipeline, udp=s.udp, tcp=s.tcp, tls=tls, batch=s.batch, latency=s.latency).start()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sources.syslog: cannot listen: {exc}") from None


def syslog_bound(syslog: Any) -> dict[str, str]:
    """The addresses a syslog receiver actually listens on (port 0 picks a free one)."""
    out = {}
    if (udp := syslog.udp_address) is not None:
        out["syslog_udp"] = f"{udp[0]}:{udp[1]}"
    if (tcp := syslog.tcp_address) is not None:
        out["syslog_tcp"] = f"{tcp[0]}:{tcp[1]}"
    return out


def consume_url(pipeline: Pipeline, url: str, fmt: Format | None, stop: threading.Event) -> None:
    """An MQTT or NATS subscription until `stop`; reconnects after a failure (the broker keeps what was not acked)."""
    from healthswarm.bus.base import BusError

    while not stop.is_set():
        try:
            if url.startswith("mqtt://"):
                from healthswarm.ingest.sources.mqtt import MqttSource

                with MqttSource.from_url(url, client_prefix="healthswarm-agent") as source:
                    pipeline.consume(source, scheme="mqtt", fmt=fmt, name=url, should_stop=stop.is_set)
            else:
                from healthswarm.ingest.sources.nats import NatsSource

                with NatsSource.from_url(url, group="healthswarm-agent") as source:
                    pipeline.consume(source, scheme="nats", fmt=fmt, name=url, should_stop=stop.is_set)
        except (BusError, OSError) as exc:
            log.warning("source %s: %s; retrying in 5 s", url, exc)
            stop.wait(5.0)
