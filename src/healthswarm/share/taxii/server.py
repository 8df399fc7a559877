"""The TAXII 2.1 server: a FastAPI APIRouter over the store (the API app mounts it; `serve-taxii` runs it alone).

Endpoints (OASIS TAXII 2.1 §4–5): discovery `/taxii2/`, API root `/{root}/`, status `/{root}/status/{id}/`,
collections, one collection, manifest, objects (GET with `added_after`, `match[id|type|version|spec_version]`,
`limit`/`next`; POST answering a status resource), one object (GET, DELETE) and its versions. Every
answer is `application/taxii+json;version=2.1`; errors are TAXII error messages. Callers present a
bearer token (or HTTP Basic with the token as password, for clients that only speak Basic); only its
SHA-256 is stored. `admin` tokens may do everything; `peer` tokens read and write only the
collections they were granted.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection, Engine

from healthswarm.config import RateLimits
from healthswarm.share.signing import SIGNATURE, TrustStore, VerificationError, verify_document
from healthswarm.share.taxii import storage
from healthswarm.share.taxii.storage import TAXII_MEDIA, Filters, Principal

MAX_CONTENT_LENGTH = 10 * 1024 * 1024
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str = "") -> None:
        self.status, self.title, self.description = status, title, description
        super().__init__(title)


def taxii_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=TAXII_MEDIA, headers=headers)


def error_response(exc: TaxiiError) -> Response:
    body = {"title": exc.title, "http_status": str(exc.status)}
    if exc.description:
        body["description"] = exc.description
    headers = {"WWW-Authenticate": 'Bearer realm="taxii"'} if exc.status == 401 else None
    return taxii_response(body, exc.status, headers)


def _accepts(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if not accept or "*/*" in accept:
        return
    wanted = [a.split(";q=")[0].strip().replace(" ", "") for a in accept.split(",")]
    if not any(w in {"application/taxii+json;version=2.1", "application/taxii+json"} for w in wanted):
        raise TaxiiError(406, "Not Acceptable", f"this server answers {TAXII_MEDIA}")


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            pass
    raise TaxiiError(401, "Unauthorized", "present a bearer token (Authorization: Bearer <token>)")


def _filters(request: Request) -> Filters:
    q = request.query_params

    def listed(name: str) -> list[str] | None:
        values = [v for raw in q.getlist(name) for v in raw.split(",") if v]
        return values or None

    f = Filters(ids=listed("match[id]"), types=listed("match[type]"), versions=listed("match[version]"),
                spec_versions=listed("match[spec_version]"))
    try:
        if "added_after" in q:
            f.added_after = storage.parse_taxii_stamp(q["added_after"])
        if "limit" in q:
            f.limit = int(q["limit"])
            if f.limit < 1:
                raise ValueError("limit must be a positive integer")
        f.limit = min(f.limit, MAX_PAGE)
        if "next" in q:
            f.next = storage.decode_next(q["next"])
        for version in f.versions or ():
            if version not in {"last", "first", "all"}:
                storage.parse_taxii_stamp(version)
    except ValueError as exc:
        raise TaxiiError(400, "Bad Request", str(exc)) from exc
    return f


def _page_headers(rows: list[Any]) -> dict[str, str]:
    if not rows:
        return {}
    first = min(r.date_added for r in rows)
    last = max(r.date_added for r in rows)
    return {"X-TAXII-Date-Added-First": storage.taxii_stamp(_utc(first)),
            "X-TAXII-Date-Added-Last": storage.taxii_stamp(_utc(last))}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def signed_writes(objects: list[Any], trust: TrustStore | None) -> None:
    """Refuse a write unless every object carries a valid signature by a key the server trusts.

    A token only says who may write; the signature says who wrote, and readers check it again
    (`share pull`), so an object a peer posts cannot pass for ours or travel without attribution."""
    if trust is None:
        raise TaxiiError(403, "Forbidden", "this server accepts no writes: it trusts no writer's key "
                                           "(add one with `healthswarm share keys trust`)")
    refused: Counter[str] = Counter()
    first: dict[str, int] = {}
    for index, obj in enumerate(objects):
        try:
            verify_document(obj, trust)
        except VerificationError as exc:
            refused[exc.reason] += 1
            first.setdefault(exc.reason, index)
    if refused:
        why = "; ".join(f"{count} {reason} (first: object {first[reason]})"
                        for reason, count in sorted(refused.items()))
        raise TaxiiError(403, "Forbidden", f"every object must carry {SIGNATURE} by a trusted key: {why}; "
                                           "nothing was stored")


def make_router(engine: Engine, api_root: str = "api1", title: str = "healthswarm TAXII 2.1",
                description: str = "Sanitised, signed healthcare threat intelligence",
                trust: TrustStore | None = None) -> APIRouter:
    """The TAXII router; discovery at `/taxii2/`, the one API root at `/{api_root}/`. Writes must be signed
    by a key of `trust` (`signed_writes`); without it the server is read-only."""
    router = APIRouter()

    def connection() -> Iterator[Connection]:
        with engine.begin() as conn:
            yield conn

    def authenticated(request: Request, conn: Connection = Depends(connection)) -> Principal:
        _accepts(request)
        who = storage.principal(conn, _token(request))
        if who is None:
            raise TaxiiError(401, "Unauthorized", "unknown token")
        return who

    def readable(conn: Connection, who: Principal, collection_id: str) -> Any:
        row = storage.collection(conn, api_root, collection_id)
        if row is None:
            raise TaxiiError(404, "Not Found", f"no collection {collection_id}")
        can_read, can_write = storage.rights(conn, who, row.id)
        if not (can_read or can_write):
            raise TaxiiError(404, "Not Found", f"no collection {collection_id}")
        return row, can_read, can_write

    def collection_resource(row: Any, can_read: bool, can_write: bool) -> dict[str, Any]:
        out = {"id": row.id, "title": row.title, "can_read": can_read, "can_write": can_write,
               "media_types": list(row.media_types)}
        if row.description:
            out["description"] = row.description
        if row.alias:
            out["alias"] = row.alias
        return out

    @router.get("/taxii2/")
    def discovery(request: Request, who: Principal = Depends(authenticated)) -> Response:
        root_url = str(request.base_url).rstrip("/") + f"/{api_root}/"
        return taxii_response({"title": title, "description": description, "default": root_url,
                               "api_roots": [root_url]})

    @router.get(f"/{api_root}/")
    def root(who: Principal = Depends(authenticated)) -> Response:
        return taxii_response({"title": title, "description": description, "versions": [TAXII_MEDIA],
                               "max_content_length": MAX_CONTENT_LENGTH})

    @router.get(f"/{api_root}/status/{{status_id}}/")
    def status(status_id: str, who: Principal = Depends(authenticated),
               conn: Connection = Depends(connection)) -> Response:
        found = storage.status_resource(conn, api_root, status_id)
        if found is None:
            raise TaxiiError(404, "Not Found", f"no status {status_id}")
        return taxii_response(found)

    @router.get(f"/{api_root}/collections/")
    def list_collections(who: Principal = Depends(authenticated), conn: Connection = Depends(connection)) -> Response:
        out = []
        for row in storage.collections(conn, api_root):
            can_read, can_write = storage.rights(conn, who, row.id)
            if can_read or can_write:
                out.append(collection_resource(row, can_read, can_write))
        return taxii_response({"collections": out} if out else {})

    @router.get(f"/{api_root}/collections/{{collection_id}}/")
    def get_collection(collection_id: str, who: Principal = Depends(authenticated),
                       conn: Connection = Depends(connection)) -> Response:
        row, can_read, can_write = readable(conn, who, collection_id)
        return taxii_response(collection_resource(row, can_read, can_write))

    def _need_read(can_read: bool) -> None:
        if not can_read:
            raise TaxiiError(403, "Forbidden", "this token may not read this collection")

    @router.get(f"/{api_root}/collections/{{collection_id}}/manifest/")
    def manifest(collection_id: str, request: Request, who: Principal = Depends(authenticated),
                 conn: Connection = Depends(connection)) -> Response:
        row, can_read, _w = readable(conn, who, collection_id)
        _need_read(can_read)
        rows, more = storage.query_objects(conn, row.id, _filters(request))
        body: dict[str, Any] = {"more": more}
        if rows:
            body["objects"] = [{"id": r.object_id, "date_added": storage.taxii_stamp(_utc(r.date_added)),
                                "version": r.version, "media_type": r.media_type} for r in rows]
        if more:
            body["next"] = storage.encode_next(rows[-1])
        return taxii_response(body, headers=_page_headers(rows))

    def envelope(rows: list[Any], more: bool) -> Response:
        parts = [b'{"more":', b"true" if more else b"false"]
        if more:
            parts += [b',"next":', orjson.dumps(storage.encode_next(rows[-1]))]
        if rows:
            # documents come back from the JSON column parsed; serialise once, straight to bytes
            parts += [b',"objects":[', b",".join(orjson.dumps(r.document) for r in rows), b"]"]
        parts.append(b"}")
        return Response(b"".join(parts), media_type=TAXII_MEDIA, headers=_page_headers(rows))

    @router.get(f"/{api_root}/collections/{{collection_id}}/objects/")
    def get_objects(collection_id: str, request: Request, who: Principal = Depends(authenticated),
                    conn: Connection = Depends(connection)) -> Response:
        row, can_read, _w = readable(conn, who, collection_id)
        _need_read(can_read)
        rows, more = storage.query_objects(conn, row.id, _filters(request))
        return envelope(rows, more)

    @router.post(f"/{api_root}/collections/{{collection_id}}/objects/")
    async def add_objects(collection_id: str, request: Request, who: Principal = Depends(authenticated),
                          conn: Connection = Depends(connection)) -> Response:
        row, _r, can_write = readable(conn, who, collection_id)
        if not can_write:
            raise TaxiiError(403, "Forbidden", "this token may not write to this collection")
        content_type = request.headers.get("content-type", "").replace(" ", "")
        if not content_type.startswith("application/taxii+json"):
            raise TaxiiError(415, "Unsupported Media Type", f"send {TAXII_MEDIA}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_CONTENT_LENGTH:
            raise TaxiiError(413, "Payload Too Large", f"at most {MAX_CONTENT_LENGTH} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():   # counted as it arrives: a chunked body is cut at the cap
            size += len(chunk)
            if size > MAX_CONTENT_LENGTH:
                raise TaxiiError(413, "Payload Too Large", f"at most {MAX_CONTENT_LENGTH} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise TaxiiError(400, "Bad Request", f"not valid JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
            raise TaxiiError(400, "Bad Request", 'expected an envelope {"objects": [...]}')
        signed_writes(document["objects"], trust)
        successes, failures = storage.add_objects(conn, row.id, document["objects"])
        return taxii_response(storage.save_status(conn, api_root, successes, failures), status=202)

    @router.get(f"/{api_root}/collections/{{collection_id}}/objects/{{object_id}}/")
    def get_object(collection_id: str, object_id: str, request: Request, who: Principal = Depends(authenticated),
                   conn: Connection = Depends(connection)) -> Response:
        row, can_read, _w = readable(conn, who, collection_id)
        _need_read(can_read)
        rows, more = storage.query_objects(conn, row.id, _filters(request), object_id)
        if not rows and not more:
            raise TaxiiError(404, "Not Found", f"no object {object_id} (with these filters)")
        return envelope(rows, more)

    @router.delete(f"/{api_root}/collections/{{collection_id}}/objects/{{object_id}}/")
    def delete_object(collection_id: str, object_id: str, request: Request, who: Principal = Depends(authenticated),
                      conn: Connection = Depends(connection)) -> Response:
        row, can_read, can_write = readable(conn, who, collection_id)
        if not (can_read and can_write):
            raise TaxiiError(403, "Forbidden", "deleting needs read and write rights")
        if storage.delete_object(conn, row.id, object_id, _filters(request)) == 0:
            raise TaxiiError(404, "Not Found", f"no object {object_id} (with these filters)")
        return Response(status_code=200, media_type=TAXII_MEDIA)

    @router.get(f"/{api_root}/collections/{{collection_id}}/objects/{{object_id}}/versions/")
    def versions(collection_id: str, object_id: str, request: Request, who: Principal = Depends(authenticated),
                 conn: Connection = Depends(connection)) -> Response:
        row, can_read, _w = readable(conn, who, collection_id)
        _need_read(can_read)
        f = _filters(request)
        f.versions = ["all"]
        rows, more = storage.query_objects(conn, row.id, f, object_id)
        if not rows and not more:
            raise TaxiiError(404, "Not Found", f"no object {object_id}")
        body: dict[str, Any] = {"more": more, "versions": [r.version for r in rows]}
        if more:
            body["next"] = storage.encode_next(rows[-1])
        return taxii_response(body, headers=_page_headers(rows))

    return router


def make_app(engine: Engine, api_root: str = "api1", psi: bool = False, psi_reveal: bool = True,
             limits: RateLimits | None = None, trust: TrustStore | None = None) -> Any:
    """A standalone FastAPI app serving TAXII (what `healthswarm share serve-taxii` runs) and, with `psi`,
    private matching of our own stored indicators at `/psi/intersect` for the same tokens; rate-limited
    per client address (`limits`, default: the defaults of `[rate_limit]`)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError

    from healthswarm.security import redact
    from healthswarm.security.ratelimit import RateLimitMiddleware

    storage.setup(engine)
    app = FastAPI(title="healthswarm TAXII 2.1", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(make_router(engine, api_root, trust=trust))
    if psi:
        from healthswarm.share.indicators import load_indicators
        from healthswarm.share.psi import items_of, make_psi_router

        def own_items() -> list[str]:
            with engine.connect() as conn:
                return items_of(load_indicators(conn, own_only=True))

        def authorised(token: str) -> bool:
            with engine.connect() as conn:
                return storage.principal(conn, token) is not None

        app.include_router(make_psi_router(own_items, authorised, allow_reveal=psi_reveal))
    install_error_handlers(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(TaxiiError(400, "Bad Request", str(exc.errors()[:3])))

    redact.install()
    app.add_middleware(RateLimitMiddleware, limits=limits or RateLimits(), public_paths=("/taxii2/",),
                       taxii_prefixes=("/taxii2/", f"/{api_root}/"))
    return app


def install_error_handlers(app: Any) -> None:
    """TAXII error bodies for TaxiiError and for unknown paths (the API app calls this too)."""
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(TaxiiError)
    async def _taxii(_request: Request, exc: TaxiiError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(TaxiiError(exc.status_code, str(exc.detail)))


__all__ = ["TaxiiError", "install_error_handlers", "make_app", "make_router"]
