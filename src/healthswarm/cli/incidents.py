"""`healthswarm incidents list|show|state`."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, error_lines
from healthswarm.detect import service
from healthswarm.model.incident import IncidentState
from healthswarm.model.words import path_text, severity_word

app = typer.Typer(help="Incidents: alerts grouped by what they share, with stage, severity and timeline.",
                  no_args_is_help=True)
LIST_COLUMNS = ["id", "severity", "stage", "state", "alerts", "title"]
SEVERITY_STYLE = ["dim", "green", "yellow", "dark_orange", "bold red"]


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[IncidentState | None, typer.Option(help="Only incidents in this state")] = None,
    min_severity: Annotated[int, typer.Option(min=0, max=4, help="0 informational … 4 critical")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Incidents, most severe and most recent first."""
    with app_context(ctx).store.read() as conn:
        items, total = service.list_incidents(conn, state and str(state), None, min_severity, 0, limit)
    rows = [{**i, "severity": severity_word(i["severity"]) if fmt is OutputFormat.table else i["severity"]}
            for i in items]
    filters = [*([f"--state {state}"] if state else []), *([f"--min-severity {min_severity}"] if min_severity else [])]
    if filters:
        empty = (f"no incident matches {' and '.join(filters)}; "
                 f"`{command_line(ctx, 'incidents list')}` lists them all")
    else:
        empty = (f"no incidents stored: `{command_line(ctx, 'ingest FILE…')}` then `{command_line(ctx, 'detect')}` "
                 f"form them (or `{command_line(ctx, 'demo')}`)")
    emit(rows, fmt, LIST_COLUMNS, title=f"Incidents ({len(items)} of {total})", empty=empty)


@app.command("show")
def show(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """One incident: what, where, how far, and its timeline."""
    with app_context(ctx).store.read() as conn:
        incident = service.get_incident(conn, incident_id)
    if incident is None:
        error_lines([f"incident {incident_id!r}: no such incident (see `{command_line(ctx, 'incidents list')}`)"])
        raise typer.Exit(2)
    if fmt is not OutputFormat.table:
        sys.stdout.buffer.write(orjson.dumps(incident, option=orjson.OPT_INDENT_2 if fmt is OutputFormat.json else 0)
                                + b"\n")
        return
    sev = incident["severity"]
    console.print(f"[bold]{incident['id']}[/] {incident['title']}", highlight=False)
    console.print(f"severity [{SEVERITY_STYLE[sev]}]{severity_word(sev)}[/] · stage {incident['stage']} · state "
                  f"{incident['state']} · {incident['first_seen'][:16].replace('T', ' ')} → "
                  f"{incident['last_seen'][:16].replace('T', ' ')} UTC · {incident['alerts']} "
                  f"alert{'' if incident['alerts'] == 1 else 's'}")
    if incident.get("path"):
        console.print(f"kill chain: {path_text(incident['path'])}", highlight=False, markup=False)
    for label, key in (("organisations", "organisations"), ("assets", "assets"), ("ATT&CK", "techniques"),
                       ("tactics", "tactics")):
        console.print(f"{label}: {', '.join(incident[key]) or '—'}", highlight=False, markup=False)
    table = Table(title="Timeline")
    for column in ("time (UTC)", "level", "alert", "tactics", "assets", "why"):
        table.add_column(column)
    for e in incident["timeline"]:
        table.add_row(e["timestamp"][:19].replace("T", " "), e["level"], e["title"], ", ".join(e["tactics"]),
                      ", ".join(e["assets"]), e["note"])
    console.print(table)
    if incident["history"]:
        emit(incident["history"], OutputFormat.table, ["timestamp", "actor", "role", "before", "after", "note"],
             title="History")


@app.command("state")
def state(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    new_state: Annotated[IncidentState, typer.Argument(metavar="STATE")],
    note: Annotated[str, typer.Option(help="Why (kept in the audit log)")] = "",
) -> None:
    """Move an incident through its life cycle (audited as `cli`)."""
    with app_context(ctx).store.transaction() as conn:
        done = service.set_incident_state(conn, incident_id, new_state, "cli", "admin", note)
    if done is None:
        error_lines([f"incident {incident_id!r}: no such incident (see `{command_line(ctx, 'incidents list')}`)"])
        raise typer.Exit(2)
    console.print(f"{incident_id}: {done['history'][0]['before']['state']} → {done['state']}", highlight=False)
