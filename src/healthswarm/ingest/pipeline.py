"""The ingest pipeline: records from a format → enriched, keyed events → one store transaction per
batch (events, quarantined rejects, the source's checkpoint) → the bus.

Exactly once, by construction rather than by care:
- every event gets an idempotency key from where it was read (`event_key(identity, position)`), and
  the store ignores a key it already holds, so reading a record twice stores it once;
- a batch and the checkpoint that says "everything up to here is stored" commit in one transaction,
  so after a crash reading resumes exactly where the last committed batch ended;
- message sources (MQTT, NATS) ack a message only after the transaction holding its events commits;
  a redelivered message yields the same keys.

Events are published to the bus inside the batch's transaction, before the commit, and only those
newly stored: a crash between publishing and committing re-publishes them on restart (with the same
key, which JetStream's duplicate window and consumers use to drop the copy), so the bus gets every
stored event at least once and never one that was already published by an earlier run's commit.

Durability on SQLite (WAL, synchronous=NORMAL; see store/db.py): a commit is in the WAL file when
`commit()` returns, so a killed process (SIGKILL, OOM, a crash) loses nothing committed, and its
checkpoint with it. Only an operating-system crash or power loss can lose the last few commits
(NORMAL does not fsync the WAL on each commit); the batch and its checkpoint are then lost
together, so reading resumes from the older checkpoint and exactly-once still holds.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import io
import multiprocessing
import pickle
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import chain
from multiprocessing.connection import Connection as PipeEnd
from typing import Any, Protocol

from sqlalchemy import Connection

from healthswarm.bus.base import Bus
from healthswarm.bus.codec import event_to_bytes
from healthswarm.ingest import containers
from healthswarm.ingest.containers import available_formats, detect, unrecognised_reason
from healthswarm.ingest.enrich import Enricher
from healthswarm.ingest.formats import Format
from healthswarm.ingest.limits import Limits
from healthswarm.ingest.limits import current as current_limits
from healthswarm.model import Event, Reject, event_key
from healthswarm.model.event import event_keyer
from healthswarm.store import Store
from healthswarm.store.db import create_store_engine
from healthswarm.store.events import (
    _SQLITE_ROWS,
    _row_tuples,
    _sqlite_insert,
    copy_rows,
    insert_events,
    insert_rejects,
    set_checkpoint,
)
from healthswarm.store.inventory import load_inventory

DEFAULT_BATCH = 5_000
EVENTS_SUBJECT = "healthswarm.events"
# parsers say where in their reasons ("line 12: invalid JSON …"); counts group by the rest
_WHERE = re.compile(r"^(?:line|record|message|entry|member) \d+[:,]\s*")
# with the automatic collector paused (see _collect_per_batch), a full collection every this many batches
_FULL_GC_BATCHES = 64
_COLUMNS = 10  # of an event row (store/events.py, _sqlite_insert), the key first


def reason_kind(reason: str) -> str:
    """A reject reason without its leading location, so counts group alike problems."""
    return _WHERE.sub("", reason, count=1)


@contextmanager
def _collect_per_batch() -> Iterator[Callable[[], None]]:
    """Pause CPython's automatic garbage collector while a stream is read; yields the function to
    call after each batch is released, which collects instead.

    Why: a batch holds thousands of events (each a few dicts and lists) until it commits. The
    automatic collector runs every 700 new objects, so it traverses the growing batch again and
    again and promotes it, which then triggers full collections of the whole heap: measured at 20-25 %
    of ingestion's CPU time. Events hold no reference cycles; collecting the young generations once
    per released batch (when they are nearly empty) and the whole heap every _FULL_GC_BATCHES batches
    keeps memory as bounded as before (other threads' cyclic garbage included) at a negligible cost.
    Leaves the collector alone when the caller (or another pipeline's thread) has already paused it.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    batches = 0

    def collect() -> None:
        nonlocal batches
        if paused:
            batches += 1
            gc.collect(2 if batches % _FULL_GC_BATCHES == 0 else 1)

    try:
        yield collect
    finally:
        if paused:
            gc.enable()


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so a kill -9 of the ingester ends its writer too
    (an open transaction of the writer is then rolled back, as if one process had been killed)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _insert_sqlite_rows(conn: Connection, rows: list[tuple[Any, ...]], key_of: Callable[[int | str], str]) -> int:
    """The rows (keys as their position part) as multi-row INSERTs (store/events.py); the number newly stored."""
    stored = 0
    for first in range(0, len(rows), _SQLITE_ROWS):
        part = rows[first : first + _SQLITE_ROWS]
        values = list(chain.from_iterable(part))
        values[0::_COLUMNS] = map(key_of, values[0::_COLUMNS])  # each row's first value: its key
        result = conn.exec_driver_sql(_sqlite_insert(len(part), False), tuple(values))
        stored += max(result.rowcount, 0)
    return stored


def _store_rows(url: str, pipe: PipeEnd, parents_end: PipeEnd) -> None:
    """The writer process: for each batch received, its event rows, rejects and checkpoint in one transaction,
    answered with (stored, quarantined), or with the error's text. Keys arrive as their position part (see
    _WriterProcess) and are hashed here."""
    parents_end.close()  # the fork's copy: open here, it would keep the end of input from ever arriving
    _die_with_parent()
    # Ctrl-C and `kill`/systemd reach the process group: the parser handles them (its summary; the batch in flight
    # committed), and this process ends when its input does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.freeze()  # what the fork inherited is never garbage: not traversed, its pages not copied
    gc.disable()  # rows are tuples of strings, freed by reference counting; nothing cyclic is made here
    engine = create_store_engine(url)
    postgres = engine.dialect.name == "postgresql"
    keyers: dict[str, Callable[[int | str], str]] = {}
    try:
        while True:
            try:
                data = pipe.recv_bytes()
            except EOFError:  # the parser is done (or gone)
                return
            rows, rejects, reject_keys, identity, checkpoint = pickle.loads(data)
            del data
            key_of = keyers.get(identity) or keyers.setdefault(identity, event_keyer(identity))
            try:
                with engine.begin() as conn:
                    if postgres:
                        stored = copy_rows(conn, [(key_of(row[0]), *row[1:]) for row in rows])[0]
                    else:
                        stored = _insert_sqlite_rows(conn, rows, key_of)
                    quarantined = insert_rejects(conn, rejects, [key_of(k) for k in reject_keys])
                    if checkpoint is not None:
                        set_checkpoint(conn, *checkpoint)
            except Exception as exc:  # told to the parent, which raises it where the thread writer would
                pipe.send(f"{type(exc).__name__}: {exc}")
                return
            pipe.send((stored, quarantined))
            del rows
    finally:
        engine.dispose()


class _WriterProcess:
    """Batches committed in order by a forked process, one at most in flight: the parser (this process) builds a
    batch's rows, sends them, and parses the next batch while the writer inserts and commits on the other core.

    Why a process and not the writer thread: parsing holds the GIL, so a thread overlaps only SQLite's own steps,
    and not at all the binding of parameters and the driver's work; a process overlaps the whole store side. What
    crosses the pipe are the rows as built for the INSERT (strings and ints: cheap to pickle), not events.
    Forked (not spawned): the child starts at once with every module imported; it opens its own connection.
    The parser leaves each key as its position part (`event_key`'s second argument) and the writer hashes it:
    the parser is the busier side. On PostgreSQL the writer streams the rows by COPY (store/events.py
    `copy_rows`), so the server's work on a batch overlaps the parsing of the next one too.
    """

    def __init__(self, url: str, postgres: bool) -> None:
        self.zone = "+00" if postgres else ""  # of the rows' timestamp text (store/events.py _row_tuples)
        ctx = multiprocessing.get_context("fork")
        self._pipe, child = ctx.Pipe()
        self._process = ctx.Process(target=_store_rows, args=(url, child, self._pipe), name="ingest-writer",
                                    daemon=True)
        self._process.start()
        child.close()

    def submit(self, rows: list[tuple[Any, ...]], batch: _Batch, identity: str,
               checkpoint: tuple[str, str, int] | None) -> None:
        out = io.BytesIO()
        pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
        pickler.fast = True  # no memo: nothing in a batch is shared or cyclic, and the memo was 2/3 of the cost
        pickler.dump((rows, batch.rejects, batch.reject_keys, identity, checkpoint))
        self._pipe.send_bytes(out.getbuffer())

    def result(self) -> tuple[int, int]:
        """(stored, quarantined) of the batch submitted last, once it is committed."""
        try:
            reply = self._pipe.recv()
        except (EOFError, OSError):
            raise RuntimeError(f"the ingest writer process ended (exit code {self._process.exitcode})") from None
        if isinstance(reply, str):
            raise RuntimeError(f"the ingest writer process failed: {reply}")
        return reply

    def close(self) -> None:
        self._pipe.close()  # the writer sees the end of its input and exits
        self._process.join()


@dataclass
class IngestStats:
    events: int = 0  # parsed into events (new or not)
    stored: int = 0  # of which newly stored
    rejects: Counter[str] = field(default_factory=Counter)  # rejects by reason (new or not)
    quarantined: int = 0  # rejects newly stored in quarantine
    messages: int = 0  # MQTT / NATS messages acked
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return self.events - self.stored


class _Batch:
    __slots__ = ("events", "reject_keys", "rejects")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejects: list[Reject] = []
        self.reject_keys: list[str] = []

    def __len__(self) -> int:
        return len(self.events) + len(self.rejects)


class Message(Protocol):
    """What the message sources hand over (bus messages and MQTT messages both fit)."""

    subject: str
    data: bytes
    id: str

    def ack(self) -> None: ...


class MessageSource(Protocol):
    """Fetches messages; may also offer `ack_all(messages)` to ack a batch at once."""

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> Sequence[Message]: ...


class Pipeline:
    def __init__(
        self,
        store: Store,
        *,
        bus: Bus | None = None,
        enricher: Enricher | None = None,
        batch_size: int = DEFAULT_BATCH,
        subject: str = EVENTS_SUBJECT,
        overlap: bool = False,
        writer_process: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or current_limits()  # what one input may cost (containers.py)
        self.bus = bus
        self.enricher = enricher if enricher is not None and not enricher.empty else None
        self.batch_size = batch_size
        self.subject = subject
        self.stats = IngestStats()
        self.per_source: dict[str, IngestStats] = {}
        url = store.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            overlap = False  # an in-memory SQLite database exists per thread: one thread must write it
        # `writer_process`: streams commit in a forked writer process (_WriterProcess), into PostgreSQL or an SQLite
        # file, when nothing must see the stored events (no bus; a subclass announcing them asks for none). Fork it
        # here, before the caller starts threads (a progress bar).
        self._process: _WriterProcess | None = None
        postgres = url.get_backend_name() == "postgresql"
        if (writer_process and bus is None and (postgres or url.database not in (None, "", ":memory:"))
                and "fork" in multiprocessing.get_all_start_methods()):  # not on Windows: one process there
            self._process = _WriterProcess(url.render_as_string(hide_password=False), postgres)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer") if overlap else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._process is not None:
            self._process.close()
            self._process = None

    @classmethod
    def for_store(cls, store: Store, organisation: str = "", **kwargs: object) -> Pipeline:
        """A pipeline enriching from the inventory held in `store`."""
        with store.read() as conn:
            inventory = load_inventory(conn)
        return cls(store, enricher=Enricher(inventory.assets, organisation), **kwargs)  # type: ignore[arg-type]

    # --- streams (files, stdin) ------------------------------------------------------------

    def run(
        self,
        records: Iterable[Event | Reject],
        *,
        source: str,
        identity: str,
        checkpoint: bool = True,
        on_commit: Callable[[int], None] | None = None,
    ) -> int | None:
        """Store the records of one source; returns the last position committed (None if none).

        Records sharing one position (several events from one record) get ordinal suffixes in their
        keys, and a batch is never cut between them: the checkpoint must not fall inside a record.
        No checkpoint is written while nothing but rejects was read: an input read with the wrong
        format (forced, or sniffed from a misleading head) is read again in full next time, when the
        right one is given — its rejects are keyed, so nothing is quarantined twice.
        """
        stats = self.per_source.setdefault(source, IngestStats())
        events_before = stats.events
        started = time.perf_counter()
        batch = _Batch()
        last: int | None = None
        committed: int | None = None
        same = 0
        pending: Future[None] | None = None
        writer = self._process if not self.announces else None
        in_flight: tuple[int, list[Reject], IngestStats] | None = None  # submitted to `writer`, not yet committed
        # with the writer process, keys are left as their position part, which the writer hashes (_WriterProcess)
        key_of: Callable[[int | str], str] = event_keyer(identity) if writer is None else str
        enrich = self.enricher.enrich if self.enricher is not None else None

        def flush(position: int) -> None:
            # With `overlap`, batches commit one at a time and in order on a writer thread while the next
            # batch is parsed here (SQLite steps a whole multi-row INSERT, and psycopg waits for the server,
            # with the GIL released). Off by default: on 2 shared cores it did not pay (100,000 EVE events
            # at load 11-13, medians of 5: 8.1 s wall and 2.02 CPU s against 5.8 s and 1.77 on one thread;
            # bench/ingest.py reports both ways).
            nonlocal pending, in_flight
            if pending is not None:
                pending.result()  # re-raises a failed commit here, before anything newer is committed
                pending = None
            parsed = stats.events > events_before
            job = (batch, stats, (source, identity, position) if checkpoint and parsed else None)
            if writer is not None:
                rows = _row_tuples(batch.events, writer.zone)
                if in_flight is not None:  # rows built while the writer committed the batch before
                    done, in_flight = in_flight, None
                    self._count(*done, *writer.result())
                writer.submit(rows, batch, identity, job[2])
                in_flight = (len(batch.events), batch.rejects, stats)  # not the events: memory
            elif self._writer is None:
                self._commit(*job)
            else:
                pending = self._writer.submit(self._commit, *job)

        with _collect_per_batch() as collect:
            try:
                events = batch.events
                held, batch_size = 0, self.batch_size  # len(batch), counted: a call per record was measurable
                for item in records:
                    position = item.position
                    if position == last:
                        same += 1
                    else:
                        if held >= batch_size and last is not None:
                            flush(last)
                            if on_commit is not None and committed is not None:
                                on_commit(committed)  # the batch before: known committed now
                            committed = last
                            batch = _Batch()
                            events = batch.events
                            held = 0
                            collect()
                        last, same = position, 0
                    held += 1
                    key = key_of(position if not same else f"{position}#{same}")
                    if type(item) is Event:  # _add, inlined for the common case: once per event
                        item.key = key
                        if enrich is not None:
                            enrich(item)
                        events.append(item)
                        stats.events += 1
                    else:
                        self._add(batch, item, key, stats)
                if last is not None and last != committed:
                    flush(last)
                    committed = last
            finally:
                if pending is not None:
                    pending.result()
                if in_flight is not None:
                    done, in_flight = in_flight, None
                    self._count(*done, *writer.result())  # type: ignore[union-attr]
        if on_commit is not None and committed is not None:
            on_commit(committed)
        elapsed = time.perf_counter() - started
        stats.seconds += elapsed
        self.stats.seconds += elapsed
        return committed

    def quarantine_unrecognised(self, source: str, identity: str, head: bytes) -> None:
        """One quarantine record for input no format recognises (keyed: once per content)."""
        stats = self.per_source.setdefault(source, IngestStats())
        batch = _Batch()
        self._add(batch, Reject(source, 0, unrecognised_reason(), head[:4096]), event_key(identity, "unrecognised"),
                  stats)
        self._commit(batch, stats, None)

    # --- messages (MQTT, NATS) -------------------------------------------------------------

    def run_messages(self, messages: Sequence[Message], *, scheme: str, fmt: Format | None, name: str,
                     ack_all: Callable[[Sequence[Message]], None] | None = None) -> None:
        """Store the events of `messages` in one transaction, then ack them.

        A message's key part is its stable id when the source has one (the JetStream stream
        sequence), else a hash of its bytes (MQTT redelivers without an id that survives a restart).
        """
        if not messages:
            return
        batch = _Batch()
        stats = self.per_source.setdefault(name, IngestStats())
        stats.messages += len(messages)
        for message in messages:
            source = f"{scheme}://{message.subject}"
            ident = message.id or hashlib.blake2b(message.data, digest_size=12).hexdigest()
            identity = f"{scheme}:{message.subject}:{ident}"
            opened = containers.Opened(io.BytesIO(message.data), source, fmt, limits=self.limits)
            if not opened.recognised:
                self._add(batch, Reject(source, 0, unrecognised_reason(), message.data[:4096]),
                          event_key(identity, "unrecognised"), stats)
                continue
            last, same = None, 0
            for item in opened.records(0):  # a compressed or archived payload too, within the limits
                same = same + 1 if item.position == last else 0
                last = item.position
                self._add(batch, item, event_key(identity, item.position if not same else f"{item.position}#{same}"),
                          stats)
        self._commit(batch, stats, None)
        self.stats.messages += len(messages)
        if ack_all is not None:
            ack_all(messages)
        else:
            for message in messages:
                message.ack()

    def consume(
        self,
        source: MessageSource,
        *,
        scheme: str,
        fmt: Format | None,
        name: str,
        should_stop: Callable[[], bool],
        idle: float | None = None,
        max_messages: int = 1_000,
        latency: float = 0.2,
    ) -> None:
        """Fetch, store, ack until `should_stop()` or, with `idle`, until that long without messages."""
        last_activity = time.monotonic()
        ack_all = getattr(source, "ack_all", None)  # one round trip per batch where the source can
        while not should_stop():
            messages = source.fetch(max_messages, latency)
            if not messages:
                if idle is not None and time.monotonic() - last_activity >= idle:
                    return
                continue
            last_activity = time.monotonic()
            self.run_messages(messages, scheme=scheme, fmt=fmt, name=name, ack_all=ack_all)

    # --- internals ---------------------------------------------------------------------------

    def _add(self, batch: _Batch, item: Event | Reject, key: str, stats: IngestStats) -> None:
        if isinstance(item, Event):
            item.key = key
            if self.enricher is not None:
                self.enricher.enrich(item)
            batch.events.append(item)
            stats.events += 1
        else:
            batch.rejects.append(item)
            batch.reject_keys.append(key)
            stats.rejects[reason_kind(item.reason)] += 1

    #: set by a subclass whose `_announce` takes the newly stored events (ingest/stage.py)
    announces = False

    def _announce(self, conn: Connection, stored: list[Event]) -> None:
        """Tell the next stage, in the commit's transaction, about the events this batch newly stored."""
        if self.bus is not None:
            self.bus.publish_many([(f"{self.subject}.{e.fields.get('observer.type') or 'unknown'}",
                                    event_to_bytes(e), e.key) for e in stored])

    def _commit(self, batch: _Batch, stats: IngestStats, checkpoint: tuple[str, str, int] | None) -> None:
        with self.store.transaction() as conn:
            stored, keys = insert_events(conn, batch.events, want_keys=self.bus is not None or self.announces)
            quarantined = insert_rejects(conn, batch.rejects, batch.reject_keys)
            if checkpoint is not None:
                set_checkpoint(conn, *checkpoint)
            if keys:
                self._announce(conn, [e for e in batch.events if e.key in keys])
        self._count(len(batch.events), batch.rejects, stats, stored, quarantined)

    def _count(self, events: int, rejects: list[Reject], stats: IngestStats, stored: int, quarantined: int) -> None:
        stats.stored += stored
        stats.quarantined += quarantined
        if stats is not self.stats:
            self.stats.events += events
            self.stats.stored += stored
            self.stats.quarantined += quarantined
            self.stats.rejects.update(reason_kind(r.reason) for r in rejects)


__all__ = ["DEFAULT_BATCH", "EVENTS_SUBJECT", "IngestStats", "Message", "MessageSource", "Pipeline",
           "available_formats", "detect", "reason_kind", "unrecognised_reason"]
