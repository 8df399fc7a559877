"""`/api/v1/risk/history`: the risk of each organisation over time (`risk.history`), for the dashboard's chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from healthswarm.api.auth import Principal
from healthswarm.api.deps import READ, reader
from healthswarm.api.problems import problem_responses
from healthswarm.risk.history import MAX_POINTS, load_history, series

router = APIRouter(prefix="/api/v1", tags=["risk"], responses=problem_responses(400, 401, 403, 500))


@router.get("/risk/history", summary="Each organisation's risk over time: one point per assessment")
def history(organisation: str | None = Query(None, min_length=1, max_length=200),
            since: datetime | None = Query(None, description="only points from then on (ISO 8601)"),
            limit: int = Query(MAX_POINTS, ge=1, le=MAX_POINTS, description="at most this many newest points"),
            _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    found = load_history(conn, organisation, since, limit)
    return {"points": len(found), "measure": "expected harm of the worst attacker profile (risk assess)",
            "organisations": {org: [p.as_dict() for p in pts] for org, pts in series(found).items()}}
