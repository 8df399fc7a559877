"""Repository of events, quarantined input and source checkpoints.

Writes are idempotent: every event and reject carries a key, and `INSERT … ON CONFLICT (key) DO
NOTHING` (the dialect's own insert, on SQLite and PostgreSQL alike) stores it at most once however
often it is read. The caller puts a batch and its checkpoint in one transaction (`Store.transaction`):
either both are committed or neither, which is what makes a kill -9 during ingestion harmless.

JSON columns are written as text serialised by orjson rather than through the JSON type's `json.dumps`:
on the write path that is most of the cost of an insert. An event's `original` is not serialised at all
when the parser kept the JSON text it was read from (`Event.original_json`): those bytes are stored as
they are. On PostgreSQL events go in by COPY (see `copy_rows`), a fraction of the cost per row of
an INSERT with parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import chain, pairwise
from typing import Any

import orjson
from sqlalchemy import Connection, Text, cast, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from healthswarm.model import Event, Reject
from healthswarm.store.tables import checkpoints, events, quarantine

# Executemany chunks: large enough to amortise a round trip, small enough to bound memory.
CHUNK = 5_000


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _insert(conn: Connection, table: Any) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"events store: unsupported database {dialect!r}")


# SQLite: rows go in slices, each one multi-row INSERT whose sqlite3_step does the whole slice with the GIL
# released (the driver's executemany steps, and so takes the GIL back, once a row: a writer thread could not
# overlap the parsing thread). 2,500 rows of 10 parameters stay within SQLite's default 32,766 a statement,
# and a 5,000-event batch is two slices of one cached statement. When the stored keys are wanted (the bus,
# the agent) the statement ends in RETURNING key, which steps once per row; slices of 500 there.
_SQLITE_ROWS = 2_500
_SQLITE_RETURNING_ROWS = 500


def _sqlite_slices(n: int, step: int) -> Iterator[int]:
    """Sizes of statements for n rows: whole steps, then the rest in powers of two. Each size is a statement of
    its own, which SQLite compiles (2.6 MiB of its heap for 2,500 rows) and the driver keeps in a per-connection
    cache of 128: with every remainder its own size, the agent's small varied batches filled those caches with
    ~200 MiB of statements (its soak's RSS growth); now at most 1 + log2(step) sizes exist."""
    while n >= step:
        yield step
        n -= step
    while n:
        size = 1 << (n.bit_length() - 1)
        yield size
        n -= size


@cache
def _sqlite_insert(rows: int, returning: bool) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (f"INSERT INTO events (key, timestamp, observer_type, organization_id, asset_id, source, record,"
            f" position, fields, original) VALUES {values} ON CONFLICT (key) DO NOTHING"
            + (" RETURNING key" if returning else ""))

# PostgreSQL: a batch is streamed by COPY straight into `events`, inside a savepoint. COPY has no ON CONFLICT:
# when a key is already stored (a source read again) or twice in the batch, the savepoint undoes the attempt
# and the batch goes the idempotent way, by COPY into a session-local staging table and one INSERT … SELECT …
# ON CONFLICT DO NOTHING in the batch's order. (The staging way on every batch cost the server ~1.7x the CPU.)
# ON COMMIT DELETE ROWS empties the staging table at the commit of a transaction that used it (and a move, at once).
_PG_COLUMNS = "key, timestamp, observer_type, organization_id, asset_id, source, record, position, fields, original"
_PG_COPY = f"COPY events ({_PG_COLUMNS}) FROM STDIN"
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS events_incoming (ordinal integer, key text, timestamp timestamptz,"
    " observer_type text, organization_id text, asset_id text, source text, record bigint, position bigint,"
    " fields json, original json) ON COMMIT DELETE ROWS"
)
_PG_COPY_STAGING = f"COPY events_incoming (ordinal, {_PG_COLUMNS}) FROM STDIN"
_PG_MOVE = (
    f"INSERT INTO events ({_PG_COLUMNS}) SELECT {_PG_COLUMNS} FROM events_incoming ORDER BY ordinal"
    " ON CONFLICT (key) DO NOTHING"
)


def _row_tuples(batch: Sequence[Event], zone: str = "") -> list[tuple[Any, ...]]:
    """The events' rows as tuples in `_PG_COLUMNS` order, timestamps as text ending in `zone`."""
    # the hot loop of ingestion: locals and inlined lookups on purpose
    dumps, option, default = orjson.dumps, orjson.OPT_NON_STR_KEYS, _json_default
    rows = []
    append = rows.append
    # The text form SQLAlchemy's SQLite DateTime writes and reads back, "2022-02-08 14:40:29.080710"
    # (timestamps are UTC, so no zone there; PostgreSQL is told "+00"). Formatting a datetime costs more
    # than the rest of a row (isoformat() ~12,000 instructions here); events of a batch share few seconds,
    # so the text up to the second is formatted once per second and the microseconds are appended.
    seconds: dict[tuple[int, ...], str] = {}
    for e in batch:
        f = e.fields
        get = f.get
        ts = e.timestamp
        second = (ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second)
        if (prefix := seconds.get(second)) is None:
            prefix = seconds[second] = "%04d-%02d-%02d %02d:%02d:%02d." % second  # noqa: UP031
        raw = e.original_json
        if raw is not None:
            original: str | None = raw.decode()
        else:
            original = None if e.original is None else dumps(e.original, option=option, default=default).decode()
        try:
            fields = dumps(f, default=default).decode()
        except TypeError:  # a key that is not a string: OPT_NON_STR_KEYS would slow every other event down
            fields = dumps(f, option=option, default=default).decode()
        append((
            e.key, prefix + str(1_000_000 + ts.microsecond)[1:] + zone,
            get("observer.type") or "", get("organization.id"),
            get("asset.id") or get("source.asset.id") or get("destination.asset.id"), e.source, e.record,
            e.position, fields, original,
        ))
    return rows


def copy_rows(conn: Connection, rows: Sequence[tuple[Any, ...]], want_keys: bool = False) -> tuple[int, set[str]]:
    """PostgreSQL: store event rows (`_row_tuples(events, "+00")`, keys hashed) by COPY, and where a key is not
    new, through the staging table (see _PG_COPY); (number stored, their keys if `want_keys`). The ingest writer
    process (ingest/pipeline.py) calls it with rows the parsing process built."""
    from psycopg.errors import UniqueViolation

    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        try:
            # a savepoint of the batch's transaction (begun here if this is its first statement: psycopg's own
            # transaction() would then be a transaction of its own, committing the events without the rest)
            with conn.begin_nested(), cursor.copy(_PG_COPY) as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except UniqueViolation:
            pass
        else:  # every key was new and none came twice
            return len(rows), ({row[0] for row in rows} if want_keys else set())
        cursor.execute(_PG_STAGING)
        with cursor.copy(_PG_COPY_STAGING) as copy:
            for ordinal, row in enumerate(rows):
                copy.write_row((ordinal, *row))
        if want_keys:
            cursor.execute(_PG_MOVE + " RETURNING key")
            keys = {key for (key,) in cursor.fetchall()}
        else:
            cursor.execute(_PG_MOVE)
            keys = set()
        stored = len(keys) if want_keys else max(cursor.rowcount, 0)
        cursor.execute("TRUNCATE events_incoming")  # not left for the commit: another call may come before it
        return stored, keys


def insert_events(conn: Connection, batch: Sequence[Event], want_keys: bool = False) -> tuple[int, set[str]]:
    """Store the events whose key is new; (number stored, their keys if `want_keys`).

    SQLite: the rows go straight to the driver as multi-row INSERTs (see _SQLITE_ROWS; with `want_keys`,
    … RETURNING key). PostgreSQL: COPY (see _PG_COPY).
    """
    if not batch:
        return 0, set()
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"events store: unsupported database {dialect!r}")
    stored = 0
    keys: set[str] = set()
    if dialect == "postgresql":
        for start in range(0, len(batch), CHUNK):  # rows are built a chunk at a time: bounded memory
            n, got = copy_rows(conn, _row_tuples(batch[start : start + CHUNK], "+00"), want_keys)
            stored += n
            keys |= got
        return stored, keys
    step = _SQLITE_RETURNING_ROWS if want_keys else _SQLITE_ROWS
    for start in range(0, len(batch), CHUNK):
        rows = _row_tuples(batch[start : start + CHUNK])
        first = 0
        for size in _sqlite_slices(len(rows), step):
            part = rows[first : first + size]
            first += size
            result = conn.exec_driver_sql(_sqlite_insert(size, want_keys), tuple(chain.from_iterable(part)))
            if want_keys:
                got = result.all()
                keys.update(key for (key,) in got)
                stored += len(got)
            else:
                stored += max(result.rowcount, 0)
    return stored, keys


