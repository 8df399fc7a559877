"""What the CLI, the API, the demo and the agent call: cases, playbook runs (by hand or by policy) and checks,
each in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from healthswarm.errors import HealthswarmError, InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.respond.actions import ActionContext, Proposal, execute_proposal
from healthswarm.respond.audit import Verdict, verify
from healthswarm.respond.case_store import change_case, incident_observables, load_audit, load_case, open_from_incident
from healthswarm.respond.cases import Case, Evidence, Note, Observable, Task, move
from healthswarm.respond.notify import NotifyConfig
from healthswarm.respond.playbooks.executor import RunResult, run_playbook
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.playbooks.validate import Playbook
from healthswarm.respond.policy import ResponsePolicy
from healthswarm.store import Store
from healthswarm.store.alerts import load_incident
from healthswarm.store.inventory import load_inventory
from healthswarm.store.respond_tables import respond_cases
from healthswarm.store.tables import incidents as incident_rows

log = logging.getLogger("healthswarm.respond")
POLICY_ACTOR = "healthswarm-policy"


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
            change_case(conn, case_id, actor, "playbook-run", lambda c: record_run(c, result, now), case=case,
                        now=now)
    return result


def record_run(case: Case, result: RunResult, now: datetime, waiting: Sequence[Proposal] = (),
               **extra: Any) -> dict[str, Any]:
    """Add the run's manual steps to the case as tasks, and each of `waiting` (actions left for an analyst) as
    a task saying what to approve and, where the guardrail holds it, what to put in place first; what the audit
    log records of the run (with `extra`)."""
    for planned in result.tasks:
        case.tasks.append(Task(case.next_task_id(), planned.title, source=f"{planned.playbook}: {planned.step}",
                               created=now.isoformat()))
    for proposal in waiting:
        title = f"Approve and run {proposal.kind} on {proposal.target}: {proposal.summary}"
        if proposal.status == "failed":
            title = f"Run {proposal.kind} on {proposal.target} by hand, it failed: {proposal.result}"
        elif proposal.approval is not None:
            title += f" (patient safety: {proposal.approval.reason}; first: {proposal.approval.fallback})"
        case.tasks.append(Task(case.next_task_id(), title, source=f"{result.name}: {proposal.step}",
                               created=now.isoformat()))
    return {"playbook": result.playbook, "name": result.name, "tasks": len(result.tasks) + len(waiting),
            "actions": [{"kind": p.kind, "target": p.target, "status": p.status, "result": p.result,
                         "approval": p.approval.as_dict() if p.approval else None} for p in result.proposals],
            **extra}


# -- playbooks by policy (respond/policy.py says what the policy is) ---------------------------------------
@dataclass
class PolicyResponse:
    """What the policy did for one incident."""

    incident: str
    case: str
    reason: str
    opened: bool
    runs: list[RunResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # playbook name → why it could not start

    @property
    def executed(self) -> int:
        return sum(p.status == "executed" for r in self.runs for p in r.proposals)

    @property
    def waiting(self) -> int:
        return sum(_waits(p) for r in self.runs for p in r.proposals)


def respond_by_policy(store: Store, policy: ResponsePolicy, incidents: Sequence[str] | None = None, *,
                      library: Library | None = None, workspace: Path | None = None,
                      notify: NotifyConfig | None = None, care_in_progress: bool = True,
                      now: datetime | None = None, assets: dict[str, Asset] | None = None) -> list[PolicyResponse]:
    """Open or update the case of each incident the policy covers (`incidents`; None: every stored incident)
    and start the playbooks it calls for that have not run on the case yet; one transaction per incident."""
    library = library or Library.load()
    now = now or datetime.now(UTC)
    with store.read() as conn:
        if assets is None:  # a caller that runs step after step (the agent) passes the inventory it loaded once
            assets = inventory_assets(conn)
        if incidents is None:
            incidents = list(conn.execute(select(incident_rows.c.id).order_by(incident_rows.c.id)).scalars())
    done = []
    for incident_id in incidents:
        with store.transaction() as conn:
            found = load_incident(conn, incident_id)
            doc = found.as_dict() if found is not None else None  # the policy reads the incident as shared
            reason = policy.covers(doc, assets) if doc is not None else ""
            if not reason:
                continue
            case, opened = _case_of(conn, doc, now)
            response = PolicyResponse(incident_id, case.id, reason, opened)
            started = {e.data.get("playbook") for e in load_audit(conn, case.id) if e.action == "playbook-run"}
            for book in policy.playbooks_for(case, assets, library):
                if book.id in started:
                    continue
                ctx = ActionContext(case=case, assets=assets, now=now, care_in_progress=care_in_progress,
                                    notify=notify or NotifyConfig(), conn=conn,
                                    outdir=(workspace / "respond" / case.id) if workspace is not None else None)
                case = _start(conn, book, ctx, library, policy, reason, response)
            done.append(response)
    return done


def _case_of(conn: Connection, doc: dict[str, Any], now: datetime) -> tuple[Case, bool]:
    """The incident's case, opened now or brought up to date with what the incident has grown by."""
    row = conn.execute(select(respond_cases.c.id).where(respond_cases.c.incident_id == doc["id"])).first()
    if row is None:
        return open_from_incident(conn, doc["id"], POLICY_ACTOR, now=now), True
    case = load_case(conn, row.id)
    assets = [a for a in doc.get("assets", []) if a not in case.assets]
    techniques = [t for t in doc.get("techniques", []) if t not in case.techniques]
    observables = [o for o in incident_observables(doc) if o not in case.observables]
    severity = max(case.severity, int(doc.get("severity", 0)))
    if not (assets or techniques or observables) and severity == case.severity:
        return case, False

    def grow(c: Case) -> dict[str, Any]:
        c.assets += assets
        c.techniques += techniques
        c.observables += observables
        c.severity = severity
        return {"incident": doc["id"], "assets": assets, "techniques": techniques, "severity": severity,
                "observables": [o.as_dict() for o in observables]}

    return change_case(conn, case.id, POLICY_ACTOR, "incident-grew", grow, case=case, now=now), False


