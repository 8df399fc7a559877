"""Private matching: PSI (intersection and cardinality, over HTTP) and the keyed Bloom filter alternative."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from healthswarm.model import Indicator
from healthswarm.share import psi
from healthswarm.share.psi import (
    PsiClient,
    bloom_filter,
    bloom_matches,
    items_of,
    make_psi_router,
    psi_answer,
    psi_query,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytest.importorskip("private_set_intersection.python")
NOW = datetime(2026, 11, 29, tzinfo=UTC)
MINE = [f"ipv4:198.51.100.{i}" for i in range(60)] + ["domain:evil.example"]
THEIRS = [f"ipv4:198.51.100.{i}" for i in range(50, 120)] + ["domain:evil.example", "sha256:" + "a" * 64]
COMMON = sorted(set(MINE) & set(THEIRS))


def test_items_are_normalised_indicators() -> None:
    assert items_of([Indicator("Evil.Example", "domain", NOW, NOW), Indicator("evil.example", "domain", NOW, NOW)]) \
        == ["domain:evil.example"]


def test_psi_reveals_only_the_intersection_or_its_size() -> None:
    client = PsiClient(MINE)
    setup, response = psi_answer(THEIRS, client.request(), len(MINE))
    assert client.result(setup, response) == COMMON
    sizes = PsiClient(MINE, reveal_intersection=False)
    setup, response = psi_answer(THEIRS, sizes.request(), len(MINE), allow_reveal=False)
    assert sizes.result(setup, response) == len(COMMON)
    with pytest.raises(ValueError, match="cardinality-only"):
        psi_answer(THEIRS, PsiClient(MINE).request(), len(MINE), allow_reveal=False)
    with pytest.raises(ValueError, match="not the 3 declared"):
        psi_answer(THEIRS, PsiClient(MINE).request(), 3)
    with pytest.raises(ValueError, match="not within"):
        psi_answer(THEIRS, PsiClient(MINE).request(), len(MINE), max_client_items=10)


def test_psi_over_http() -> None:
    app = FastAPI()
    app.include_router(make_psi_router(lambda: THEIRS, lambda token: token == "peer-token"))
    http = TestClient(app)
    found, exchanged = psi_query("http://testserver", "peer-token", MINE, client=http)
    assert found == COMMON and exchanged > 0
    with pytest.raises(ValueError, match="401"):
        psi_query("http://testserver", "wrong", MINE, client=http)
    assert http.post("/psi/intersect", json={"client_size": 1, "request": "bm90IGEgcmVxdWVzdA=="},
                     headers={"Authorization": "Bearer peer-token"}).status_code == 400


def test_keyed_bloom_filter() -> None:
    key = b"sector-key-0123456789abcdef012345"
    published = bloom_filter(THEIRS, key, fpr=1e-9)
    assert bloom_matches(published, key, MINE) == COMMON
    assert bloom_matches(published, b"another-key-0123456789abcdef0123", MINE) == []
    with pytest.raises(ValueError):
        bloom_matches(b"\x00", key, MINE)


def test_taxii_app_answers_private_matching_on_our_indicators(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from healthswarm.share.indicators import save_indicators
    from healthswarm.share.taxii import storage
    from healthswarm.share.taxii.server import make_app

    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    app = make_app(engine, psi=True, psi_reveal=False)
    with engine.begin() as conn:
        token = storage.create_token(conn, "peer", "peer")
        save_indicators(conn, [Indicator("evil.example", "domain", NOW, NOW),
                               Indicator("198.51.100.55", "ipv4", NOW, NOW),
                               Indicator("peer-only.example", "domain", NOW, NOW, source="identity--x")])
    http = TestClient(app)
    size, _bytes = psi_query("http://testserver", token, MINE, reveal_intersection=False, client=http)
    assert size == 2  # ours only: the peer's own indicator is not offered
    with pytest.raises(ValueError, match="cardinality-only"):
        psi_query("http://testserver", token, MINE, client=http)
    engine.dispose()


def test_the_parallel_path_finds_what_the_serial_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large sets are split over worker processes (same keys, parts joined in order): same answer, exactly."""
    mine = [f"ipv4:198.51.{i // 250}.{i % 250}" for i in range(600)]
    theirs = mine[::3] + [f"domain:x{i}.example" for i in range(400)]

    def match() -> list[str] | int:
        client = psi.PsiClient(mine)
        setup, response = psi.psi_answer(theirs, client.request(), len(mine))
        return client.result(setup, response)

    serial = match()
    monkeypatch.setattr(psi, "PARALLEL_FROM", 100)
    assert match() == serial == sorted(mine[::3])