def insert_rejects(conn: Connection, rejects: Sequence[Reject], keys: Sequence[str]) -> int:
    """Quarantine the rejects whose key (parallel to `rejects`) is new; the number stored."""
    if not rejects:
        return 0
    rows = [
        {"key": k, "source": r.source, "position": r.position, "format": r.format, "reason": r.reason,
         "raw": bytes(r.raw), "received": r.received}
        for r, k in zip(rejects, keys, strict=True)
    ]
    stmt = _insert(conn, quarantine).on_conflict_do_nothing(index_elements=["key"]).returning(quarantine.c.id)
    stored = 0
    for start in range(0, len(rows), CHUNK):
        stored += len(conn.execute(stmt, rows[start : start + CHUNK]).all())
    return stored


# --- checkpoints -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Checkpoint:
    source: str
    identity: str
    position: int
    updated: datetime


def get_checkpoint(conn: Connection, source: str) -> Checkpoint | None:
    row = conn.execute(select(checkpoints).where(checkpoints.c.source == source)).first()
    if row is None:
        return None
    return Checkpoint(row.source, row.identity, row.position, _utc(row.updated))


def set_checkpoint(conn: Connection, source: str, identity: str, position: int) -> None:
    """Record where reading `source` resumes; call inside the transaction that stores what it covers."""
    values = {"source": source, "identity": identity, "position": position, "updated": datetime.now(UTC)}
    stmt = _insert(conn, checkpoints).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"],
        set_={"identity": values["identity"], "position": values["position"], "updated": values["updated"]},
    )
    conn.execute(stmt)


