"""The application factory: `/api/v1`, the dashboard at `/`, TAXII 2.1 under `/taxii2/`."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from healthswarm import __version__
from healthswarm.api import cases, problems, routes, stream, swarm
from healthswarm.config import Settings
from healthswarm.security import redact
from healthswarm.security.ratelimit import RateLimitMiddleware
from healthswarm.share.taxii.server import make_router as taxii_router
from healthswarm.store import Store

DESCRIPTION = """Incidents, alerts, events, assets, findings and the ecosystem of healthcare organisations.

Authenticate with `Authorization: Bearer <token>` (`healthswarm token create --role viewer --name NAME`).
Roles: `viewer` reads, `analyst` also changes incident state, `admin` also manages tokens and reads the
audit log, `peer` only speaks TAXII. Every error is an RFC 9457 problem (`application/problem+json`)."""


def create_app(settings: Settings, engine: Engine | None = None, stream_poll: float | None = None) -> FastAPI:
    """The API app over the store `settings` name (or an already open `engine`, migrated)."""
    if engine is None:
        if not settings.db:
            settings.ensure_workspace()
        engine = Store.open(settings.db_url).engine
    app = FastAPI(title="healthswarm API", version=__version__, description=DESCRIPTION,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.engine = engine
    if stream_poll is not None:
        app.state.stream_poll = stream_poll
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(cases.router)
    app.include_router(stream.router)
    from healthswarm.api.risk import router as risk_router
    app.include_router(risk_router)
    app.include_router(swarm.make_router(settings.workspace))
    app.include_router(taxii_router(engine, api_root="taxii2/api1"), include_in_schema=False)
    from healthswarm.web import mount

    mount(app)
    redact.install()
    # outermost, so a refused request costs no database work; health and discovery answer anyone
    app.add_middleware(RateLimitMiddleware, limits=settings.rate_limit,
                       public_paths=("/api/v1/health", "/taxii2/"), taxii_prefixes=("/taxii2/",))
    return app
