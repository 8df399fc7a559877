"""What the CLI, the API and the demo call: cases, playbook runs and checks, each in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.respond.actions import ActionContext
from healthswarm.respond.audit import Verdict, verify
from healthswarm.respond.case_store import change_case, load_audit, load_case
from healthswarm.respond.cases import Case, Evidence, Note, Observable, Task, move
from healthswarm.respond.notify import NotifyConfig
from healthswarm.respond.playbooks.executor import RunResult, run_playbook
from healthswarm.respond.playbooks.library import Library
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory


def inventory_assets(conn: Connection) -> dict[str, Asset]:
    return {a.id: a for a in load_inventory(conn).assets}


def verify_case(conn: Connection, case_id: str) -> Verdict:
    load_case(conn, case_id)  # a clear error for an unknown case
    return verify(load_audit(conn, case_id))


def run_on_case(store: Store, case_id: str, playbook: str, *, execute: bool = False,
                approved: frozenset[str] = frozenset(), workspace: Path | None = None, actor: str = "healthswarm",
                notify: NotifyConfig | None = None, care_in_progress: bool = True, now: datetime | None = None,
                library: Library | None = None) -> RunResult:
    """Run a library playbook against a case. A dry run changes nothing; an execution carries out the actions
    allowed, adds the playbook's manual steps as tasks and records the run in the audit log."""
    now = now or datetime.now(UTC)
    library = library or Library.load()
    book = library.find(playbook)
    with store.transaction() as conn:
        case = load_case(conn, case_id)
        for asset_id in approved:
            if asset_id not in case.assets:
                raise InputError(Problem(Location("--approve"), f"{asset_id!r} is not an asset of case {case_id}",
                                         ", ".join(case.assets) or "an asset of the case"))
        ctx = ActionContext(case=case, assets=inventory_assets(conn), now=now, care_in_progress=care_in_progress,
                            notify=notify or NotifyConfig(), conn=conn if execute else None, approved=approved,
                            outdir=(workspace / "respond" / case_id) if workspace is not None else None)
        result = run_playbook(book, ctx, library, execute=execute)
        if execute:
            change_case(conn, case_id, actor, "playbook-run", lambda c: _record_run(c, result, now), case=case,
                        now=now)
    return result


def _record_run(case: Case, result: RunResult, now: datetime) -> dict[str, Any]:
    for planned in result.tasks:
        case.tasks.append(Task(case.next_task_id(), planned.title, source=f"{planned.playbook}: {planned.step}",
                               created=now.isoformat()))
    return {"playbook": result.playbook, "name": result.name, "tasks": len(result.tasks),
            "actions": [{"kind": p.kind, "target": p.target, "status": p.status, "result": p.result,
                         "approval": p.approval.as_dict() if p.approval else None} for p in result.proposals]}


# -- case changes: what an analyst does to a case, for the CLI and the API alike ------------------------
#: a change to a case: it edits the case and returns what the audit log records of it
Change = Callable[[Case], dict[str, Any]]


def add_note(author: str, text: str, now: datetime | None = None) -> Change:
    text = text.strip()
    if not text:
        raise InputError(Problem(Location("text"), "empty note", "some text"))
    at = (now or datetime.now(UTC)).isoformat()

    def change(case: Case) -> dict[str, Any]:
        case.notes.append(Note(at, author, text))
        return {"note": text}

    return change


def add_task(title: str, owner: str = "", now: datetime | None = None) -> Change:
    def change(case: Case) -> dict[str, Any]:
        task = Task(case.next_task_id(), title, owner, created=(now or datetime.now(UTC)).isoformat())
        case.tasks.append(task)
        return {"task": task.as_dict()}

    return change


def finish_task(task_id: str) -> Change:
    def change(case: Case) -> dict[str, Any]:
        case.task(task_id).status = "done"
        return {"task": task_id, "status": "done"}

    return change


def assign_task(task_id: str, owner: str) -> Change:
    def change(case: Case) -> dict[str, Any]:
        case.task(task_id).owner = owner
        return {"task": task_id, "owner": owner}

    return change


def add_owner(name: str) -> Change:
    def change(case: Case) -> dict[str, Any]:
        if name not in case.owners:
            case.owners.append(name)
        return {"owner": name}

    return change


def add_evidence(item: Evidence) -> Change:
    def change(case: Case) -> dict[str, Any]:
        case.evidence.append(item)
        return {"evidence": item.as_dict()}

    return change


def add_observable(item: Observable) -> Change:
    def change(case: Case) -> dict[str, Any]:
        case.observables.append(item)
        return {"observable": item.as_dict()}

    return change


def move_phase(phase: str, now: datetime | None = None) -> Change:
    return lambda case: move(case, phase, now or datetime.now(UTC))


def change(conn: Connection, case_id: str, actor: str, action: str, what: Change,
           expected_version: int | None = None, now: datetime | None = None) -> Case:
    """Apply one change to a case in the caller's transaction: versioned, audited (hash-chained)."""
    return change_case(conn, case_id, actor, action, what, expected_version=expected_version, now=now)
