"""The application factory: `/api/v1`, the dashboard at `/`, TAXII 2.1 under `/taxii2/`."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import Engine

from healthswarm import __version__
from healthswarm.api import cases, docs, problems, routes, stream, swarm
from healthswarm.api.auth import principal
from healthswarm.config import Settings
from healthswarm.security import redact
from healthswarm.security.bodylimit import BodyLimitMiddleware
from healthswarm.security.ratelimit import RateLimitMiddleware
from healthswarm.share.taxii.server import MAX_CONTENT_LENGTH as TAXII_MAX_BODY
from healthswarm.share.taxii.server import make_router as taxii_router
from healthswarm.store import Store

DESCRIPTION = """Incidents, alerts, events, assets, findings and the ecosystem of healthcare organisations.

Authenticate with `Authorization: Bearer <token>` (`healthswarm token create --role viewer --name NAME`).
Roles: `viewer` reads, `analyst` also changes incident state, `admin` also manages tokens and reads the
audit log, `peer` only speaks TAXII. Every error is an RFC 9457 problem (`application/problem+json`).
A request body is read only after its token is accepted, and is at most `[api] max_body_bytes` (413 beyond)."""

TAXII = "/taxii2/"


def create_app(settings: Settings, engine: Engine | None = None, stream_poll: float | None = None) -> FastAPI:
    """The API app over the store `settings` name (or an already open `engine`, migrated)."""
    if engine is None:
        if not settings.db:
            settings.ensure_workspace()
        engine = Store.open(settings.db_url).engine
    app = FastAPI(title="healthswarm API", version=__version__, description=DESCRIPTION,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
                  # any route: a body past the cap, an address past its budget (the middlewares below)
                  responses=problems.problem_responses(413, 429))
    app.state.engine = engine
    if stream_poll is not None:
        app.state.stream_poll = stream_poll
    problems.install(app)
    docs.install(app)
    app.include_router(routes.router)
    app.include_router(cases.router)
    app.include_router(stream.router)
    from healthswarm.api.risk import router as risk_router
    app.include_router(risk_router)
    app.include_router(swarm.make_router(settings.workspace))
    from healthswarm.api import discover as discovered
    from healthswarm.api import history, models
    app.include_router(discovered.make_router(settings.workspace))
    app.include_router(history.router)
    app.include_router(models.make_router(settings.workspace))
    app.include_router(taxii_router(engine, api_root="taxii2/api1"), include_in_schema=False)
    from healthswarm.web import mount

    mount(app)
    redact.install()
    # the token before the body, and no body past its cap (TAXII keeps its own)
    app.add_middleware(BodyLimitMiddleware, default=settings.api.max_body_bytes, limits={TAXII: TAXII_MAX_BODY},
                       authenticate=_known_token(engine), protected=("/api/v1/",), taxii_prefixes=(TAXII,))
    # outermost, so a refused request costs no database work; health and discovery answer anyone
    app.add_middleware(RateLimitMiddleware, limits=settings.rate_limit,
                       public_paths=("/api/v1/health", TAXII), taxii_prefixes=(TAXII,),
                       trusted_proxies=settings.api.trusted_proxies)
    return app


def _known_token(engine: Engine) -> Callable[[str], bool]:
    def known(token: str) -> bool:
        with engine.connect() as conn:
            return principal(conn, token) is not None

    return known
