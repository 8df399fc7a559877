"""The audit log's hash chain: each entry's hash covers the previous hash and a canonical JSON of the entry.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, timestamps as ISO 8601 UTC strings.
The first entry of a chain links to `GENESIS` (64 zeros).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    case_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    data: dict[str, Any]
    prev_hash: str
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """What the hash covers besides the previous hash."""
        return {"case_id": self.case_id, "seq": self.seq, "at": self.at.astimezone(UTC).isoformat(),
                "actor": self.actor, "action": self.action, "data": self.data}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def entry_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()


def chain(case_id: str, seq: int, at: datetime, actor: str, action: str, data: dict[str, Any],
          prev_hash: str) -> AuditEntry:
    """A new entry linked to `prev_hash`, its hash computed."""
    draft = AuditEntry(case_id, seq, at, actor, action, data, prev_hash)
    return AuditEntry(case_id, seq, at, actor, action, data, prev_hash, entry_hash(prev_hash, draft.body()))


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    entries: int
    first_bad: int | None = None  # seq of the first entry that breaks the chain
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "first_bad": self.first_bad, "reason": self.reason}


def verify(entries: Iterable[AuditEntry]) -> Verdict:
    """Check the chain in order: sequence numbers, links and hashes. Stops at the first broken entry."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return Verdict(False, count, entry.seq, f"sequence number {entry.seq}, expected {expected_seq} "
                                                    "(an entry was removed or inserted)")
        if entry.prev_hash != prev:
            return Verdict(False, count, entry.seq, "does not link to the previous entry's hash")
        if entry_hash(prev, entry.body()) != entry.hash:
            return Verdict(False, count, entry.seq, "its content does not match its hash (altered after writing)")
        prev, expected_seq = entry.hash, expected_seq + 1
    return Verdict(True, count)
