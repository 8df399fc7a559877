"""`/api/v1/cases`: response cases with their regulators' clocks and audit chain; analysts add notes and move
phases. Every change goes through `respond.case_store.change_case` (optimistic locking, hash-chained audit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from healthswarm.api import pages
from healthswarm.api.auth import Principal
from healthswarm.api.deps import CHANGE, READ, reader, writer
from healthswarm.api.pages import DEFAULT_PAGE, MAX_PAGE
from healthswarm.api.problems import Problem, problem_responses
from healthswarm.errors import HealthswarmError, InputError
from healthswarm.respond import service
from healthswarm.respond.case_store import list_cases, load_audit, load_case
from healthswarm.respond.cases import Case, Phase
from healthswarm.respond.deadlines import WARN_FRACTION, Deadline, deadlines
from healthswarm.respond.errors import ConflictError, NotFoundError
from healthswarm.respond.service import verify_case

router = APIRouter(prefix="/api/v1", tags=["cases"], responses=problem_responses(400, 401, 403, 404, 500))
CHANGES = problem_responses(409)


class CasePage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int
    now: str = Field(description="the server's clock (ISO 8601 UTC): the base of `left_seconds`")


class NoteRequest(BaseModel):
    version: int = Field(ge=1, le=2**31, description="the case version the analyst looked at")
    text: str = Field(min_length=1, max_length=4000)


class PhaseRequest(BaseModel):
    version: int = Field(ge=1, le=2**31, description="the case version the analyst looked at")
    phase: Phase


def CaseId() -> Any:
    return Path(min_length=1, max_length=64)


@contextmanager
def _case_errors(conflict_on_input: bool = False) -> Iterator[None]:
    """The response stage's errors as problem details (a refused life-cycle move is a 409)."""
    try:
        yield
    except NotFoundError as exc:
        raise Problem(404, str(exc), title="Not Found") from None
    except ConflictError as exc:
        raise Problem(409, str(exc), title="Conflict", expected_version=exc.expected,
                      current_version=exc.actual) from None
    except InputError as exc:
        status = 409 if conflict_on_input else 400
        raise Problem(status, "; ".join(str(p) for p in exc.problems), title="Conflict" if status == 409
                      else "Invalid request") from None
    except HealthswarmError as exc:
        raise Problem(400, str(exc), title="Invalid request") from None


def _clock(items: list[Deadline], aware: datetime) -> list[dict[str, Any]]:
    """Each deadline as `Deadline.as_dict()` plus `warn_at`: when its status turns to `warning`."""
    due_of: dict[str, datetime] = {}
    out = []
    for d in items:
        doc = d.as_dict()
        doc["warn_at"] = None
        if d.due is not None:
            base = due_of.get(d.rule.after, aware) if d.rule.after else aware
            doc["warn_at"] = (d.due - (d.due - base) * WARN_FRACTION).isoformat()
            due_of[d.rule.id] = d.due
        out.append(doc)
    return out


def _deadlines(case: Case, now: datetime) -> tuple[list[dict[str, Any]], str]:
    """The case's deadlines, or none and the reason (a moment of awareness ahead of our clock)."""
    try:
        return _clock(deadlines(case, now), case.aware_at.astimezone(UTC)), ""
    except InputError as exc:
        return [], "; ".join(str(p) for p in exc.problems)


def _next(clock: list[dict[str, Any]]) -> dict[str, Any] | None:
    pending = [d for d in clock if d["due"] is not None and d["status"] != "met"]
    return min(pending, key=lambda d: d["left_seconds"], default=None)


def _summary(case: Case, now: datetime) -> dict[str, Any]:
    clock, problem = _deadlines(case, now)
    nxt = _next(clock)
    return {"id": case.id, "title": case.title, "incident": case.incident_id, "phase": str(case.phase),
            "severity": case.severity, "owners": list(case.owners), "version": case.version,
            "opened": case.opened.isoformat(), "aware_at": case.aware_at.isoformat(),
            "open_tasks": sum(t.status != "done" for t in case.tasks),
            "next_deadline": nxt, "time_left": nxt["left"] if nxt else None,
            "time_left_seconds": nxt["left_seconds"] if nxt else None,
            "deadlines": clock, "deadline_problem": problem}


def _detail(case: Case, now: datetime) -> dict[str, Any]:
    return {**case.as_dict(), **_summary(case, now)}


@router.get("/cases", response_model=CasePage, summary="Response cases, most severe and newest first")
def cases(phase: Phase | None = None, limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
          cursor: str | None = Query(None, max_length=200, description="`next_cursor` of the previous page"),
          _: Principal = READ, conn: Connection = Depends(reader)) -> CasePage:
    offset = pages.decode("o", cursor)
    now = datetime.now(UTC)
    found = list_cases(conn, str(phase) if phase else None)
    items = [_summary(c, now) for c in found[offset:offset + limit]]
    nxt = pages.encode("o", offset + limit) if offset + limit < len(found) else None
    return CasePage(items=items, next_cursor=nxt, total=len(found), now=now.isoformat())


@router.get("/cases/{case_id}", summary="One case: tasks, notes, evidence, observables, deadlines")
def case_detail(case_id: str = CaseId(), _: Principal = READ,
                conn: Connection = Depends(reader)) -> dict[str, Any]:
    with _case_errors():
        case = load_case(conn, case_id)
    now = datetime.now(UTC)
    return {**_detail(case, now), "now": now.isoformat()}


@router.get("/cases/{case_id}/audit", summary="A case's hash-chained audit log and its verification")
def case_audit(case_id: str = CaseId(), _: Principal = READ, conn: Connection = Depends(reader)) -> dict[str, Any]:
    with _case_errors():
        verdict = verify_case(conn, case_id)
        entries = load_audit(conn, case_id)
    return {"case": case_id, "verification": verdict.as_dict(), "entries": [e.as_dict() for e in entries]}


def _change(conn: Connection, case_id: str, who: Principal, action: str, version: int,
            mutate: Callable[[Case], dict[str, Any]], conflict_on_input: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    with _case_errors(conflict_on_input):
        case = service.change(conn, case_id, f"{who.name} ({who.role})", action, mutate, expected_version=version,
                              now=now)
    return _detail(case, now)


@router.post("/cases/{case_id}/notes", responses=CHANGES, summary="Add a note (analyst, admin; audited)")
def add_note(body: NoteRequest, case_id: str = CaseId(), who: Principal = CHANGE,
             conn: Connection = Depends(writer)) -> dict[str, Any]:
    if not body.text.strip():
        raise Problem(400, "text: empty note", title="Invalid request")
    return _change(conn, case_id, who, "note", body.version, service.add_note(who.name, body.text))


@router.post("/cases/{case_id}/phase", responses=CHANGES,
             summary="Move a case along the NIST SP 800-61 life cycle (analyst, admin; audited)")
def set_phase(body: PhaseRequest, case_id: str = CaseId(), who: Principal = CHANGE,
              conn: Connection = Depends(writer)) -> dict[str, Any]:
    return _change(conn, case_id, who, "move", body.version, service.move_phase(body.phase),
                   conflict_on_input=True)
