"""File → store on both backends: idempotency, resume, quarantine, enrichment, compressed input,
stdin, follow (growth, partial lines, rotation, truncation) and the CLI."""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import os
import random
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from conftest import postgres_database, shared
from healthswarm.cli.main import app
from healthswarm.ingest.enrich import Enricher
from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file, ingest_stdin, source_name
from healthswarm.ingest.sources.follow import Follower
from healthswarm.model import Asset, Inventory, Organisation, Zone
from healthswarm.store import Store
from healthswarm.store.events import (
    count_events,
    count_quarantine,
    get_checkpoint,
    iter_events,
    list_quarantine,
    search_events,
)
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.tables import checkpoints

EVE_LINES = 2401


@pytest.fixture
def eve() -> Path:
    return shared("suricata", "eve-2.json")


def _counts(store: Store) -> tuple[int, int]:
    with store.read() as conn:
        return count_events(conn), count_quarantine(conn)


def test_file_to_store_and_idempotent_reingest(store: Store, eve: Path) -> None:
    first = Pipeline(store, batch_size=500)
    result = ingest_file(first, eve)
    assert result.format == "suricata"
    assert (first.stats.events, first.stats.stored) == (EVE_LINES, EVE_LINES)
    with store.read() as conn:
        assert count_events(conn) == EVE_LINES
        assert count_events(conn, observer_type="suricata") == EVE_LINES
        assert get_checkpoint(conn, source_name(eve)).position == eve.stat().st_size  # type: ignore[union-attr]
        page = search_events(conn, observer_type="suricata", limit=10)
        assert [p.id for p in page] == sorted(p.id for p in page)
        later = search_events(conn, after_id=page[-1].id, limit=10)
        assert later[0].id > page[-1].id
        assert sum(1 for _ in iter_events(conn, page=700)) == EVE_LINES
        t0 = page[0].event.timestamp
        assert t0.tzinfo is not None
        assert count_events(conn, start=t0, end=t0.replace(year=t0.year + 1)) > 0

    # unchanged since its checkpoint: nothing is read
    again = Pipeline(store)
    assert ingest_file(again, eve).skipped.startswith("unchanged")
    # checkpoint gone: everything is re-read, nothing is stored twice
    with store.transaction() as conn:
        from healthswarm.store.tables import checkpoints
        conn.execute(checkpoints.delete())
    reread = Pipeline(store)
    ingest_file(reread, eve)
    assert (reread.stats.events, reread.stats.stored, reread.stats.duplicates) == (EVE_LINES, 0, EVE_LINES)
    assert _counts(store) == (EVE_LINES, 0)


