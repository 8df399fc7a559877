"""`/api/v1/swarm`: what the swarm nodes of this workspace see, read from the files they write.

A running node rewrites `<node workspace>/swarm/status.json` every round (`swarm/runtime.py`); the API reads
those files rather than talking to the nodes, so it needs no port of theirs and shows the last known state of a
node that has stopped. Two layouts are read: the workspace's own node (`<workspace>/swarm/status.json`) and the
demo's consortium, one node workspace per organisation (`<workspace>/swarm/<org>/swarm/status.json`, configured
by `<workspace>/swarm/<org>.toml`). Raised risk comes from the store (`swarm.exposure_store.stored_raises`).

A node rewrites its status every round, so a status older than a few rounds means the node stopped (or hangs):
the view says so (`age_seconds`, `stale`) and the rule lives here, not in each client.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine

from healthswarm.api.auth import Principal
from healthswarm.api.deps import READ, engine_of
from healthswarm.api.problems import problem_responses
from healthswarm.errors import HealthswarmError
from healthswarm.store import Store
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.exposure_store import stored_raises
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import KINDS
from healthswarm.swarm.params import Params
from healthswarm.swarm.persist import ITEMS
from healthswarm.swarm.runtime import STATUS

SWARM = "swarm"
# reporter names come from the node's item log; past this size a dashboard poll would read too much, so the
# names are left out (the count of reporting organisations is still in the status)
MAX_ITEM_LOG = 16 * 1024 * 1024
# a status older than this many rounds is stale (the node stopped or hangs); never under STALE_FLOOR seconds, so
# a fast demo node (0.2 s rounds) on a busy machine does not flicker between fresh and stale
STALE_ROUNDS = 5
STALE_FLOOR = 5.0


class Member(BaseModel):
    name: str
    addr: str = ""
    state: str = Field(description="alive, suspect, dead or left, as this node sees the member")
    incarnation: int = 0


class FieldKey(BaseModel):
    key: str = Field(description="indicator:<type>:<value>, technique:<id>, vendor:<name> or model:<name>")
    level: float = Field(description="trust × strength × decay, summed over reporting organisations")
    organisations: int = Field(description="how many organisations reported the key")
    reporters: list[str] | None = Field(None, description="their names, from the node's item log; null when unread")


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


class _StatusFile(BaseModel):
    """The part of `status.json` the view shows; a file that does not fit this is reported as corrupt."""

    name: str | None = None
    addr: str | None = None
    round: int | None = None
    items: int | None = None
    written: float | None = None
    period: float | None = None
    members: list[Member] = []
    threat_field: list[FieldKey] = []
    actions: list[str] = []
    dropped: dict[str, int] = {}
    risk_raised: list[str] = []
    field_digest: str | None = None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def node_folders(workspace: Path) -> list[tuple[str, Path, Path | None]]:
    """(name, node folder, node.toml or None) of the workspace's own node and of the demo's nodes."""
    base = workspace / SWARM
    found: list[tuple[str, Path, Path | None]] = []
    if (base / STATUS).is_file():
        found.append((workspace.resolve().name, base, None))
    if base.is_dir():
        # a demo node workspace is recognised by its own node folder; the local node's outbox/ has none
        for sub in sorted(p for p in base.iterdir() if p.is_dir() and (p / SWARM).is_dir()):
            config = base / f"{sub.name}.toml"
            found.append((sub.name, sub / SWARM, config if config.is_file() else None))
    return found


def _params(config: Path | None) -> Params:
    if config is not None:
        try:
            return load_node_config(config).params
        except HealthswarmError:
            pass   # a broken node.toml must not hide the status; the default is what such a node would use
    return Params()


def stale_after(period: float) -> float:
    return max(STALE_ROUNDS * period, STALE_FLOOR)


def _reporters(folder: Path, keys: set[str], now: float) -> dict[str, list[str]] | None:
    """Field key → the organisations whose unexpired items in the node's log mark it (verified when accepted)."""
    log = folder / ITEMS
    try:
        if log.stat().st_size > MAX_ITEM_LOG:
            return None
        lines = log.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    names: dict[str, set[str]] = {k: set() for k in keys}
    for line in lines:
        try:
            raw = json.loads(line)
            if raw["created"] / 1000 + raw["ttl"] < now:
                continue
            marks = KINDS[raw["kind"]](raw["data"])
            org = str(raw["org"])
        except (ValueError, KeyError, TypeError, AttributeError, Drop):
            continue   # a line cut short by a crash, as persist.ItemLog skips it too
        for mark in marks:
            if mark.key in names:
                names[mark.key].add(org)
    return {k: sorted(v) for k, v in names.items()}


def read_node(workspace: Path, name: str, folder: Path, config: Path | None, now: float) -> NodeStatus:
    """One node's status, or the node with an `error` saying why there is none."""
    where = str(folder.relative_to(workspace))
    params = _params(config)
    node = NodeStatus(name=name, folder=where, threshold=params.threshold, period=params.period,
                      stale_after=stale_after(params.period))
    path = folder / STATUS
    try:
        text = path.read_text(encoding="utf-8")
        mtime = path.stat().st_mtime
        node.file_modified = _iso(mtime)
    except FileNotFoundError:
        node.error = f"no {STATUS} in {where}: the node has not completed a round here"
        return node
    except (OSError, UnicodeDecodeError) as exc:
        node.error = f"{where}/{STATUS} cannot be read: {exc}"
        return node
    try:
        status = _StatusFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        node.error = f"{where}/{STATUS} is corrupt: {loc + ': ' if loc else ''}{first['msg']}"
        return node
    reporters = _reporters(folder, {k.key for k in status.threat_field}, now)
    for key in status.threat_field:
        key.reporters = None if reporters is None else reporters.get(key.key, [])
    node.name = status.name or name
    written = status.written if status.written is not None else mtime
    node.written = _iso(written)
    if status.period:   # the runtime writes its round; a node.toml beside it may be older than the running node
        node.period, node.stale_after = status.period, stale_after(status.period)
    node.age_seconds = round(max(now - written, 0.0), 1)
    node.stale = node.age_seconds > node.stale_after
    fields = ("addr", "round", "items", "members", "threat_field", "actions", "dropped", "risk_raised",
              "field_digest")
    return node.model_copy(update={f: getattr(status, f) for f in fields})


def make_router(workspace: Path) -> APIRouter:
    """The swarm view of `workspace` (the API's settings name it; the store comes from the app's engine)."""
    router = APIRouter(prefix="/api/v1/swarm", tags=["swarm"], responses=problem_responses(401, 403, 500))

    @router.get("/status", response_model=SwarmStatus, summary="Every swarm node's last status: members, "
                "threat field, warnings, drops, raised risk")
    def status(_: Principal = READ) -> dict[str, Any]:
        now = datetime.now(UTC).timestamp()
        nodes = [read_node(workspace, name, folder, config, now) for name, folder, config in node_folders(workspace)]
        return {"now": _iso(now), "nodes": nodes}

    @router.get("/risk", response_model=SwarmRisk, summary="Assets whose risk the swarm raised, and why")
    def risk(_: Principal = READ, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
        raised = stored_raises(Store(engine))
        rows = sorted(raised.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return {"assets": [{"asset": asset, "factor": factor, "why": why} for asset, (factor, why) in rows]}

    return router