def list_checkpoints(conn: Connection) -> list[Checkpoint]:
    return [Checkpoint(r.source, r.identity, r.position, _utc(r.updated))
            for r in conn.execute(select(checkpoints).order_by(checkpoints.c.source))]


# --- reading events ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event: Event


def _utc(value: datetime) -> datetime:
    # SQLite hands DateTime back without its zone; everything stored is UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _load_json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _filters(start: datetime | None, end: datetime | None, observer_type: str | None,
             asset_id: str | None) -> list[Any]:
    where = []
    if start is not None:
        where.append(events.c.timestamp >= start)
    if end is not None:
        where.append(events.c.timestamp < end)
    if observer_type is not None:
        where.append(events.c.observer_type == observer_type)
    if asset_id is not None:
        where.append(events.c.asset_id == asset_id)
    return where


def search_events(
    conn: Connection,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    observer_type: str | None = None,
    asset_id: str | None = None,
    after_id: int = 0,
    limit: int = 1000,
) -> list[StoredEvent]:
    """Events matching every filter given, in id (arrival) order after the cursor `after_id`.

    Pass the last id returned as the next `after_id` to page through any number of events.
    `asset_id` matches the event's main asset (`asset.id`, else its source's, else its destination's).
    """
    filters = _filters(start, end, observer_type, asset_id)
    if conn.dialect.name == "sqlite":
        out: list[StoredEvent] = []
        while len(out) < limit:  # in parts: a part is one text value in memory (SQLite caps one at 1 GB)
            part = _sqlite_page(conn, [events.c.id > (out[-1].id if out else after_id), *filters],
                                min(limit - len(out), _PART))
            out += part
            if len(part) < _PART:
                break
        return out
    # the JSON columns are read as text and decoded with orjson, for the same reason they are written so
    query = (
        select(events.c.id, events.c.key, events.c.timestamp, events.c.source, events.c.record, events.c.position,
               cast(events.c.fields, Text).label("fields"), cast(events.c.original, Text).label("original"))
        .where(events.c.id > after_id, *filters)
        .order_by(events.c.id)
        .limit(limit)
    )
    out = []
    for r in conn.execute(query):
        event = Event(timestamp=_utc(r.timestamp), fields=_load_json(r.fields), original=_load_json(r.original),
                      source=r.source, record=r.record, position=r.position, key=r.key)
        out.append(StoredEvent(r.id, event))
    return out


