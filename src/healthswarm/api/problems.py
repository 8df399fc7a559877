"""RFC 9457 problem details: every 4xx and 5xx answer is `application/problem+json`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from healthswarm.share.taxii.server import TaxiiError, error_response

PROBLEM_MEDIA = "application/problem+json"
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
log = logging.getLogger(__name__)


class Problem(Exception):
    """An error answer: status, a short title, the detail for this occurrence, extra members."""

    def __init__(self, status: int, detail: str = "", title: str = "", **extra: Any) -> None:
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.extra = extra
        super().__init__(detail or self.title)


def problem_response(request: Request, status: int, title: str, detail: str = "",
                     headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.url.path
    body.update(extra)
    answer = dict(headers or {})
    if status == 401:
        answer["WWW-Authenticate"] = 'Bearer realm="healthswarm"'
    return Response(orjson.dumps(body, default=str), status_code=status, media_type=PROBLEM_MEDIA, headers=answer)


def allowed_methods(request: Request) -> str:
    """The methods some route answers at this path (`Allow` on a 405), probed through the routing itself;
    a mount (the dashboard's static files) answers GET and HEAD."""
    allowed = []
    for method in KNOWN_METHODS:
        # from the app's root: inside a mount the scope's root_path has grown by the mount's prefix
        scope = {**request.scope, "method": method, "root_path": request.scope.get("app_root_path", "")}
        for route in request.app.router.routes:
            if route.matches(scope)[0] is Match.FULL and (not isinstance(route, Mount) or method in ("GET", "HEAD")):
                allowed.append(method)
                break
    return ", ".join(allowed)


def _is_taxii(request: Request) -> bool:
    return request.url.path.startswith("/taxii2/")


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(request, exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(TaxiiError)
    async def _taxii(_request: Request, exc: TaxiiError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every route at the path (routing names only the first; a mount, none)
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = allowed_methods(request)
        if _is_taxii(request):
            response = error_response(TaxiiError(exc.status_code, str(exc.detail)))
            response.headers.update(headers)
            return response
        status = exc.status_code
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = "" if exc.detail == title else str(exc.detail)
        return problem_response(request, status, title, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()[:20]]
        if _is_taxii(request):
            return error_response(TaxiiError(400, "Bad Request", str(errors[:3])))
        first = errors[0] if errors else {"location": "", "message": "invalid request"}
        return problem_response(request, 400, "Invalid request", f"{first['location']}: {first['message']}",
                                errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "Internal Server Error", "an unexpected error; see the server log")


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem-details answers."""
    return {s: {"description": HTTPStatus(s).phrase, "content": {PROBLEM_MEDIA: {"schema": PROBLEM_SCHEMA}}}
            for s in statuses}
