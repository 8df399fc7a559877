"""The response step of `healthswarm demo`: open a case from the phishing incident (the one whose assets
include sta-ws-03), run the phishing playbook as a dry run, show containment proposals and deadlines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from sqlalchemy import select

from healthswarm.errors import HealthswarmError
from healthswarm.respond.case_store import load_case, open_from_incident
from healthswarm.respond.deadlines import deadlines
from healthswarm.respond.service import run_on_case
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from healthswarm.store.respond_tables import respond_cases

DEMO_ASSET = "sta-ws-03"
DEMO_PLAYBOOK = "phishing-credential-theft"
CONTAINMENT_KINDS = frozenset({"isolate-host", "block-address", "quarantine-port", "disable-account",
                               "reset-password", "dns-sinkhole"})


def demo_step(store: Store, workspace: Path, now: datetime | None = None) -> tuple[dict[str, Any],
                                                                                   list[RenderableType]]:
    now = now or datetime.now(UTC)
    with store.transaction() as conn:
        incident = next((i for i in load_incidents(conn) if DEMO_ASSET in i.assets), None)
        if incident is None:
            raise HealthswarmError(f"no incident involving {DEMO_ASSET}: run the detection steps first")
        existing = conn.execute(select(respond_cases.c.id)
                                .where(respond_cases.c.incident_id == incident.id)).first()
        case = load_case(conn, existing.id) if existing else open_from_incident(conn, incident.id, "demo", now=now)
    result = run_on_case(store, case.id, DEMO_PLAYBOOK, workspace=workspace, now=now)
    clocks = deadlines(case, now)
    first = next((p for p in result.proposals if p.kind in CONTAINMENT_KINDS), None)

    actions = Table(title=f"Case {case.id}: proposed by '{result.name}' (dry run)")
    for column in ("action", "target", "status", "approval / clinical fallback"):
        actions.add_column(column)
    for p in result.proposals:
        approval = f"{p.approval.reason}; fallback: {p.approval.fallback}" if p.approval else ""
        actions.add_row(p.kind, p.target, p.status, approval)
    timers = Table(title=f"Regulatory deadlines (aware since {case.aware_at:%Y-%m-%d %H:%M} UTC)")
    for column in ("article", "obligation", "to", "due (UTC)", "time left", "status"):
        timers.add_column(column)
    for d in clocks:
        timers.add_row(d.rule.article, d.rule.obligation, d.rule.recipient,
                       f"{d.due:%Y-%m-%d %H:%M}" if d.due else "—", d.as_dict()["left"], d.status)
    summary = {
        "case": case.id, "incident": incident.id, "playbook": result.name, "steps": len(result.steps),
        "proposals": len(result.proposals), "tasks": len(result.tasks),
        "approvals_required": len(result.approvals),
        "first_containment": {"kind": first.kind, "target": first.target} if first else None,
        "deadlines": [{"id": d.rule.id, "due": d.due.isoformat() if d.due else None, "left": d.as_dict()["left"]}
                      for d in clocks],
    }
    return summary, [actions, timers]
