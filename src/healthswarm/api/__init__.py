"""The REST API (FastAPI): `create_app(settings)`; no logic of its own beyond parsing and answering."""

from healthswarm.api.app import create_app

__all__ = ["create_app"]
