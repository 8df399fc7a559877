"""Request bodies: the caller is known before a byte of the body is read, and no body outgrows its cap.

ASGI middleware in front of the API app:
- a request that carries a body (`Content-Length` > 0 or `Transfer-Encoding`) to a protected path (`/api/v1/`)
  must present a token that `authenticate` accepts, or it is answered 401 before the body is read;
- a declared `Content-Length` over the cap is answered 413 before the body is read;
- a body without a length (chunked) is counted as it streams in: the chunk that crosses the cap raises
  `BodyTooLarge` inside the app (an HTTP 413 exception, rendered by the app's own error handlers), so at most
  one cap and one chunk is ever held.
Refusals close the connection (`Connection: close`), so the rest of the body is never read. The cap is per
path prefix (TAXII keeps its own, larger one) and `default` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus

from anyio import to_thread
from starlette.exceptions import HTTPException

from healthswarm.security.asgi import ASGIApp, Message, Receive, Scope, Send, send_error

CLOSE = (b"connection", b"close")
TOO_LARGE = HTTPStatus(413).phrase


class BodyTooLarge(HTTPException):
    """413: the body grew past `limit` bytes while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"})
        self.limit = limit


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class BodyLimitMiddleware:
    """Authentication before the body, and a byte cap on every body (see the module's text)."""

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int] | None = None,
                 authenticate: Callable[[str], bool] | None = None, protected: tuple[str, ...] = (),
                 taxii_prefixes: tuple[str, ...] = ()) -> None:
        self.app, self.default = app, default
        # the longest matching prefix wins
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))
        self.authenticate, self.protected, self.taxii_prefixes = authenticate, protected, taxii_prefixes

    def limit(self, path: str) -> int:
        return next((cap for prefix, cap in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        cap = self.limit(path)
        declared, chunked = None, False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and not declared:  # no body (a malformed length is the server's to refuse)
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > cap:
            await send_error(send, path, 413, TOO_LARGE, f"the request body is larger than {cap} bytes",
                             self.taxii_prefixes, [("connection", "close")])
            return
        if self.authenticate is not None and path.startswith(self.protected) and not await self._known(scope):
            await send_error(send, path, 401, "Unauthorized",
                             "present a valid API token (Authorization: Bearer <token>) before a request body",
                             self.taxii_prefixes, [("www-authenticate", 'Bearer realm="healthswarm"'),
                                                   ("connection", "close")])
            return
        await self._counted(scope, receive, send, cap)

    async def _known(self, scope: Scope) -> bool:
        token = _bearer(scope)
        if not token or len(token) > 256 or self.authenticate is None:
            return False
        return await to_thread.run_sync(self.authenticate, token)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received, over, started, complete = 0, False, False, False

        async def counting() -> Message:
            nonlocal received, over, complete
            if over:
                raise BodyTooLarge(cap)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > cap:
                    over = True
                    raise BodyTooLarge(cap)
            return message

        async def closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over or not complete:  # answered before the body was read to its end: do not read on
                    headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                    message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        try:
            await self.app(scope, counting, closing)
        except BodyTooLarge as exc:  # an app that let it through: answer here if nothing was sent yet
            if started:
                raise
            await send_error(send, scope.get("path", ""), 413, TOO_LARGE, str(exc.detail),
                             self.taxii_prefixes, [("connection", "close")])