def _start(conn: Connection, book: Playbook, ctx: ActionContext, library: Library, policy: ResponsePolicy,
           reason: str, response: PolicyResponse) -> Case:
    """Plan the whole playbook, run the actions the policy lets run, leave the rest to an analyst; recorded."""
    case, now = ctx.case, ctx.now
    try:
        result = run_playbook(book, ctx, library, execute=False)
    except HealthswarmError as exc:  # e.g. a step's target the inventory does not know: an analyst's to run
        why = str(exc)
        response.failed[book.name] = why
        log.warning("playbook %s not started for %s: %s", book.name, case.id, why)

        def failed(c: Case) -> dict[str, Any]:
            c.tasks.append(Task(c.next_task_id(), f"Run playbook {book.name!r} by hand: it could not be planned "
                                f"({why})", source=f"policy: {reason}", created=now.isoformat()))
            return {"playbook": book.id, "name": book.name, "policy": reason, "error": why}

        return change_case(conn, case.id, POLICY_ACTOR, "playbook-run", failed, case=case, now=now)
    result.dry_run = False
    for proposal in result.proposals:
        if proposal.kind in policy.auto_actions and proposal.status == "proposed":
            execute_proposal(proposal, ctx)
    waiting = [p for p in result.proposals if _waits(p)]
    response.runs.append(result)
    return change_case(conn, case.id, POLICY_ACTOR, "playbook-run",
                       lambda c: record_run(c, result, now, waiting, policy=reason), case=case, now=now)


def _waits(proposal: Proposal) -> bool:
    """Left for an analyst: planned but not run (not the policy's to run, or held by the guardrail), or failed."""
    return proposal.status in ("proposed", "awaiting-approval", "failed")


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
