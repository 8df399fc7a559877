"""What one input may cost: decompressed bytes, compression ratio, record length.

A decompression bomb (a small archive that inflates to gigabytes of newlines, one JSON string of
2 GiB) must not keep a CPU busy for minutes: the container layer (`containers.py`) counts what every
decompressor produces against the compressed bytes read, and stops an input whose total or ratio
goes over its bound with `LimitExceeded`; the reason is quarantined. The line readers hold at most
`max_record_bytes` of one record.

The bounds come from `[ingest]` in the settings (`config.IngestLimits`); `configure()` makes them
the process's (one agent, one configuration), `current()` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthswarm.errors import HealthswarmError


@dataclass(frozen=True, slots=True)
class Limits:
    max_total_bytes: int = 1 << 30
    max_ratio: float = 100.0
    ratio_grace_bytes: int = 4 << 20
    max_record_bytes: int = 16 << 20

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """From `config.IngestLimits` (or anything with the same attributes)."""
        return cls(
            max_total_bytes=int(settings.max_total_bytes),
            max_ratio=float(settings.max_ratio),
            ratio_grace_bytes=int(settings.ratio_grace_bytes),
            max_record_bytes=int(settings.max_record_bytes),
        )


_current = Limits()


def current() -> Limits:
    return _current


def configure(limits: Limits) -> Limits:
    """Make `limits` the process's bounds; returns the previous ones (tests restore them)."""
    global _current
    previous, _current = _current, limits
    return previous


class LimitExceeded(HealthswarmError):
    """An input went over a bound: it is not read further. `reason` is what the quarantine records."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Budget:
    """The bytes one input has cost so far: `read` compressed bytes taken from the outermost stream,
    `produced` bytes its decompressors (every layer) have produced."""

    __slots__ = ("limits", "produced", "read")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or current()
        self.read = 0
        self.produced = 0

    def charge(self, produced: int) -> None:
        self.produced += produced
        limits = self.limits
        if self.produced > limits.max_total_bytes:
            raise LimitExceeded(
                f"decompression bomb: more than {limits.max_total_bytes:,} bytes decompressed from "
                f"{self.read:,} bytes read (limit: [ingest] max_total_bytes)"
            )
        if self.produced > limits.ratio_grace_bytes and self.produced > limits.max_ratio * max(self.read, 1):
            raise LimitExceeded(
                f"decompression bomb: {self.produced:,} bytes decompressed from {self.read:,} bytes read, "
                f"a ratio over {limits.max_ratio:g}:1 (limit: [ingest] max_ratio)"
            )
