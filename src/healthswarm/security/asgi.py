"""What the security middlewares share: ASGI types and an error answer sent before the app runs.

An answer on a TAXII path is a TAXII error (`application/taxii+json`), elsewhere an RFC 9457 problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TAXII_MEDIA = "application/taxii+json;version=2.1"
PROBLEM_MEDIA = "application/problem+json"


async def send_error(send: Send, path: str, status: int, title: str, detail: str,
                     taxii_prefixes: tuple[str, ...] = (), headers: Iterable[tuple[str, str]] = ()) -> None:
    """Answer `status` with `detail`, as a TAXII error under `taxii_prefixes` and a problem elsewhere."""
    if taxii_prefixes and path.startswith(taxii_prefixes):
        media, body = TAXII_MEDIA, {"title": title, "http_status": str(status), "description": detail}
    else:
        media = PROBLEM_MEDIA
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": path}
    content = orjson.dumps(body)
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(content)).encode())]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})
