"""The events repository's write path on both backends (SQLite executemany, PostgreSQL COPY through a
staging table): idempotent by key, batches in order, every value back as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from healthswarm.model import Event, event_key
from healthswarm.store import Store
from healthswarm.store.events import CHUNK, insert_events, search_events

START = datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _events(positions: range, source: str = "eve.json") -> list[Event]:
    out = []
    for p in positions:
        fields = {"observer.type": "suricata", "source.ip": f"10.0.{p // 250}.{p % 250}", "n": p,
                  "event.start": START, "event.category": ["network"]}
        event = Event(START + timedelta(microseconds=p), fields, {"n": p}, source, p + 1, p * 10)
        event.key = event_key("identity", p)
        out.append(event)
    return out


@pytest.mark.parametrize("want_keys", [False, True])
def test_a_batch_over_several_chunks_is_stored_once_and_in_order(store: Store, want_keys: bool) -> None:
    first = _events(range(0, 3_000))
    with store.transaction() as conn:
        assert insert_events(conn, first, want_keys) == (3_000, {e.key for e in first} if want_keys else set())
    # again, overlapping what is stored, longer than a chunk, with a key twice within the batch
    batch = _events(range(2_000, 2_000 + CHUNK + 1_500))
    batch.insert(100, _events(range(7_000, 7_001))[0])
    new = [e for e in batch if int(e.fields["n"]) >= 3_000]
    with store.transaction() as conn:
        stored, keys = insert_events(conn, batch, want_keys)
    assert stored == len(new) - 1  # event 7,000 is in the batch twice
    assert keys == ({e.key for e in new} if want_keys else set())
    with store.read() as conn:
        got = search_events(conn, limit=100_000)
    # ids in the order the batches and their events came
    assert [s.event.fields["n"] for s in got] == [*range(0, 3_000), 7_000,
                                                  *(n for n in range(3_000, 2_000 + CHUNK + 1_500) if n != 7_000)]
    assert got[0].event.timestamp == START and got[5].event.timestamp == START + timedelta(microseconds=5)
    assert [s.event.key for s in got[:3]] == [e.key for e in first[:3]]


def test_values_come_back_as_written(store: Store) -> None:
    # strings with what the COPY text format escapes (tab, newline, backslash), and no kept JSON text
    # and the separators of SQLite's packed pages (store/events.py _UNIT, _RECORD)
    awkward = "tab\there, new\nline, back\\slash \\N, quote \", ünïcode ✓, units \x1f and records \x1e"
    event = Event(START, {"observer.type": "zeek", "organization.id": "org-1", "asset.id": "pacs-1",
                          "message": awkward}, {"raw": awkward, "list": [1, None, 2.5]}, "zeek.log", 7, 700)
    event.key = event_key("identity", 700)
    kept = Event(START, {"observer.type": "suricata"}, None, "eve.json", 8, 800)
    kept.original_json = orjson.dumps({"raw": awkward})
    kept.key = event_key("identity", 800)
    numbered = Event(START, {"observer.type": "nsl-kdd", 7: "a key that is not a string"}, {1: 2}, "kdd.csv", 9, 900)
    numbered.key = event_key("identity", 900)
    text = Event(START, {"observer.type": "hl7"}, "MSH|^~\\&|\r\x1ePID|1", "adt\x1f\x1e.hl7", 10, 1_000)
    text.key = event_key("identity", 1_000)
    with store.transaction() as conn:
        assert insert_events(conn, [event, kept, numbered, text]) == (4, set())
    with store.read() as conn:
        (a, b, c, d) = (s.event for s in search_events(conn))
        assert len(search_events(conn, asset_id="pacs-1")) == 1
    assert (d.original, d.source, d.record, d.position) == (text.original, "adt\x1f\x1e.hl7", 10, 1_000)
    assert (a.fields, a.original, a.source, a.record, a.position, a.key) == (
        event.fields, event.original, "zeek.log", 7, 700, event.key)
    assert b.original == {"raw": awkward}
    assert (c.fields, c.original) == ({"observer.type": "nsl-kdd", "7": "a key that is not a string"}, {"1": 2})


def test_large_values_are_stored_and_read_back_whole(store: Store) -> None:
    # past TOAST's ~2 KB threshold on PostgreSQL, where migration 0013 has them compressed with lz4
    big = {"payload": "GET /" + "a" * 6_000 + " HTTP/1.1", "n": list(range(500))}
    event = Event(START, {"observer.type": "suricata", "url.original": big["payload"]}, None, "eve.json", 1, 10)
    event.original_json = orjson.dumps(big)
    event.key = event_key("identity", 10)
    with store.transaction() as conn:
        assert insert_events(conn, [event]) == (1, set())
    with store.read() as conn:
        (got,) = search_events(conn)
        if conn.dialect.name == "postgresql":
            methods = conn.exec_driver_sql(
                "SELECT a.attname, a.attcompression FROM pg_attribute a WHERE a.attrelid = 'events'::regclass"
                " AND a.attname IN ('fields', 'original') ORDER BY a.attname").all()
            assert [tuple(m) for m in methods] == [("fields", "l"), ("original", "l")]
    assert got.event.original == big and got.event.fields["url.original"] == big["payload"]


@pytest.mark.parametrize("want_keys", [False, True])
def test_batches_of_every_size_use_few_statement_shapes(tmp_path: Path, want_keys: bool) -> None:
    """SQLite (PostgreSQL takes COPY): the agent stores small batches of every size; each is stored whole, and they
    share a few statement sizes (every size is a statement SQLite compiles and the driver caches per connection;
    a 2,500-row one takes 2.6 MiB)."""
    from healthswarm.store.events import _sqlite_insert

    store = Store.open(f"sqlite:///{tmp_path / 'test.db'}")

    _sqlite_insert.cache_clear()
    sizes = [*range(1, 90), 499, 500, 501, 1_234, 2_499, 2_501]
    events = _events(range(sum(sizes)))
    first = 0
    with store.transaction() as conn:
        for size in sizes:
            batch = events[first : first + size]
            first += size
            stored, keys = insert_events(conn, batch, want_keys)
            assert stored == size
            assert keys == ({e.key for e in batch} if want_keys else set())
    with store.read() as conn:
        assert [s.event.fields["n"] for s in search_events(conn, limit=first)] == list(range(first))
    store.close()
    assert _sqlite_insert.cache_info().currsize <= 13  # not one per batch size (95 here)
