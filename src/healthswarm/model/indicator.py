"""An indicator of compromise: a value worth watching for, where it came from and how far to trust it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: What an indicator's value is. Hashes name their algorithm, as STIX file hashes do.
INDICATOR_TYPES: frozenset[str] = frozenset(
    {
        "ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512",
        "filename", "cve", "attack-technique", "user-agent", "ja3", "mutex", "registry-key",
    }
)

#: TLP 2.0 levels, least restrictive first.
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")


@dataclass(slots=True)
class Indicator:
    """One indicator.

    `value` is normalised by type (lower-case domains and hashes); `source` is the pseudonymous
    organisation identity it came from (a STIX `identity--…` id, or "" for our own);
    `confidence` is 0–100 as in STIX; `tlp` one of `TLP_LEVELS`; `first_seen`/`last_seen` are UTC.
    `stix_id` is the STIX indicator id it was exchanged under, when there was one.
    """

    value: str
    type: str
    first_seen: datetime
    last_seen: datetime
    confidence: int = 50
    source: str = ""
    tlp: str = "amber"
    description: str = ""
    techniques: tuple[str, ...] = ()
    stix_id: str = ""
    labels: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in INDICATOR_TYPES:
            raise ValueError(f"indicator type {self.type!r} is not one of {', '.join(sorted(INDICATOR_TYPES))}")
        if self.tlp not in TLP_LEVELS:
            raise ValueError(f"indicator TLP {self.tlp!r} is not one of {', '.join(TLP_LEVELS)}")
        if not 0 <= self.confidence <= 100:
            raise ValueError(f"indicator confidence {self.confidence} is not within 0..100")
        for name in ("first_seen", "last_seen"):
            stamp: datetime = getattr(self, name)
            if stamp.tzinfo is None:
                raise ValueError(f"indicator {name} must be timezone-aware (UTC)")
            if stamp.utcoffset():
                setattr(self, name, stamp.astimezone(UTC))
        if self.last_seen < self.first_seen:
            raise ValueError("indicator last_seen is before first_seen")
        if self.type in {"domain", "email", "md5", "sha1", "sha256", "sha512", "ja3"}:
            self.value = self.value.strip().lower()
        elif self.type in {"cve", "attack-technique"}:
            self.value = self.value.strip().upper()
        else:
            self.value = self.value.strip()
        if not self.value:
            raise ValueError("indicator value is empty")

    @property
    def key(self) -> str:
        """Identity of the indicator within one source: type and value."""
        basis = f"{self.source}\x00{self.type}\x00{self.value}"
        return hashlib.blake2b(basis.encode(), digest_size=16).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value, "type": self.type, "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(), "confidence": self.confidence, "source": self.source,
            "tlp": self.tlp, "description": self.description, "techniques": list(self.techniques),
            "stix_id": self.stix_id, "labels": list(self.labels), "extra": self.extra,
        }
