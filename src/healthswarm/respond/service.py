"""What the CLI, the API, the demo and the agent call: cases, playbook runs (by hand or by policy) and checks,
each in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from healthswarm.errors import HealthswarmError, InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.respond.actions import ActionContext, Proposal, execute_proposal
from healthswarm.respond.audit import Verdict, verify
from healthswarm.respond.case_store import (
    case_from_incident,
    change_case,
    create_case,
    incident_observables,
    load_audit,
    load_case,
)
from healthswarm.respond.cases import Case, Evidence, Note, Observable, Task, move
from healthswarm.respond.notify import NotifyConfig
from healthswarm.respond.playbooks.executor import RunResult, run_playbook
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.playbooks.validate import Playbook
from healthswarm.respond.policy import ResponsePolicy
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory
from healthswarm.store.respond_tables import respond_audit, respond_cases
from healthswarm.store.tables import incidents as incident_rows

log = logging.getLogger("healthswarm.respond")
POLICY_ACTOR = "healthswarm-policy"


def inventory_assets(conn: Connection) -> dict[str, Asset]:
    return {a.id: a for a in load_inventory(conn).assets}


def incident_ids(conn: Connection) -> list[str]:
    """Every stored incident's id, in order."""
    return list(conn.execute(select(incident_rows.c.id).order_by(incident_rows.c.id)).scalars())


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


#: incidents one write transaction of `respond_by_policy` carries (the agent's look-back goes over every stored one)
CHUNK = 50


def respond_by_policy(store: Store, policy: ResponsePolicy, incidents: Sequence[str] | None = None, *,
                      library: Library | None = None, workspace: Path | None = None,
                      notify: NotifyConfig | None = None, care_in_progress: bool = True,
                      now: datetime | None = None, assets: dict[str, Asset] | None = None,
                      lock: AbstractContextManager[Any] | None = None) -> list[PolicyResponse]:
    """Open or update the case of each incident the policy covers (`incidents`; None: every stored incident)
    and start the playbooks it calls for that have not run on the case yet.

    The incidents go in chunks of `CHUNK`: a chunk is read and its playbooks planned first, then its cases are
    written (and the actions the policy runs carried out) in one transaction, the only part under `lock` (the
    agent's write lock: the store has one writer). A case an analyst changed in between is a ConflictError
    (the chunk is rolled back whole: call again)."""
    library = library or Library.load()
    now = now or datetime.now(UTC)
    notify = notify or NotifyConfig()
    with store.read() as conn:
        if assets is None:  # a caller that runs step after step (the agent) passes the inventory it loaded once
            assets = inventory_assets(conn)
        if incidents is None:
            incidents = incident_ids(conn)
    wanted = list(dict.fromkeys(incidents))
    done: list[PolicyResponse] = []
    for start in range(0, len(wanted), CHUNK):
        with store.read() as conn:
            plans = _plans(conn, wanted[start:start + CHUNK], policy, library, assets, now, care_in_progress,
                           notify, workspace)
        if plans:
            with lock or nullcontext(), store.transaction() as conn:
                for plan in plans:
                    _apply(conn, plan, policy, now)
            done.extend(plan.response for plan in plans)
    return done


@dataclass
class _Plan:
    """What the policy does for one incident, planned from what was read, not written yet."""

    response: PolicyResponse
    case: Case  # built (a new case) or read, with what the incident grew by
    grow: Change | None  # an existing case: what the incident grew by, to apply to the stored case
    starts: list[tuple[Playbook, ActionContext, RunResult | str]]  # dry run, or why it could not be planned


