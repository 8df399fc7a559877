"""What the CLI, the API and the demo call: cases, playbook runs and checks, each in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.respond.actions import ActionContext
from healthswarm.respond.audit import Verdict, verify
from healthswarm.respond.case_store import change_case, load_audit, load_case
from healthswarm.respond.cases import Case, Task
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
