"""Request dependencies: a database connection, the caller's identity, and their permission."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from healthswarm.api.auth import Principal, principal
from healthswarm.api.problems import Problem

# declares the `bearer` security scheme in the OpenAPI document and on every route that requires a role;
# the token itself is checked by `identify` (auto_error off: a missing token is our own 401 problem)
BEARER = HTTPBearer(scheme_name="bearer", description="`healthswarm token create --role viewer --name NAME`",
                    auto_error=False)


def bearer(request: Request, allow_query: bool = False) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_query and request.query_params.get("access_token"):
        return request.query_params["access_token"]
    raise Problem(401, "present an API token: Authorization: Bearer <token>", title="Unauthorized")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def reader(request: Request) -> Iterator[Connection]:
    with engine_of(request).connect() as conn:
        yield conn


def writer(request: Request) -> Iterator[Connection]:
    with engine_of(request).begin() as conn:
        yield conn


def identify(request: Request, allow_query: bool = False) -> Principal:
    token = bearer(request, allow_query)
    with engine_of(request).connect() as conn:
        who = principal(conn, token)
    if who is None:
        raise Problem(401, "the token is unknown or revoked", title="Unauthorized")
    return who


def requires(permission: str) -> Callable[..., Principal]:
    """A dependency that admits only callers whose role grants `permission` (401 without a token, 403 without it)."""

    def check(request: Request, _declared: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> Principal:
        who = identify(request)
        if not who.may(permission):
            raise Problem(403, f"role {who.role!r} may not {permission} here", title="Forbidden", role=who.role)
        return who

    return check


READ = Depends(requires("read"))
CHANGE = Depends(requires("change"))
ADMIN = Depends(requires("admin"))
