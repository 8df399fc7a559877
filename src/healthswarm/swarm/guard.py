"""What protects a node from its inputs: counted drop reasons, replay memory, per-peer rate limits."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("healthswarm.swarm")


class Drop(Exception):
    """An input refused; `reason` is one short word counted in the node's statistics, `field` the item data field
    at fault when one is (so `node publish` can name its option)."""

    def __init__(self, reason: str, detail: str = "", field: str = "") -> None:
        self.reason, self.detail, self.field = reason, detail, field
        detail = f"{field} {detail}" if field else detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class DropCounter:
    reasons: Counter[str] = field(default_factory=Counter)
    last: list[str] = field(default_factory=list)

    def count(self, drop: Drop, keep: int = 20) -> None:
        self.reasons[drop.reason] += 1
        log.info("dropped %s", drop)
        self.last = ([*self.last, str(drop)])[-keep:]


@dataclass
class ReplayWindow:
    """Message nonces accepted within the clock-skew window; older messages are refused as skewed anyway."""

    window: float
    _seen: dict[str, float] = field(default_factory=dict)

    def check(self, nonce: str, sent: float, now: float) -> None:
        if nonce in self._seen:
            raise Drop("replay", f"message {nonce} already accepted")
        self._seen[nonce] = sent
        if len(self._seen) > 4096:
            horizon = now - 2 * self.window
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}


@dataclass
class RateLimiter:
    """A token bucket per peer: `rate` messages per second, bursts up to `burst`."""

    rate: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def check(self, peer: str, now: float) -> None:
        tokens, since = self._buckets.get(peer, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - since) * self.rate)
        if tokens < 1.0:
            self._buckets[peer] = (tokens, now)
            raise Drop("flood", f"peer {peer} exceeds {self.rate:g} messages/s")
        self._buckets[peer] = (tokens - 1.0, now)
