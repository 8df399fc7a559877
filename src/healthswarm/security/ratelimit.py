"""Rate limits per client IP address, as plain ASGI middleware in front of the API and the TAXII server.

Two token buckets per address: one drained by failed authentications (401 answers), so guessing tokens
stalls after a burst; one drained by public requests (those that present no credentials, and those to
the public paths such as liveness and TAXII discovery, which answer without checking one). An empty
bucket answers 429 with Retry-After. Authenticated requests to other paths are not limited: a peer
pulling a large collection page by page must not be throttled by its own success.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from healthswarm.config import RateLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_ADDRESSES = 100_000  # beyond this the least recently seen addresses are forgotten (bounded memory)
TAXII_MEDIA = "application/taxii+json;version=2.1"


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
                 taxii_prefixes: tuple[str, ...] = (), clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.limits = app, limits
        self.public_paths, self.taxii_prefixes = frozenset(public_paths), taxii_prefixes
        self.failures = Buckets(limits.auth_failures, limits.auth_window, clock)
        self.public = Buckets(limits.public_requests, limits.public_window, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
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
        detail = f"too many requests from this address; retry in {math.ceil(wait)} s"
        if path.startswith(self.taxii_prefixes):
            media, body = TAXII_MEDIA, {"title": "Too Many Requests", "http_status": "429", "description": detail}
        else:
            media = "application/problem+json"
            body = {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": detail,
                    "instance": path}
        content = orjson.dumps(body)
        headers = [(b"content-type", media.encode()), (b"content-length", str(len(content)).encode()),
                   (b"retry-after", str(math.ceil(wait)).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": content})