# SQLite: a page of events comes as one text value, a row's columns joined by _UNIT and the rows by _RECORD. Row
# by row, CPython's sqlite3 gives the GIL up around every step and every column, and in the agent, where other
# threads are busy, winning it back costs up to the switch interval each time: a page read row by row took 20×
# longer beside one busy thread. No column holds either separator raw: keys are hex, timestamps and numbers
# digits, the source is JSON-quoted, and JSON text escapes every control character (RFC 8259 § 7).
_UNIT, _RECORD = "\x1f", "\x1e"
_PART = 2_000  # events of one text value: a few MB


def _sqlite_page(conn: Connection, where: Sequence[Any], limit: int) -> list[StoredEvent]:
    page = (select(events.c.id, events.c.key, events.c.timestamp, events.c.source, events.c.record,
                   events.c.position, events.c.fields, events.c.original)
            .where(*where).order_by(events.c.id).limit(limit).subquery())
    unit = literal(_UNIT)
    row = (cast(page.c.id, Text) + unit + page.c.key + unit + cast(page.c.timestamp, Text) + unit
           + func.json_quote(page.c.source) + unit + cast(page.c.record, Text) + unit + cast(page.c.position, Text)
           + unit + cast(page.c.fields, Text) + unit + func.coalesce(cast(page.c.original, Text), ""))
    packed = conn.execute(select(func.group_concat(row, _RECORD))).scalar()
    if not packed:
        return []
    out: list[StoredEvent] = []
    sources: dict[str, str] = {}  # a page's events come from a few sources
    loads = orjson.loads
    for record in packed.split(_RECORD):
        id_, key, timestamp, quoted, number, position, fields, original = record.split(_UNIT)
        if (source := sources.get(quoted)) is None:
            source = sources[quoted] = loads(quoted)
        event = Event(timestamp=_utc(datetime.fromisoformat(timestamp)), fields=loads(fields),
                      original=loads(original) if original else None, source=source, record=int(number),
                      position=int(position), key=key)
        out.append(StoredEvent(int(id_), event))
    if any(a.id > b.id for a, b in pairwise(out)):  # group_concat keeps the subquery's order in
        out.sort(key=lambda s: s.id)  # practice; SQLite only promises it with ORDER BY in the call (3.44)
    return out


def iter_events(conn: Connection, page: int = 1000, **filters: Any) -> Iterable[StoredEvent]:
    """Every matching event, read page by page (bounded memory)."""
    after = 0
    while True:
        batch = search_events(conn, after_id=after, limit=page, **filters)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id


def count_events(conn: Connection, *, start: datetime | None = None, end: datetime | None = None,
                 observer_type: str | None = None, asset_id: str | None = None) -> int:
    query = select(func.count()).select_from(events).where(*_filters(start, end, observer_type, asset_id))
    return conn.execute(query).scalar_one()


def event_keys(conn: Connection, source: str | None = None) -> list[str]:
    query = select(events.c.key)
    if source is not None:
        query = query.where(events.c.source == source)
    return list(conn.execute(query).scalars())


# --- quarantine --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    id: int
    source: str
    position: int
    format: str
    reason: str
    raw: bytes
    received: datetime


def list_quarantine(conn: Connection, *, reason: str | None = None, source: str | None = None,
                    after_id: int = 0, limit: int = 100) -> list[QuarantineRecord]:
    query = select(quarantine).where(quarantine.c.id > after_id)
    if reason is not None:
        query = query.where(quarantine.c.reason == reason)
    if source is not None:
        query = query.where(quarantine.c.source == source)
    query = query.order_by(quarantine.c.id).limit(limit)
    return [QuarantineRecord(r.id, r.source, r.position, r.format, r.reason, bytes(r.raw), _utc(r.received))
            for r in conn.execute(query)]


def count_quarantine(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(quarantine)).scalar_one()


def quarantine_by_reason(conn: Connection) -> list[tuple[str, str, int]]:
    """(format, reason, count) for every distinct reason, most frequent first."""
    n = func.count().label("n")
    query = (select(quarantine.c.format, quarantine.c.reason, n)
             .group_by(quarantine.c.format, quarantine.c.reason)
             .order_by(n.desc(), quarantine.c.format, quarantine.c.reason))
    return [(r.format, r.reason, r.n) for r in conn.execute(query)]
