"""`healthswarm playbook list|validate|run`: CACAO 2.0 playbooks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, error_lines
from healthswarm.errors import InputError
from healthswarm.model.words import counted
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.playbooks.validate import load_playbook, read_json
from healthswarm.respond.service import run_on_case

app = typer.Typer(help="OASIS CACAO 2.0 response playbooks: the healthcare library, validation, runs.",
                  no_args_is_help=True)


@app.command("list")
def list_(fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """The shipped playbooks."""
    library = Library.load()
    rows = [{"name": stem, "title": library.playbooks[pid].name, "types": library.playbooks[pid].types,
             "steps": len(library.playbooks[pid].workflow), "id": pid} for stem, pid in sorted(library.stems.items())]
    emit(rows, fmt, ["name", "title", "types", "steps"], title="Playbooks")


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="CACAO 2.0 JSON playbooks")]) -> None:
    """Check playbooks: properties, identifiers, steps, references, cycles. Exit 1 when any is invalid."""
    known = set(Library.load().playbooks)
    for path in files:  # playbooks validated together may call each other
        try:
            doc = read_json(path)
        except InputError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            known.add(doc["id"])
    bad = 0
    for path in files:
        try:
            playbook = load_playbook(path, known)
        except InputError as exc:
            bad += 1
            error_lines(str(p) for p in exc.problems)
            continue
        console.print(f"[green]valid[/green]: {path} ({playbook.name}, {counted(len(playbook.workflow), 'step')})")
    if bad:
        console.print(f"[red]{bad} of {counted(len(files), 'playbook')} invalid[/red]")
        raise typer.Exit(1)


@app.command()
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Playbook name (file stem), title or id")],
    case: Annotated[str, typer.Option("--case", help="The case to run it against")],
    execute: Annotated[bool, typer.Option("--execute", help="Carry out the actions (default: dry run)")] = False,
    approve: Annotated[list[str] | None, typer.Option(
        "--approve", help="Asset id a human approves disruptive actions on (repeatable)")] = None,
    no_care: Annotated[bool, typer.Option("--no-care-in-progress",
                                          help="Clinical systems are not in use (e.g. a planned downtime)")] = False,
    actor: Annotated[str, typer.Option("--actor")] = "analyst",
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Run a playbook against a case: a dry run proposes; --execute acts (guardrail approvals still apply)."""
    app_ctx = app_context(ctx)
    store = app_ctx.store
    result = run_on_case(store, case, name, execute=execute, approved=frozenset(approve or ()),
                         workspace=app_ctx.settings.workspace, actor=actor, care_in_progress=not no_care,
                         now=datetime.now(UTC))
    if fmt is not OutputFormat.table:
        emit([result.as_dict()], fmt, [])
        return
    mode = "executed" if execute else "dry run"
    emit([s.as_dict() for s in result.steps], OutputFormat.table, ["playbook", "type", "name", "outcome"],
         title=f"{result.name} on {case} ({mode})")
    rows = [{**p.as_dict(), "approval / fallback": f"{p.approval.reason}; fallback: {p.approval.fallback}"
             if p.approval else ""} for p in result.proposals]
    emit(rows, OutputFormat.table, ["kind", "target", "status", "approval / fallback", "result"], title="Actions")
    emit([t.as_dict() for t in result.tasks], OutputFormat.table, ["title", "playbook"], title="Tasks for people")
    if result.approvals:
        needs = "needs" if len(result.approvals) == 1 else "need"
        console.print(f"{counted(len(result.approvals), 'action')} {needs} a human's approval: re-run with "
                      "--approve ASSET after the clinical fallback is in place", markup=False)
