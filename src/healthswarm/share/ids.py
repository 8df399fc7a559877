"""STIX identifiers and timestamps, computed fast and the way the `stix2` package computes them.

SDO/SRO ids are UUIDv4-shaped but deterministic: 16 bytes of keyed BLAKE2b (a key derived from the
organisation's pseudonym key) over what the object is, so re-exporting the same alert updates rather than duplicates
it, while a peer cannot recompute the id from a guessed internal value. SCO ids are UUIDv5 over the
RFC 8785 canonical JSON of their id-contributing properties in the STIX namespace, as STIX 2.1 §2.9
requires (equal to what `stix2` computes; a test checks it).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

STIX_SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
_NS_BYTES = STIX_SCO_NAMESPACE.bytes


def _v4_text(digest: bytes) -> str:
    """16 bytes as a UUID string with the version-4 and RFC 4122 variant bits set (no uuid.UUID object: faster)."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sdo_id(kind: str, secret: bytes, *basis: str) -> str:
    """Keyed BLAKE2b (a PRF like HMAC, one C call) over what the object is, shaped as a UUIDv4."""
    digest = hashlib.blake2b("\x00".join((kind, *basis)).encode(), key=secret[:64], digest_size=16).digest()
    return f"{kind}--{_v4_text(digest)}"


def random_id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def sco_id(kind: str, contributing: dict[str, Any]) -> str:
    # the contributing properties here are strings and string maps with ASCII keys: orjson's sorted compact
    # JSON is their RFC 8785 form (a test compares it with `stix2` on control characters, quotes and non-ASCII)
    text = orjson.dumps(contributing, option=orjson.OPT_SORT_KEYS)
    digest = bytearray(hashlib.sha1(_NS_BYTES + text).digest()[:16])  # UUIDv5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{kind}--{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, `2026-11-29T03:45:59.500+00:00` (isoformat: far cheaper than strftime)."""
    if moment.tzinfo is None:
        raise ValueError("STIX timestamps need a timezone-aware datetime")
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat(timespec="milliseconds")


def stamp(moment: datetime) -> str:
    """`created`/`modified`: millisecond precision in UTC (`2026-11-29T03:45:59.000Z`), as `stix2` writes them."""
    return _utc_text(moment)[:23] + "Z"


def stamp_any(moment: datetime) -> str:
    """Other timestamps: milliseconds kept, trailing zeros dropped (`…:59Z`, `…:59.5Z`), as `stix2` writes them."""
    text = _utc_text(moment)
    fraction = text[20:23].rstrip("0")
    return f"{text[:19]}.{fraction}Z" if fraction else text[:19] + "Z"


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
