from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from healthswarm.respond.audit import GENESIS, AuditEntry, canonical, chain, verify
from respond_helpers import T0


def _chain(n: int) -> list[AuditEntry]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        entry = chain("C1", i, T0 + timedelta(seconds=i), "alice", "note", {"text": f"n{i}", "ü": [1, 2]}, prev)
        out.append(entry)
        prev = entry.hash
    return out


def test_intact_chain_verifies() -> None:
    verdict = verify(_chain(50))
    assert verdict.ok and verdict.entries == 50 and verdict.first_bad is None


def test_altered_content_is_named() -> None:
    entries = _chain(10)
    entries[6] = replace(entries[6], data={"text": "rewritten"})
    verdict = verify(entries)
    assert not verdict.ok and verdict.first_bad == 7 and "content" in verdict.reason


def test_recomputed_hash_breaks_the_next_link() -> None:
    entries = _chain(10)
    forged = chain("C1", 4, entries[3].at, "mallory", "note", {"text": "forged"}, entries[3].prev_hash)
    entries[3] = forged
    verdict = verify(entries)
    assert not verdict.ok and verdict.first_bad == 5 and "link" in verdict.reason


def test_removed_entry_is_detected() -> None:
    entries = _chain(10)
    del entries[2]
    verdict = verify(entries)
    assert not verdict.ok and verdict.first_bad == 4 and "sequence" in verdict.reason


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical({"a": [1, {"c": 3, "d": 2}], "b": 1})
    assert canonical({"a": 1}) == b'{"a":1}'
