"""`/api/v1/swarm`: what the swarm nodes of this workspace see, read from the files they write
(`swarm.service.node_views`: the workspace's own node and the demo's consortium), and the assets whose risk the
swarm raised (`swarm.exposure_store.stored_raises`).

A node rewrites its status every round, so a status older than a few rounds means the node stopped (or hangs):
the view says so (`age_seconds`, `stale`); the rule lives in the swarm's service, not in each client.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from healthswarm.api.auth import Principal
from healthswarm.api.deps import READ, engine_of
from healthswarm.api.problems import problem_responses
from healthswarm.store import Store
from healthswarm.swarm.exposure_store import stored_raises
from healthswarm.swarm.params import Params
from healthswarm.swarm.service import STALE_FLOOR, STALE_ROUNDS, FieldKey, Member, NodeView, node_views


class NodeStatus(BaseModel):
    """One node's last status file; `error` says why the rest is missing (no file yet, unreadable, corrupt)."""

    name: str
    folder: str = Field(description="the node's folder, relative to the workspace")
    error: str | None = None
    written: str | None = Field(None, description="when the node wrote the status (ISO 8601 UTC)")
    file_modified: str | None = Field(None, description="the status file's modification time (ISO 8601 UTC)")
    age_seconds: float | None = Field(None, description="how old the status is at `now` (by `written`)")
    period: float = Field(Params().period, description="the node's round, in seconds: it rewrites the status "
                                                       "every round")
    stale_after: float = Field(description=f"seconds after which the status is stale: {STALE_ROUNDS} rounds, "
                                           f"at least {STALE_FLOOR:g} s")
    stale: bool = Field(False, description="the status is older than `stale_after`: the node stopped or hangs, "
                                           "and what it says (members alive, …) is its last word, not the present")
    threshold: float = Field(Params().threshold, description="level at which the node acts (priority high); "
                                                             "half of it is priority elevated")
    addr: str | None = None
    round: int | None = None
    items: int | None = None
    members: list[Member] = []
    threat_field: list[FieldKey] = Field([], description="the top keys of the threat field, highest level first")
    actions: list[str] = Field([], description="the node's warnings, each with why it acted")
    dropped: dict[str, int] = Field({}, description="dropped messages by reason")
    risk_raised: list[str] = Field([], description="why the node raised the risk of its organisation's assets")
    field_digest: str | None = Field(None, description="hash of the field's state: equal digests, converged replicas")


class SwarmStatus(BaseModel):
    now: str = Field(description="the server's clock (ISO 8601 UTC), to judge how old each status is")
    nodes: list[NodeStatus]


class RaisedAsset(BaseModel):
    asset: str
    factor: float = Field(description="the multiplier the swarm applied to the asset's risk")
    why: str


class SwarmRisk(BaseModel):
    assets: list[RaisedAsset] = Field(description="assets whose risk the swarm raised, highest factor first")


_SHOWN = ("addr", "round", "items", "members", "threat_field", "actions", "dropped", "risk_raised", "field_digest")


def _render(view: NodeView) -> NodeStatus:
    fields = {k: v for k, v in asdict(view).items() if k != "status"}
    if view.status is not None:
        fields.update({name: getattr(view.status, name) for name in _SHOWN})
    return NodeStatus(**fields)


def make_router(workspace: Path) -> APIRouter:
    """The swarm view of `workspace` (the API's settings name it; the store comes from the app's engine)."""
    router = APIRouter(prefix="/api/v1/swarm", tags=["swarm"], responses=problem_responses(401, 403, 500))

    @router.get("/status", response_model=SwarmStatus, summary="Every swarm node's last status: members, "
                "threat field, warnings, drops, raised risk")
    def status(_: Principal = READ) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"now": now.isoformat(timespec="seconds"),
                "nodes": [_render(view) for view in node_views(workspace, now.timestamp())]}

    @router.get("/risk", response_model=SwarmRisk, summary="Assets whose risk the swarm raised, and why")
    def risk(_: Principal = READ, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
        raised = stored_raises(Store(engine))
        rows = sorted(raised.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return {"assets": [{"asset": asset, "factor": factor, "why": why} for asset, (factor, why) in rows]}

    return router
