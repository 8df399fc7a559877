"""`/api/v1/models`: the workspace's trained models (`detect.learn.workspace`) and their model cards' plots.

A model card's confusion matrix and ROC are files beside it (`<workspace>/models/<name>/confusion.svg`,
`roc.svg`); this serves those two names only, of a folder named like a model, and only when the file really
lies inside the models folder (a symlink pointing out of it is refused): no request path reaches any other file.
An SVG is served so that a browser opening it directly runs nothing in it (its own CSP forbids scripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from healthswarm.api.auth import Principal
from healthswarm.api.deps import READ
from healthswarm.api.problems import Problem, problem_responses
from healthswarm.detect.learn.workspace import NAME, list_models, models_dir

PLOTS = {"confusion.svg": "confusion matrix", "roc.svg": "ROC curve"}
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def plot_file(workspace: Path, name: str, plot: str) -> Path | None:
    """The plot's file, or None when the name is no model's, the plot is not one of PLOTS, or it is not there."""
    if plot not in PLOTS or not NAME.match(name):
        return None
    root = models_dir(workspace).resolve()
    path = (root / name / plot).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def make_router(workspace: Path) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["models"], responses=problem_responses(401, 403, 404, 500))

    @router.get("/models", summary="The workspace's models: card summary and which plots each has")
    def models(_: Principal = READ) -> list[dict[str, Any]]:
        out = []
        for card, status in list_models(workspace):
            scalars = {k: v for k, v in card.metrics.items() if isinstance(v, int | float | str)}
            out.append({"name": card.name, "kind": card.kind, "created": card.created, "status": status,
                        "classes": card.classes, "metrics": scalars,
                        "plots": {plot: (f"/api/v1/models/{card.name}/plots/{plot}"
                                         if plot_file(workspace, card.name, plot) else None) for plot in PLOTS}})
        return out

    @router.get("/models/{name}/plots/{plot}", summary="A model card's confusion matrix or ROC curve (SVG)",
                response_class=FileResponse, responses=problem_responses(400))  # a name or plot out of bounds
    def plot(name: str = PathParam(min_length=1, max_length=64), plot: str = PathParam(min_length=1, max_length=32),
             _: Principal = READ) -> FileResponse:
        path = plot_file(workspace, name, plot)
        if path is None:
            raise Problem(404, f"model {name!r} has no {plot!r} (plots: {', '.join(PLOTS)})", title="Not Found")
        return FileResponse(path, media_type="image/svg+xml", headers=SVG_HEADERS)

    return router
