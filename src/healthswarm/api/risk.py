"""Risk endpoints: an incident's predicted next targets (stored by `risk.live.annotate_incidents`) and
the most likely attack paths from an attacker profile to an asset (`risk.engine.find_paths`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import Connection

from healthswarm.api.auth import Principal
from healthswarm.api.deps import READ, reader
from healthswarm.api.problems import Problem, problem_responses
from healthswarm.errors import InputError
from healthswarm.risk.attack_graph import resolve_targets
from healthswarm.risk.engine import find_paths, parse_attacker
from healthswarm.risk.paths import AttackPath
from healthswarm.risk.service import path_form, predicted_next, stored_attack_graph

router = APIRouter(prefix="/api/v1", tags=["risk"], responses=problem_responses(400, 401, 403, 404, 500))

MAX_TARGETS = 50
TIME_LIMIT = 5.0


@router.get("/incidents/{incident_id}/predicted", summary="An incident's predicted next targets (live risk)")
def predicted(incident_id: str = Path(min_length=1, max_length=200), _: Principal = READ,
              conn: Connection = Depends(reader)) -> dict[str, Any]:
    found = predicted_next(conn, incident_id)
    if found is None:
        raise Problem(404, f"no incident {incident_id!r}", title="Not Found")
    return found


@router.get("/risk/paths/suggested", summary="A path question to start from, and the choices for the form")
def suggested(_: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return path_form(conn)


@router.get("/risk/paths", summary="The k most likely attack paths from an attacker profile to a target")
def paths(attacker: str = Query(alias="from", min_length=1, max_length=200,
                                description="attacker profile, optionally @organisation: phishing@st-aurelia"),
          to: str = Query(min_length=1, max_length=200, description="an asset id (or KIND[@ORGANISATION])"),
          k: int = Query(3, ge=1, le=20), max_steps: int | None = Query(None, ge=1, le=30),
          _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    graph = stored_attack_graph(conn)
    try:
        who = parse_attacker(attacker, graph.facts)
        targets = resolve_targets(graph.facts, to)
    except InputError as exc:
        raise Problem(400, "; ".join(str(p) for p in exc.problems), title="Invalid request") from None
    if not targets:
        raise Problem(400, f"{to!r} names no asset", title="Invalid request")
    if len(targets) > MAX_TARGETS:
        raise Problem(400, f"{to!r} names {len(targets)} assets; at most {MAX_TARGETS}", title="Invalid request")
    view = graph.view(who.profile, who.organisation)
    found = find_paths(view, targets, k, max_steps, TIME_LIMIT)
    return {"from": attacker, "to": to, "targets": targets, "method": found.method, "reason": found.reason,
            "complete": found.complete, "unreachable": found.unreachable, "seconds": round(found.seconds, 4),
            "paths": [_path(p) for p in found.paths]}


def _path(path: AttackPath) -> dict[str, Any]:
    """A path for the map: its states, and the assets it passes in order (for a polyline)."""
    assets: list[str] = []
    for node in path.nodes:
        if node.kind == "asset" and (not assets or assets[-1] != node.ref):
            assets.append(node.ref)
    return {**path.as_dict(), "assets": assets}
