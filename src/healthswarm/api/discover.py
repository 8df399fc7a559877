"""`/api/v1/discovered`: the dashboard's Discovered view over `inventory discover`'s picture and diff.

Undeclared devices, undeclared flows, silent declared assets and contradicted versions, each with a key;
accepting keys merges them into the stored inventory through `inventory merge`'s merge (validated, nothing
applied on any problem), ignoring keys remembers them in the workspace so they do not come back. The use
cases are `inventory.discover.service`'s; this module parses, calls, audits and answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from healthswarm.api.auth import Principal
from healthswarm.api.deps import CHANGE, READ, engine_of
from healthswarm.api.problems import Problem, problem_responses
from healthswarm.errors import InputError
from healthswarm.inventory.discover.service import accept_items, discovered_view, ignore_items
from healthswarm.store import Store
from healthswarm.store.audit import record_change

MAX_KEYS = 500


class Choice(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=MAX_KEYS, description="item keys from GET /discovered")


def make_router(workspace: Path) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["discovery"], responses=problem_responses(400, 401, 403, 500))

    def store(request: Request) -> Store:
        return Store(engine_of(request))

    def refused(exc: InputError) -> Problem:
        return Problem(400, "; ".join(str(p) for p in exc.problems), title="Invalid request",
                       problems=[str(p) for p in exc.problems])

    @router.get("/discovered", summary="Undeclared devices and flows, silent assets, contradicted versions")
    def discovered(request: Request, _: Principal = READ) -> dict[str, Any]:
        return discovered_view(store(request), workspace).as_dict()

    @router.post("/discovered/accept", summary="Merge the chosen items into the inventory (all or nothing; audited)")
    def accept(body: Choice, request: Request, who: Principal = CHANGE) -> dict[str, Any]:
        try:
            result = accept_items(store(request), workspace, body.keys)
        except InputError as exc:
            raise refused(exc) from None
        merged = {**result.merge.as_dict(), "patch": result.patch.name}
        with engine_of(request).begin() as conn:
            record_change(conn, who.name, who.role, "discovered.accept", "inventory", "inventory", None,
                          {"keys": body.keys, **merged})
        return {"merged": merged, "view": result.view.as_dict()}

    @router.post("/discovered/ignore", summary="Hide the chosen items from the view for good (audited)")
    def ignore(body: Choice, request: Request, who: Principal = CHANGE) -> dict[str, Any]:
        try:
            view = ignore_items(store(request), workspace, body.keys, who.name)
        except InputError as exc:
            raise refused(exc) from None
        with engine_of(request).begin() as conn:
            record_change(conn, who.name, who.role, "discovered.ignore", "inventory", "inventory", None,
                          {"keys": body.keys})
        return view.as_dict()

    return router