def test_resume_from_checkpoint_stores_the_rest_once(store: Store, eve: Path, tmp_path: Path) -> None:
    gz = tmp_path / "eve.json.gz"
    gz.write_bytes(gzip.compress(eve.read_bytes()))
    partial = Pipeline(store, batch_size=100)
    fmt = get_format("suricata")
    # as if the process died after 1,000 records: only what was committed counts
    with gz.open("rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
        from healthswarm.ingest.sources.file import new_identity
        identity = new_identity(source_name(gz), gz.read_bytes()[:1024])
        partial.run(itertools.islice(fmt.parse(stream, source_name(gz), 0), 1000), source=source_name(gz),
                    identity=identity)
    assert _counts(store)[0] == 1000
    rest = Pipeline(store)
    result = ingest_file(rest, gz)
    assert result.start > 0 and result.format == "suricata"
    assert (rest.stats.events, rest.stats.stored) == (EVE_LINES - 1000, EVE_LINES - 1000)
    assert _counts(store)[0] == EVE_LINES
    # a compressed file re-read to its checkpoint yields nothing new
    again = Pipeline(store)
    ingest_file(again, gz)
    assert again.stats.events == 0


def test_bzip2_xz_and_stdin(store: Store, eve: Path, tmp_path: Path) -> None:
    bz = tmp_path / "eve.json.bz2"
    bz.write_bytes(bz2.compress(eve.read_bytes()))
    xz = tmp_path / "eve-copy"  # no suffix: compression is recognised by its magic bytes
    xz.write_bytes(lzma.compress(eve.read_bytes()))
    p = Pipeline(store)
    ingest_file(p, bz)
    assert p.stats.stored == EVE_LINES
    x = Pipeline(store)
    assert ingest_file(x, xz).format == "suricata"
    assert x.stats.stored == EVE_LINES
    s = Pipeline(store)
    ingest_stdin(s, None, io.BytesIO(eve.read_bytes()))
    assert s.stats.stored == EVE_LINES  # stdin is another source: its own keys
    s2 = Pipeline(store)
    ingest_stdin(s2, None, io.BytesIO(eve.read_bytes()))
    assert (s2.stats.events, s2.stats.stored) == (EVE_LINES, 0)


def test_quarantine_with_reasons(store: Store, eve: Path, tmp_path: Path) -> None:
    good = eve.read_bytes().splitlines(keepends=True)[:50]
    mixed = tmp_path / "mixed.json"
    mixed.write_bytes(b"".join(good[:20]) + b'{"timestamp": "2022-02-08T09:40:29.080710-0500", "event_ty\n'
                      + b"\x00\xff\xfe garbage \x81\n" + b"".join(good[20:]))
    p = Pipeline(store)
    ingest_file(p, mixed, get_format("suricata"))
    assert p.stats.stored == 50
    assert sum(p.stats.rejects.values()) == 2
    unknown = tmp_path / "notes.bin"
    unknown.write_bytes(random.Random(2000).randbytes(2000))
    u = Pipeline(store)
    assert ingest_file(u, unknown).skipped == "no format recognised"
    ingest_file(Pipeline(store), unknown)  # once per content, however often it is tried
    with store.read() as conn:
        records = list_quarantine(conn)
    assert len(records) == 3
    by_source = {r.source: r for r in records if r.source == source_name(unknown)}
    assert by_source[source_name(unknown)].reason.startswith("no format recognised (tried suricata")
    bad = [r for r in records if r.source == source_name(mixed)]
    assert all(r.reason and r.raw and r.position > 0 for r in bad)
    assert any(b"\x00\xff\xfe" in r.raw for r in bad)
    assert _counts(store) == (50, 3)


def test_enrichment_from_inventory(store: Store, eve: Path) -> None:
    inventory = Inventory(
        organisations=(Organisation("h1", "Hospital One", "hospital"),),
        zones=(Zone("h1-clin", "h1", "clinical", "clinical"),),
        assets=(
            Asset("h1-ws1", "h1", "h1-clin", "clinical-workstation", "WS 1", addresses=("10.2.8.102",)),
            Asset("h1-dns", "h1", "h1-clin", "dns-server", "DNS", addresses=("10.2.8.0/28",),
                  hostnames=("dns1.h1.example",)),
        ),
    )
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
    p = Pipeline.for_store(store)
    ingest_file(p, eve)
    with store.read() as conn:
        ws_events = search_events(conn, asset_id="h1-ws1", limit=5000)
        dns = [e for e in search_events(conn, limit=5000) if e.event.get("destination.ip") == "10.2.8.8"]
    assert ws_events and all(e.event.get("organization.id") == "h1" for e in ws_events)
    assert all(e.event.get("source.asset.id") == "h1-ws1" for e in ws_events
               if e.event.get("source.ip") == "10.2.8.102")
    assert dns and all(e.event.get("destination.asset.id") == "h1-dns" for e in dns)
    with store.read() as conn:
        external = [e for e in search_events(conn, limit=5000) if e.event.get("source.ip") == "91.240.118.172"]
    assert external and all(e.event.get("source.asset.id") is None for e in external)
    enricher = Enricher(inventory.assets, organisation="h1")
    from datetime import UTC, datetime

    from healthswarm.model import Event
    host_event = Event(datetime.now(UTC), {"host.name": "DNS1"}, None)
    enricher.enrich(host_event)
    assert host_event.get("asset.id") == "h1-dns"
    loose = Event(datetime.now(UTC), {"source.ip": "192.0.2.1"}, None)
    enricher.enrich(loose)
    assert loose.get("organization.id") == "h1" and loose.get("asset.id") is None


def _line(i: int) -> bytes:
    return orjson.dumps({"timestamp": f"2024-05-01T10:00:{i % 60:02d}.000000+0000", "event_type": "flow",
                         "src_ip": "10.0.0.1", "src_port": 1000 + i, "dest_ip": "10.0.0.2", "dest_port": 53,
                         "proto": "UDP", "flow_id": i}) + b"\n"


def test_follow_growth_partial_rotation_truncation(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_bytes(b"".join(_line(i) for i in range(10)))
    p = Pipeline(store)
    follower = Follower(p, log, get_format("suricata"))
    assert follower.step()
    assert _counts(store)[0] == 10
    whole = _line(10)
    with log.open("ab") as f:
        f.write(whole[:30])  # a line half-written: not read yet
    assert not follower.step()
    assert _counts(store)[0] == 10
    with log.open("ab") as f:
        f.write(whole[30:])
    assert follower.step()
    assert _counts(store)[0] == 11
    # rotation: the old file gets a last line after the rename, then a new file appears
    log.rename(tmp_path / "eve.json.1")
    with (tmp_path / "eve.json.1").open("ab") as f:
        f.write(_line(11))
    log.write_bytes(b"".join(_line(i) for i in range(100, 105)))
    for _ in range(3):
        follower.step()
    assert _counts(store)[0] == 17
    # truncation: shorter than what was read, with the same first line (so the same first bytes)
    log.write_bytes(_line(100) + _line(200))
    for _ in range(3):
        follower.step()
    assert _counts(store)[0] == 19
    follower.run(should_stop=lambda: True, wait=lambda _s: None)  # closes its descriptor
    assert follower.current is None


def test_cli_ingest_and_quarantine_list(tmp_path: Path, eve: Path) -> None:
    runner = CliRunner()
    ws = tmp_path / "ws"
    bad = tmp_path / "bad.json"
    bad.write_bytes(eve.read_bytes().splitlines(keepends=True)[0] + b'{"truncated": \n')
    result = runner.invoke(app, ["--workspace", str(ws), "ingest", str(eve), str(bad), "--format", "suricata",
                                 "--stats"])
    assert result.exit_code == 0, result.output
    assert "2,402 events read: 2,402 stored" in result.output
    again = runner.invoke(app, ["--workspace", str(ws), "ingest", str(eve)])
    assert again.exit_code == 0 and "unchanged" in again.output
    listed = runner.invoke(app, ["--workspace", str(ws), "quarantine", "list", "--format", "json"])
    assert listed.exit_code == 0
    rows = orjson.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["source"] == source_name(bad) and rows[0]["raw"].startswith('{"truncated"')
    missing = runner.invoke(app, ["--workspace", str(ws), "ingest", str(tmp_path / "nope.json")])
    assert missing.exit_code != 0
    unknown_format = runner.invoke(app, ["--workspace", str(ws), "ingest", str(eve), "--format", "nope"])
    assert unknown_format.exit_code != 0


def test_writer_thread_commits_every_batch_in_order(store: Store, eve: Path) -> None:
    p = Pipeline(store, batch_size=300, overlap=True)
    seen: list[int] = []
    with eve.open("rb") as stream:
        last = p.run(get_format("suricata").parse(stream, source_name(eve)), source=source_name(eve),
                     identity="writer-test", on_commit=seen.append)
    p.close()
    assert last == eve.stat().st_size
    assert seen == sorted(seen) and seen[-1] == last and len(seen) >= EVE_LINES // 300
    assert p.stats.stored == EVE_LINES
    with store.read() as conn:
        assert count_events(conn) == EVE_LINES
        assert get_checkpoint(conn, source_name(eve)).position == last  # type: ignore[union-attr]


def _table(store: Store, query: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(query)]


_EVENTS_SQL = ("SELECT id, key, timestamp, observer_type, organization_id, asset_id, source, record, position,"
               " fields{json}, original{json} FROM events ORDER BY id")
_QUARANTINE_SQL = "SELECT key, source, position, format, reason, raw FROM quarantine ORDER BY id"


def _mixed_eve(tmp_path: Path, eve: Path) -> Path:
    """700 real EVE lines with a truncated one after the 300th."""
    lines = eve.read_bytes().splitlines(keepends=True)[:700]
    mixed = tmp_path / "mixed.json"
    mixed.write_bytes(b"".join(lines[:300]) + b'{"timestamp": "2022-02-08T09:40:29.0\n' + b"".join(lines[300:]))
    return mixed


def test_writer_process_stores_what_one_process_stores(tmp_path: Path, eve: Path) -> None:
    """SQLite, the CLI's way for files: the same rows (ids, keys, values), rejects and checkpoint as inline; a
    second read stores nothing; the writer's failure is raised to the parser."""
    mixed = _mixed_eve(tmp_path, eve)
    events_sql = _EVENTS_SQL.format(json="")
    got = []
    for writer_process in (False, True):
        store = Store.open(f"sqlite:///{tmp_path / f'{writer_process}.db'}")
        p = Pipeline(store, batch_size=128, writer_process=writer_process)
        assert (p._process is not None) is writer_process
        seen: list[int] = []
        ingest_file(p, mixed, get_format("suricata"), seen.append)
        again = ingest_file(p, mixed, get_format("suricata"))  # unchanged: nothing read
        p.close()
        assert (p.stats.stored, p.stats.quarantined, sum(p.stats.rejects.values())) == (700, 1, 1)
        assert again.skipped and seen == sorted(seen)
        with store.read() as conn:
            position = get_checkpoint(conn, source_name(mixed)).position  # type: ignore[union-attr]
        got.append((_table(store, events_sql), _table(store, _QUARANTINE_SQL), position))
        store.close()
    assert got[0] == got[1] and got[1][2] == mixed.stat().st_size

    store = Store.open(f"sqlite:///{tmp_path / 'broken.db'}")
    with store.transaction() as conn:
        conn.exec_driver_sql("CREATE TRIGGER no_events BEFORE INSERT ON events"
                             " BEGIN SELECT RAISE(ABORT, 'refused'); END")
    p = Pipeline(store, batch_size=128, writer_process=True)
    with pytest.raises(RuntimeError, match=r"writer process failed.*refused"):
        ingest_file(p, mixed, get_format("suricata"))
    p.close()
    with store.read() as conn:
        assert count_events(conn) == 0 and get_checkpoint(conn, source_name(mixed)) is None
    store.close()


@pytest.mark.service
def test_writer_process_copies_into_postgresql_what_one_process_stores(tmp_path: Path, eve: Path) -> None:
    """PostgreSQL, the CLI's way for files: COPY from the writer process stores the same rows in the same order, the
    same rejects and checkpoint as one process; read again from the start (its checkpoint deleted), every key is
    stored already, so each batch goes through the staging table and nothing is stored twice."""
    mixed = _mixed_eve(tmp_path, eve)
    events_sql = _EVENTS_SQL.format(json="::text")
    got = []
    for writer_process in (False, True):
        with postgres_database("hs_writer") as url:
            store = Store.open(url)
            p = Pipeline(store, batch_size=128, writer_process=writer_process)
            assert (p._process is not None) is writer_process
            ingest_file(p, mixed, get_format("suricata"))
            with store.transaction() as conn:
                conn.execute(checkpoints.delete())
            again = ingest_file(p, mixed, get_format("suricata"))
            p.close()
            assert not again.skipped
            assert (p.stats.events, p.stats.stored, p.stats.quarantined, sum(p.stats.rejects.values())) == (
                1400, 700, 1, 2)
            with store.read() as conn:
                position = get_checkpoint(conn, source_name(mixed)).position  # type: ignore[union-attr]
            got.append((_table(store, events_sql), _table(store, _QUARANTINE_SQL), position))
            store.close()
    assert len(got[0][0]) == 700 and got[0] == got[1] and got[1][2] == mixed.stat().st_size


@pytest.mark.parametrize("kind", ["suricata", "zeek-tsv"])
def test_following_a_growing_file_reads_each_byte_a_bounded_number_of_times(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A follower's passes number records by the file's own lines (headers and rejects counted) without counting
    the file's lines again from its start at each pass: over 60 passes the bytes read stay a small multiple of the
    file's size (the count from the start made it ~30x, and a sustained agent fall behind as its log grew)."""
    if kind == "suricata":
        head, rows = [], [_line(i) for i in range(65)]
        fmt = get_format("suricata")
    else:
        lines = shared("zeek", "conn.log").read_bytes().splitlines(keepends=True)
        head = [line for line in lines if line.startswith(b"#") and not line.startswith(b"#close")]
        rows = [line for line in lines if not line.startswith(b"#")][:65]
        fmt = get_format("zeek")
    rows[30] = b'{"timestamp": "2024-05-01T10:00\n' if kind == "suricata" else b"not\ta zeek row\n"
    read = [0]
    pread = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        data = pread(fd, n, offset)
        read[0] += len(data)
        return data

    monkeypatch.setattr(os, "pread", counting)
    log = tmp_path / "growing.log"
    log.write_bytes(b"".join(head + rows[:5]))
    follower = Follower(Pipeline(store), log, fmt)
    assert follower.step()
    for row in rows[5:]:
        with log.open("ab") as f:
            f.write(row)
        assert follower.step()
    follower.run(should_stop=lambda: True, wait=lambda _s: None)
    size = log.stat().st_size
    assert read[0] <= 4 * size, (read[0], size)
    with store.read() as conn:
        records = [s.event.record for s in iter_events(conn)]
        rejects = list_quarantine(conn)
    first = len(head) + 1
    assert records == [n for n in range(first, first + 65) if n != first + 30]
    assert len(rejects) == 1 and rejects[0].reason.startswith(f"line {first + 30}")
