"""TAXII storage: every filter, paged with `next`, returns exactly what a full scan in Python returns, in
(date added, pk) order, on SQLite and PostgreSQL (the index ranges merged by query_objects lose nothing,
repeat nothing, and a cursor inside one POST's date_added continues where it stopped)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from healthswarm.share.taxii import storage
from healthswarm.store.taxii_tables import taxii_objects

KINDS = ["indicator", "malware", "ipv4-addr", "relationship"]


def _object(rng: random.Random, kind: str, ident: str | None = None, modified: str | None = None) -> dict[str, Any]:
    ident = ident or f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    if kind == "ipv4-addr":
        return {"type": kind, "spec_version": "2.1", "id": ident, "value": f"10.0.{rng.randrange(256)}.1"}
    stamp = modified or "2026-01-01T00:00:00.000Z"
    return {"type": kind, "spec_version": "2.1", "id": ident, "created": "2026-01-01T00:00:00.000Z",
            "modified": stamp}


def _fill(store: Any) -> tuple[str, list[Any]]:
    rng = random.Random(5)
    with store.engine.begin() as conn:
        col = storage.create_collection(conn, "api1", "paging")
    sent: list[tuple[str, str]] = []
    for batch in range(6):
        objects = []
        for _ in range(40):
            if sent and rng.random() < 0.3:  # a later version of an earlier object, sometimes in the same POST
                kind, ident = rng.choice(sent)
                objects.append(_object(rng, kind, ident, f"2026-0{batch + 2}-{rng.randrange(10, 28)}T00:00:00.000Z"))
            else:
                obj = _object(rng, rng.choice(KINDS))
                if obj["type"] != "ipv4-addr":
                    sent.append((obj["type"], obj["id"]))
                objects.append(obj)
        with store.engine.begin() as conn:
            _ok, failures = storage.add_objects(conn, col, objects)
            assert not failures
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(taxii_objects).where(taxii_objects.c.collection_id == col)))
    return col, rows


def _expected(rows: list[Any], f: storage.Filters, object_id: str | None = None) -> list[int]:
    versions = f.versions or ["last"]
    out = []
    for r in rows:
        if object_id is not None and r.object_id != object_id:
            continue
        if (f.ids and r.object_id not in f.ids) or (f.types and r.type not in f.types):
            continue
        if f.added_after is not None and storage._utc(r.date_added) <= f.added_after:
            continue
        if "all" not in versions and not (("last" in versions and r.is_latest) or ("first" in versions and r.is_first)
                                          or r.version in versions):
            continue
        out.append(r)
    return [r.pk for r in sorted(out, key=lambda r: (r.date_added, r.pk))]


def _paged(store: Any, col: str, f: storage.Filters, object_id: str | None = None) -> list[int]:
    got: list[int] = []
    with store.engine.connect() as conn:
        while True:
            rows, more = storage.query_objects(conn, col, f, object_id)
            assert len(rows) <= f.limit
            got += [r.pk for r in rows]
            if not more:
                return got
            f.next = storage.decode_next(storage.encode_next(rows[-1]))


def test_every_filter_pages_like_a_full_scan(store: Any) -> None:
    col, rows = _fill(store)
    rng = random.Random(9)
    multi = [r for r in rows if not r.is_latest]
    assert multi, "the fill makes objects with several versions"
    added = sorted({r.date_added for r in rows})
    cases: list[dict[str, Any]] = [{}, {"versions": ["all"]}, {"versions": ["first"]}, {"versions": ["last", "first"]},
                                   {"types": ["malware"]}, {"types": ["malware", "ipv4-addr"], "versions": ["all"]},
                                   {"types": ["campaign"]}, {"versions": [multi[0].version]},
                                   {"versions": ["last", multi[1].version], "types": [multi[1].type]},
                                   {"ids": [multi[0].object_id], "versions": ["all"]},
                                   {"ids": [r.object_id for r in rng.sample(rows, 12)]},
                                   {"spec_versions": ["2.1"], "types": ["indicator"], "versions": ["first"]}]
    for case in list(cases):
        cases.append(dict(case, added_after=storage._utc(added[2])))
    for limit in (1, 7, 500):
        for case in cases:
            f = storage.Filters(limit=limit, **case)
            assert _paged(store, col, f) == _expected(rows, storage.Filters(**case)), (limit, case)
    one = multi[0].object_id
    for versions in (["all"], ["first"], None):
        f = storage.Filters(limit=1, versions=versions)
        assert _paged(store, col, f, one) == _expected(rows, storage.Filters(versions=versions), one)


def test_a_cursor_inside_one_post_continues_there(store: Any) -> None:
    col, rows = _fill(store)
    # every row of one POST shares its date_added: a page boundary inside it must neither skip nor repeat
    first_post = [r.pk for r in sorted(rows, key=lambda r: (r.date_added, r.pk)) if r.date_added == rows[0].date_added]
    assert len(first_post) > 10
    f = storage.Filters(limit=3, versions=["all"])
    got = _paged(store, col, f)
    assert got[:len(first_post)] == first_post and len(got) == len(set(got)) == len(rows)


@pytest.mark.parametrize("bad", ["", "bm90LWEtY3Vyc29y"])
def test_a_foreign_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        storage.decode_next(bad)
