"""`/api/v1/docs`: Swagger UI from the installed `fastapi-offline` package (no CDN), under the dashboard's
security headers. FastAPI's own page holds an inline script, which that Content-Security-Policy refuses; this
page loads three same-origin scripts and styles, each pinned with Subresource Integrity."""

from __future__ import annotations

import base64
import functools
import hashlib
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse

from healthswarm.api.problems import Problem
from healthswarm.web import HEADERS, STATIC

DOCS = "/api/v1/docs"


def _swagger_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


# what the page may load: name → (file, media type)
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_swagger_dir() / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (_swagger_dir() / "swagger-ui.css", "text/css; charset=utf-8"),
    "init.js": (STATIC / "apidocs.js", "text/javascript; charset=utf-8"),
}


@functools.cache
def integrity(name: str) -> str:
    digest = hashlib.sha384(ASSETS[name][0].read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


def page(root: str, openapi_url: str) -> str:
    def src(name: str) -> str:
        return f'{escape(root)}{DOCS}/{name}" integrity="{integrity(name)}'

    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>healthswarm API · Swagger UI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{src("swagger-ui.css")}">
</head>
<body>
<div id="swagger-ui" data-openapi="{escape(root + openapi_url)}"></div>
<script src="{src("swagger-ui-bundle.js")}"></script>
<script src="{src("init.js")}"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the documentation page and its files (create the app with `docs_url=None`)."""
    openapi_url = app.openapi_url or "/api/v1/openapi.json"

    @app.get(DOCS, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page(request.scope.get("root_path", ""), openapi_url), headers=HEADERS)

    @app.get(DOCS + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise Problem(404, f"no file {name!r} here", title="Not Found")
        path, media = ASSETS[name]
        return FileResponse(path, media_type=media, headers=HEADERS)
