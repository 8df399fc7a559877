"""TAXII storage: versions arriving over several POSTs, older and newer than those stored, repeated within a
POST and across POSTs, keep exactly one latest and one first row per object, on SQLite and PostgreSQL (the
backends look up stored versions differently)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from healthswarm.share.taxii import storage
from healthswarm.store.taxii_tables import taxii_objects


def _version(n: int, month: int) -> dict[str, Any]:
    stamp = f"2026-{month:02d}-01T00:00:00.000Z"
    return {"type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.UUID(int=n, version=4)}",
            "created": "2026-01-01T00:00:00.000Z", "modified": stamp, "name": f"m{n}", "is_family": True}


def test_latest_and_first_follow_every_stored_version(store: Any) -> None:
    with store.engine.begin() as conn:
        col = storage.create_collection(conn, "api1", "versions")
    posts = [
        [_version(1, 5), _version(2, 5), _version(3, 5)],
        # 1: newer (takes latest); 2: older (takes first); 3: again (already stored) and twice in one POST
        [_version(1, 7), _version(2, 3), _version(3, 5), _version(4, 2), _version(4, 2)],
        # 1: between the stored two (neither flag moves); 2: newest and oldest at once
        [_version(1, 6), _version(2, 9), _version(2, 1)],
    ]
    answers = []
    for objects in posts:
        with store.engine.begin() as conn:
            successes, failures = storage.add_objects(conn, col, objects)
        assert not failures
        answers.append(sorted(s.get("message", "") for s in successes))
    assert answers[1] == ["", "", "", "already stored", "duplicate in request"]
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(taxii_objects.c.object_id, taxii_objects.c.version, taxii_objects.c.is_latest,
                                        taxii_objects.c.is_first).where(taxii_objects.c.collection_id == col)))
    by_object: dict[str, list[Any]] = {}
    for row in rows:
        by_object.setdefault(row.object_id, []).append(row)
    months = {ident: sorted(int(r.version[5:7]) for r in group) for ident, group in by_object.items()}
    assert sorted(months.values()) == [[1, 3, 5, 9], [2], [5], [5, 6, 7]]
    for group in by_object.values():
        assert [r.version for r in group if r.is_latest] == [max(r.version for r in group)]
        assert [r.version for r in group if r.is_first] == [min(r.version for r in group)]
