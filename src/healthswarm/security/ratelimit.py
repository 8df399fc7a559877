"""Rate limits per client IP address, as plain ASGI middleware in front of the API and the TAXII server.

Two token buckets per address: one drained by failed authentications (401 answers), so guessing tokens
stalls after a burst; one drained by public requests (those that present no credentials, and those to
the public paths such as liveness and TAXII discovery, which answer without checking one). An empty
bucket answers 429 with Retry-After. Authenticated requests to other paths are not limited: a peer
pulling a large collection page by page must not be throttled by its own success.

The address is the one that connected; `X-Forwarded-For` counts only on connections from a configured
reverse proxy (`trusted_proxies`, see `security.proxies`), so a client cannot pick a fresh bucket per request.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from healthswarm.config import RateLimits
from healthswarm.security.asgi import TAXII_MEDIA, ASGIApp, Message, Receive, Scope, Send, send_error
from healthswarm.security.proxies import TrustedProxies

__all__ = ["TAXII_MEDIA", "Buckets", "RateLimitMiddleware"]

MAX_ADDRESSES = 100_000  # beyond this the least recently seen addresses are forgotten (bounded memory)


class Buckets:
    """Token buckets of `capacity`, each refilled evenly over `window` seconds, keyed by client address."""

    def __init__(self, capacity: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.clock = float(capacity), capacity / window, clock
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str) -> float:
        now = self.clock()
        tokens, stamp = self._levels.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - stamp) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token (0: it has one now), without taking it."""
        return max(0.0, (1.0 - self._level(key)) / self.rate)

    def take(self, key: str) -> float:
        """Take a token; 0 when there was one, else the seconds to wait (nothing is taken)."""
        tokens = self._level(key)
        if tokens < 1.0:
            return (1.0 - tokens) / self.rate
        self._levels[key] = (tokens - 1.0, self.clock())
        self._levels.move_to_end(key)
        if len(self._levels) > MAX_ADDRESSES:
            self._levels.popitem(last=False)
        return 0.0


def _credentials(scope: Scope) -> bool:
    if any(name == b"authorization" for name, _ in scope.get("headers", ())):
        return True
    return b"access_token=" in scope.get("query_string", b"")


class RateLimitMiddleware:
    """429 + Retry-After when a client address exhausts its authentication-failure or public budget."""

    def __init__(self, app: ASGIApp, limits: RateLimits, public_paths: tuple[str, ...] = (),
                 taxii_prefixes: tuple[str, ...] = (), clock: Callable[[], float] = time.monotonic,
                 trusted_proxies: Iterable[str] = ()) -> None:
        self.app, self.limits = app, limits
        self.proxies = TrustedProxies(trusted_proxies)
        self.public_paths, self.taxii_prefixes = frozenset(public_paths), taxii_prefixes
        self.failures = Buckets(limits.auth_failures, limits.auth_window, clock)
        self.public = Buckets(limits.public_requests, limits.public_window, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled:
            await self.app(scope, receive, send)
            return
        client = self.proxies.client(scope)
        path = scope.get("path", "")
        wait = self.failures.wait(client)
        if not wait and (path in self.public_paths or not _credentials(scope)):
            wait = self.public.take(client)
        if wait:
            await self._refuse(path, wait, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.failures.take(client)
            await send(message)

        await self.app(scope, receive, watch)

    async def _refuse(self, path: str, wait: float, send: Send) -> None:
        await send_error(send, path, 429, "Too Many Requests",
                         f"too many requests from this address; retry in {math.ceil(wait)} s",
                         self.taxii_prefixes, [("retry-after", str(math.ceil(wait)))])