def _plans(conn: Connection, ids: list[str], policy: ResponsePolicy, library: Library, assets: dict[str, Asset],
           now: datetime, care_in_progress: bool, notify: NotifyConfig, workspace: Path | None) -> list[_Plan]:
    """The plans of the incidents `ids` that the policy covers, in their order; three queries for the chunk
    (the incidents, their cases, the playbooks those started) besides what a new case reads."""
    rows = {r.id: {**r.document, "state": r.state} for r in conn.execute(  # the incident as shared (as_dict)
        select(incident_rows.c.id, incident_rows.c.document, incident_rows.c.state)
        .where(incident_rows.c.id.in_(ids)))}
    covered = {i: reason for i in ids if i in rows and (reason := policy.covers(rows[i], assets))}
    if not covered:
        return []
    cases = {r.incident_id: Case.from_dict(r.document, version=r.version) for r in conn.execute(
        select(respond_cases.c.incident_id, respond_cases.c.document, respond_cases.c.version)
        .where(respond_cases.c.incident_id.in_(list(covered))))}
    started: dict[str, set[str]] = {}
    for case_id, data in conn.execute(select(respond_audit.c.case_id, respond_audit.c.data).where(
            respond_audit.c.case_id.in_([c.id for c in cases.values()]), respond_audit.c.action == "playbook-run")):
        started.setdefault(case_id, set()).add(data.get("playbook"))
    plans = []
    for incident_id, reason in covered.items():
        doc, case, grow = rows[incident_id], cases.get(incident_id), None
        if case is None:
            case = case_from_incident(conn, doc, now)
        else:
            grow = _growth(doc, case)
            if grow is not None:
                grow(case)  # what the playbooks are chosen and planned on; applied again to the stored case
        plan = _Plan(PolicyResponse(incident_id, case.id, reason, opened=incident_id not in cases), case, grow, [])
        for book in policy.playbooks_for(case, assets, library):
            if book.id in started.get(case.id, ()):
                continue
            ctx = ActionContext(case=case, assets=assets, now=now, care_in_progress=care_in_progress, notify=notify,
                                outdir=(workspace / "respond" / case.id) if workspace is not None else None)
            try:
                planned: RunResult | str = run_playbook(book, ctx, library, execute=False)
            except HealthswarmError as exc:  # e.g. a step's target the inventory does not know: an analyst's to run
                planned = str(exc)
            plan.starts.append((book, ctx, planned))
        plans.append(plan)
    return plans


def _growth(doc: dict[str, Any], case: Case) -> Change | None:
    """What the incident has grown by since its case was opened or last brought up to date (None: nothing)."""
    assets = [a for a in doc.get("assets", []) if a not in case.assets]
    techniques = [t for t in doc.get("techniques", []) if t not in case.techniques]
    observables = [o for o in incident_observables(doc) if o not in case.observables]
    severity = max(case.severity, int(doc.get("severity", 0)))
    if not (assets or techniques or observables) and severity == case.severity:
        return None

    def grow(c: Case) -> dict[str, Any]:
        c.assets += assets
        c.techniques += techniques
        c.observables += observables
        c.severity = severity
        return {"incident": doc["id"], "assets": assets, "techniques": techniques, "severity": severity,
                "observables": [o.as_dict() for o in observables]}

    return grow


def _apply(conn: Connection, plan: _Plan, policy: ResponsePolicy, now: datetime) -> None:
    """Write one plan in the caller's transaction: open or grow the case, run the actions the policy lets run,
    record each start (or why it could not be planned) in the case's audit chain."""
    response, case = plan.response, plan.case
    if response.opened:
        existing = conn.execute(select(respond_cases.c.id)
                                .where(respond_cases.c.incident_id == response.incident)).first()
        if existing is not None:  # opened by an analyst since it was read
            raise HealthswarmError(f"incident {response.incident}: case {existing.id} was opened meanwhile; "
                                   "respond again")
        case = create_case(conn, case, POLICY_ACTOR, now)
    elif plan.grow is not None:
        case = change_case(conn, case.id, POLICY_ACTOR, "incident-grew", plan.grow, case=case, now=now)
    for book, ctx, planned in plan.starts:
        if isinstance(planned, str):
            case = _failed(conn, book, case, planned, response, now)
            continue
        ctx.conn = conn
        planned.dry_run = False
        for proposal in planned.proposals:
            if proposal.kind in policy.auto_actions and proposal.status == "proposed":
                execute_proposal(proposal, ctx)
        waiting = [p for p in planned.proposals if _waits(p)]
        response.runs.append(planned)
        case = change_case(conn, case.id, POLICY_ACTOR, "playbook-run",
                           lambda c, r=planned, w=waiting: record_run(c, r, now, w, policy=response.reason),
                           case=case, now=now)


def _failed(conn: Connection, book: Playbook, case: Case, why: str, response: PolicyResponse,
            now: datetime) -> Case:
    """A playbook that could not be planned: left to an analyst as a task, recorded so it is not tried again."""
    response.failed[book.name] = why
    log.warning("playbook %s not started for %s: %s", book.name, case.id, why)

    def failed(c: Case) -> dict[str, Any]:
        c.tasks.append(Task(c.next_task_id(), f"Run playbook {book.name!r} by hand: it could not be planned "
                            f"({why})", source=f"policy: {response.reason}", created=now.isoformat()))
        return {"playbook": book.id, "name": book.name, "policy": response.reason, "error": why}

    return change_case(conn, case.id, POLICY_ACTOR, "playbook-run", failed, case=case, now=now)


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
