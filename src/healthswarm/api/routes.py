"""The `/api/v1` endpoints: parse, call a stage's service, answer. No logic here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from healthswarm.api import auth, pages
from healthswarm.api.auth import Principal
from healthswarm.api.deps import ADMIN, CHANGE, READ, reader, writer
from healthswarm.api.pages import DEFAULT_PAGE, MAX_PAGE
from healthswarm.api.problems import Problem, problem_responses
from healthswarm.detect import service as incidents_service
from healthswarm.ingest.service import find_events
from healthswarm.inventory import service as inventory_service
from healthswarm.model import LEVELS
from healthswarm.model.incident import STAGE_NAMES, IncidentState
from healthswarm.store.audit import load_audit

router = APIRouter(prefix="/api/v1", responses=problem_responses(400, 401, 403, 404, 500))

# the model's own names, so the API's enums cannot drift from what incidents and alerts carry
StageName = Literal[STAGE_NAMES]  # type: ignore[valid-type]
LevelName = Literal[LEVELS]  # type: ignore[valid-type]
SeverityName = Literal["none", "low", "medium", "high", "critical"]


# FastAPI binds a parameter's FieldInfo to one name: every parameter gets its own instance
def Ident() -> Any:
    return Path(min_length=1, max_length=200)


def Limit() -> Any:
    return Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")


def Cursor() -> Any:
    return Query(None, max_length=200, description="`next_cursor` of the previous page")


def Filter() -> Any:
    return Query(None, min_length=1, max_length=200)


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int | None = None


class StateChange(BaseModel):
    state: IncidentState
    note: str = Field("", max_length=2000)


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=auth.NAME_MAX, description=auth.NAME_RULE)
    role: Literal["viewer", "analyst", "admin", "peer"]


class NewToken(BaseModel):
    name: str
    role: str
    token: str = Field(description="shown once; only its SHA-256 is stored")


def _offset_page(items: list[dict[str, Any]], total: int, offset: int, limit: int) -> Page:
    nxt = pages.encode("o", offset + limit) if offset + limit < total else None
    return Page(items=items, next_cursor=nxt, total=total)


def _utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Problem(400, f"{name}: out of range", title="Invalid request") from None


def _found(value: dict[str, Any] | None, kind: str, ident: str) -> dict[str, Any]:
    if value is None:
        raise Problem(404, f"no {kind} {ident!r}", title="Not Found")
    return value


@router.get("/health", summary="Liveness", responses={})
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/whoami", summary="The caller's name and role")
def whoami(who: Principal = READ) -> dict[str, str]:
    return {"name": who.name, "role": who.role}


@router.get("/assets", response_model=Page, summary="Assets, filtered")
def assets(organisation: str | None = Filter(), zone: str | None = Filter(), kind: str | None = Filter(),
           limit: int = Limit(), cursor: str | None = Cursor(), _: Principal = READ,
           conn: Connection = Depends(reader)) -> Page:
    offset = pages.decode("o", cursor)
    items, total = inventory_service.list_assets(conn, organisation, zone, kind, offset, limit)
    return _offset_page(items, total, offset, limit)


@router.get("/assets/{asset_id}", summary="One asset with its findings and incidents")
def asset(asset_id: str = Ident(), _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return _found(inventory_service.get_asset(conn, asset_id), "asset", asset_id)


@router.get("/findings", response_model=Page, summary="Advisory findings on assets")
def findings(asset: str | None = Filter(), severity: SeverityName | None = None,
             status: Literal["affected", "possibly-affected"] | None = None, advisory: str | None = Filter(),
             limit: int = Limit(), cursor: str | None = Cursor(), _: Principal = READ,
             conn: Connection = Depends(reader)) -> Page:
    offset = pages.decode("o", cursor)
    items, total = inventory_service.list_findings(conn, asset, severity, status, advisory, offset, limit)
    return _offset_page(items, total, offset, limit)


@router.get("/events", response_model=Page, summary="Search stored events (cursor paging in arrival order)")
def events(start: datetime | None = Query(None, description="from (inclusive), ISO 8601"),
           end: datetime | None = Query(None, description="until (exclusive), ISO 8601"),
           observer_type: str | None = Filter(), asset: str | None = Filter(),
           limit: int = Limit(), cursor: str | None = Cursor(), _: Principal = READ,
           conn: Connection = Depends(reader)) -> Page:
    after = pages.decode("e", cursor)
    items, last = find_events(conn, _utc(start, "start"), _utc(end, "end"), observer_type, asset, after, limit)
    return Page(items=items, next_cursor=None if last is None else pages.encode("e", last))


@router.get("/alerts", response_model=Page, summary="Alerts, newest first")
def alerts(incident: str | None = Filter(), level: LevelName | None = None, rule_id: str | None = Filter(),
           limit: int = Limit(), cursor: str | None = Cursor(), _: Principal = READ,
           conn: Connection = Depends(reader)) -> Page:
    offset = pages.decode("o", cursor)
    items, total = incidents_service.list_alerts(conn, incident, level, rule_id, offset, limit)
    return _offset_page(items, total, offset, limit)


@router.get("/alerts/volume", summary="Alerts per detector over time (at most `buckets` equal time buckets)")
def alert_volume(buckets: int = Query(48, ge=2, le=500), _: Principal = READ,
                 conn: Connection = Depends(reader)) -> dict[str, Any]:
    return incidents_service.alert_volume(conn, buckets)


@router.get("/alerts/{alert_id}", summary="One alert")
def alert(alert_id: str = Ident(), _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return _found(incidents_service.get_alert(conn, alert_id), "alert", alert_id)


@router.get("/incidents", response_model=Page, summary="Incidents, most severe and most recent first")
def incidents(state: IncidentState | None = None, stage: StageName | None = None,
              min_severity: int = Query(0, ge=0, le=4), limit: int = Limit(), cursor: str | None = Cursor(),
              _: Principal = READ, conn: Connection = Depends(reader)) -> Page:
    offset = pages.decode("o", cursor)
    items, total = incidents_service.list_incidents(conn, state and str(state), stage, min_severity, offset, limit)
    return _offset_page(items, total, offset, limit)


@router.get("/incidents/{incident_id}", summary="One incident: assets, ATT&CK, timeline, history")
def incident(incident_id: str = Ident(), _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return _found(incidents_service.get_incident(conn, incident_id), "incident", incident_id)


@router.get("/incidents/{incident_id}/timeline", summary="One incident's timeline")
def timeline(incident_id: str = Ident(), _: Principal = READ,
             conn: Connection = Depends(reader)) -> list[dict[str, Any]]:
    found: dict[str, Any] = _found(incidents_service.get_incident(conn, incident_id), "incident", incident_id)
    timeline: list[dict[str, Any]] = found["timeline"]
    return timeline


@router.post("/incidents/{incident_id}/state", summary="Move an incident through its life cycle (audited)")
def change_state(body: StateChange, incident_id: str = Ident(), who: Principal = CHANGE,
                 conn: Connection = Depends(writer)) -> dict[str, Any]:
    done = incidents_service.set_incident_state(conn, incident_id, body.state, who.name, who.role, body.note)
    return _found(done, "incident", incident_id)


@router.get("/ecosystem", summary="Organisations, zones, assets with incident state, flows, dependencies")
def ecosystem(_: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return inventory_service.ecosystem(conn)


@router.get("/attack", summary="ATT&CK techniques seen in alerts, by tactic (heat map)")
def attack(_: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return incidents_service.attack_matrix(conn)


@router.get("/exposure", summary="Per-organisation exposure from advisory findings")
def exposure(_: Principal = READ, conn: Connection = Depends(reader)) -> list[dict[str, Any]]:
    return inventory_service.exposure(conn)


@router.get("/summary", summary="Incidents by stage and severity, the most exposed assets")
def summary(_: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    return incidents_service.summary(conn)


@router.get("/audit", summary="The audit log of state changes, newest first (admin)")
def audit_log(target: str | None = Filter(), limit: int = Limit(), _: Principal = ADMIN,
              conn: Connection = Depends(reader)) -> list[dict[str, Any]]:
    return load_audit(conn, target, limit)


@router.get("/tokens", summary="API tokens, without their secrets (admin)")
def tokens(_: Principal = ADMIN, conn: Connection = Depends(reader)) -> list[dict[str, Any]]:
    return auth.list_tokens(conn)


@router.post("/tokens", response_model=NewToken, status_code=201, summary="Create a token (admin; shown once)")
def create_token(body: TokenRequest, who: Principal = ADMIN, conn: Connection = Depends(writer)) -> NewToken:
    try:
        name = auth.check_token_name(body.name)
    except ValueError as exc:
        raise Problem(400, f"name: {exc}", title="Invalid token name") from None
    return NewToken(name=name, role=body.role, token=auth.create_token(conn, name, body.role, who))


@router.delete("/tokens/{token_id}", summary="Revoke a token (admin)")
def revoke_token(token_id: int = Path(ge=1, le=2**31), who: Principal = ADMIN,
                 conn: Connection = Depends(writer)) -> dict[str, Any]:
    return _found(auth.revoke_token(conn, token_id, who), "token", str(token_id))
