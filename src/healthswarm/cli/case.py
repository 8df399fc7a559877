"""`healthswarm case open|list|show|note|task|owner|evidence|observable|move|verify|audit|deadlines|notified|
notify-draft`: thin wrappers over `healthswarm.respond`."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, error_lines, writing
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import severity_word
from healthswarm.respond import service
from healthswarm.respond.case_store import change_case, create_case, list_cases, load_audit, load_case, new_case_id
from healthswarm.respond.case_store import open_from_incident as open_incident_case
from healthswarm.respond.cases import Case, Evidence, Observable, Phase
from healthswarm.respond.deadlines import REGIMES, deadlines, regime_rules, warnings
from healthswarm.respond.drafts import draft
from healthswarm.respond.service import inventory_assets, verify_case
from healthswarm.store import Store

app = typer.Typer(help="Incident cases along the NIST SP 800-61 life cycle, with a hash-chained audit log.",
                  no_args_is_help=True)
task_app = typer.Typer(help="A case's tasks.", no_args_is_help=True)
app.add_typer(task_app, name="task")

Actor = Annotated[str, typer.Option("--actor", help="Who makes the change [env HEALTHSWARM_ACTOR; default: login]")]
Expect = Annotated[int | None, typer.Option("--expect-version",
                                            help="The case version you looked at; a newer one is a conflict")]
Fmt = Annotated[OutputFormat, typer.Option("--format")]


def _actor(actor: str) -> str:
    if actor:
        return actor
    if os.environ.get("HEALTHSWARM_ACTOR"):
        return os.environ["HEALTHSWARM_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


def _store(ctx: typer.Context) -> Store:
    store = app_context(ctx).store
    return store


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(Problem(Location(option), f"{text!r} is not a time",
                                 "ISO 8601, e.g. 2026-11-27T08:05Z")) from None
    if moment.tzinfo is None:
        raise InputError(Problem(Location(option), f"{text!r} has no time zone", "a UTC offset or Z"))
    return moment.astimezone(UTC)


def _change(ctx: typer.Context, case_id: str, actor: str, action: str, what: service.Change,
            expect: int | None) -> Case:
    with _store(ctx).transaction() as conn:
        case = service.change(conn, case_id, _actor(actor), action, what, expected_version=expect)
    console.print(f"{case.id}: {action} recorded (version {case.version})")
    return case


def _row(case: Case) -> dict[str, Any]:
    open_tasks = sum(t.status != "done" for t in case.tasks)
    return {"id": case.id, "phase": str(case.phase), "severity": case.severity, "title": case.title,
            "incident": case.incident_id or "", "owners": case.owners, "open tasks": open_tasks,
            "version": case.version, "aware_at": case.aware_at.isoformat(timespec="minutes")}


@app.command("open")
def open_case(
    ctx: typer.Context,
    incident: Annotated[str | None, typer.Option("--incident", help="Open from this incident")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Open by hand with this title")] = None,
    severity: Annotated[int, typer.Option(min=0, max=4, help="0 informational … 4 critical (by hand)")] = 2,
    aware_at: Annotated[str | None, typer.Option("--aware-at", help="Moment of awareness (default: now)")] = None,
    owner: Annotated[list[str] | None, typer.Option("--owner", help="Case owner (repeatable)")] = None,
    actor: Actor = "",
) -> None:
    """Open a case from an incident (`--incident ID`) or by hand (`--title TEXT`)."""
    if (incident is None) == (title is None):
        raise InputError(Problem(Location("case open"), "give exactly one of --incident and --title"))
    aware = _when(aware_at, "--aware-at")
    now = datetime.now(UTC)
    with _store(ctx).transaction() as conn:
        if incident is not None:
            case = open_incident_case(conn, incident, _actor(actor), now=now, aware_at=aware)
        else:
            case = create_case(conn, Case(new_case_id(), title or "", now, aware or now, severity=severity),
                               _actor(actor), now)
        if owner:
            owners = list(owner)

            def add_owners(c: Case) -> dict[str, Any]:
                c.owners.extend(o for o in owners if o not in c.owners)
                return {"owners": owners}

            case = change_case(conn, case.id, _actor(actor), "owner", add_owners, now=now)
    console.print(f"opened {case.id}: {case.title} ({len(case.assets)} assets, {len(case.evidence)} evidence refs, "
                  f"{len(case.observables)} observables)")


@app.command("list")
def list_(ctx: typer.Context, phase: Annotated[str | None, typer.Option(help="Only this phase")] = None,
          fmt: Fmt = OutputFormat.table) -> None:
    """Cases, most severe and newest first."""
    if phase is not None:
        phase = str(Phase.parse(phase))
    with _store(ctx).read() as conn:
        cases = list_cases(conn, phase)
    rows = [_row(c) for c in cases]
    if fmt is OutputFormat.table:
        rows = [{**r, "severity": severity_word(r["severity"])} for r in rows]
    emit(rows, fmt, ["id", "phase", "severity", "title", "owners", "open tasks", "version"], title="Cases",
         empty=f"no case {'in phase ' + phase + ' ' if phase else ''}stored: "
               f"`{command_line(ctx, 'case open --incident ID')}` opens one for an incident "
               f"(`{command_line(ctx, 'incidents list')}` lists them)")


@app.command()
def show(ctx: typer.Context, case_id: str, fmt: Fmt = OutputFormat.table) -> None:
    """One case: its fields, tasks, notes, evidence and observables."""
    with _store(ctx).read() as conn:
        case = load_case(conn, case_id)
    if fmt is not OutputFormat.table:
        emit([case.as_dict()], fmt, [])
        return
    console.print(f"{case.id} {case.title}\nphase {case.phase} · severity {severity_word(case.severity)} · "
                  f"version {case.version}"
                  f" · aware since {case.aware_at:%Y-%m-%d %H:%M} UTC · incident {case.incident_id or '—'}\n"
                  f"owners: {', '.join(case.owners) or '—'} · assets: {', '.join(case.assets) or '—'} · accounts: "
                  f"{', '.join(case.accounts) or '—'}", markup=False, highlight=False)
    if case.description:
        console.print(case.description, markup=False)
    # an empty section is one line, not a table frame with no rows
    emit([t.as_dict() for t in case.tasks], OutputFormat.table, ["id", "title", "owner", "status", "source"], "Tasks",
         empty="tasks: none")
    emit([n.as_dict() for n in case.notes], OutputFormat.table, ["at", "author", "text"], "Notes", empty="notes: none")
    emit([e.as_dict() for e in case.evidence[:20]], OutputFormat.table, ["kind", "ref", "sha256", "description"],
         f"Evidence ({len(case.evidence)})", empty="evidence: none")
    emit([o.as_dict() for o in case.observables], OutputFormat.table, ["type", "value"], "Observables",
         empty="observables: none")


@app.command()
def note(ctx: typer.Context, case_id: str, text: str, actor: Actor = "", expect: Expect = None) -> None:
    """Add a note."""
    _change(ctx, case_id, actor, "note", service.add_note(_actor(actor), text), expect)


@task_app.command("add")
def task_add(ctx: typer.Context, case_id: str, title: str,
             owner: Annotated[str, typer.Option(help="Who does it")] = "", actor: Actor = "",
             expect: Expect = None) -> None:
    """Add a task."""
    _change(ctx, case_id, actor, "task-add", service.add_task(title, owner), expect)


@task_app.command("done")
def task_done(ctx: typer.Context, case_id: str, task_id: str, actor: Actor = "", expect: Expect = None) -> None:
    """Mark a task done."""
    _change(ctx, case_id, actor, "task-done", service.finish_task(task_id), expect)


@task_app.command("assign")
def task_assign(ctx: typer.Context, case_id: str, task_id: str, owner: str, actor: Actor = "",
                expect: Expect = None) -> None:
    """Give a task to someone."""
    _change(ctx, case_id, actor, "task-assign", service.assign_task(task_id, owner), expect)


@app.command()
def owner(ctx: typer.Context, case_id: str, name: str, actor: Actor = "", expect: Expect = None) -> None:
    """Add an owner."""
    _change(ctx, case_id, actor, "owner", service.add_owner(name), expect)


@app.command()
def evidence(
    ctx: typer.Context, case_id: str,
    file: Annotated[Path | None, typer.Option("--file", help="A file: its path and SHA-256 are recorded")] = None,
    event: Annotated[str | None, typer.Option("--event", help="An event key")] = None,
    description: Annotated[str, typer.Option(help="What it shows")] = "",
    actor: Actor = "", expect: Expect = None,
) -> None:
    """Add an evidence reference: a file (hashed) or an event key."""
    if (file is None) == (event is None):
        raise InputError(Problem(Location("case evidence"), "give exactly one of --file and --event"))
    item = Evidence.of_file(file, description) if file is not None else Evidence("event", event or "", "", description)
    _change(ctx, case_id, actor, "evidence", service.add_evidence(item), expect)


@app.command()
def observable(ctx: typer.Context, case_id: str, type_: Annotated[str, typer.Argument(metavar="TYPE")], value: str,
               actor: Actor = "", expect: Expect = None) -> None:
    """Add an observable (ipv4, domain, sha256, …)."""
    _change(ctx, case_id, actor, "observable", service.add_observable(Observable(type_, value)), expect)


@app.command("move")
def move_(ctx: typer.Context, case_id: str, stage: Annotated[str, typer.Argument(help="Target phase")],
          actor: Actor = "", expect: Expect = None) -> None:
    """Move the case to another life-cycle phase (detection-analysis, containment, eradication, recovery,
    post-incident)."""
    _change(ctx, case_id, actor, "move", service.move_phase(Phase.parse(stage)), expect)


@app.command()
def verify(ctx: typer.Context, case_id: str) -> None:
    """Check the case's audit chain; exit 1 naming the first bad entry when it is broken."""
    with _store(ctx).read() as conn:
        verdict = verify_case(conn, case_id)
    if not verdict.ok:
        error_lines([f"case {case_id}: audit entry {verdict.first_bad}: {verdict.reason}"])
        raise typer.Exit(1)
    console.print(f"[green]intact[/green]: {verdict.entries} audit entries of {case_id} chain correctly")


@app.command()
def audit(ctx: typer.Context, case_id: str, fmt: Fmt = OutputFormat.table) -> None:
    """The case's audit log."""
    with _store(ctx).read() as conn:
        load_case(conn, case_id)
        entries = load_audit(conn, case_id)
    rows = [{**e.as_dict(), "hash": e.hash[:16] if fmt is OutputFormat.table else e.hash} for e in entries]
    emit(rows, fmt, ["seq", "at", "actor", "action", "hash"], title=f"Audit log of {case_id}")


class Regime(StrEnum):
    gdpr = "gdpr"
    nis2 = "nis2"
    hipaa = "hipaa"


@app.command("deadlines")
def deadlines_(
    ctx: typer.Context, case_id: str,
    regime: Annotated[list[Regime] | None, typer.Option("--regime", help="Only these regimes")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Compute at this time instead of now")] = None,
    fmt: Fmt = OutputFormat.table,
) -> None:
    """Notification deadlines with time left; warnings for those about to lapse or lapsed."""
    now = _when(at, "--at") or datetime.now(UTC)
    with _store(ctx).read() as conn:
        case = load_case(conn, case_id)
    regimes = tuple(str(r) for r in regime) if regime else tuple(REGIMES)
    items = deadlines(case, now, regimes)
    rows = [d.as_dict() for d in items]
    if fmt is OutputFormat.table:  # headed as the demo and the dashboard's Cases panel head them
        rows = [{**r, "to": r["recipient"], "due (UTC)": d.due.strftime("%Y-%m-%d %H:%M") if d.due else "—",
                 "time left": r["left"]} for r, d in zip(rows, items, strict=True)]
    emit(rows, fmt, ["article", "obligation", "to", "due (UTC)", "time left", "status"],
         title=f"Deadlines of {case_id} (aware since {case.aware_at:%Y-%m-%d %H:%M} UTC)")
    for line in warnings(items):
        print(f"warning: {line}", file=sys.stderr)


@app.command()
def notified(ctx: typer.Context, case_id: str, deadline: Annotated[str, typer.Argument(help="e.g. gdpr-33")],
             at: Annotated[str | None, typer.Option("--at", help="When it was sent (default now)")] = None,
             actor: Actor = "", expect: Expect = None) -> None:
    """Record that a deadline's notification was sent."""
    known = {r.id for rules in REGIMES.values() for r in rules}
    if deadline not in known:
        raise InputError(Problem(Location("DEADLINE"), f"unknown deadline {deadline!r}", ", ".join(sorted(known))))
    when = (_when(at, "--at") or datetime.now(UTC)).isoformat()

    def mark(case: Case) -> dict[str, Any]:
        case.notified[deadline] = when
        return {"deadline": deadline, "at": when}

    _change(ctx, case_id, actor, "notified", mark, expect)


class DraftFormat(StrEnum):
    markdown = "markdown"
    html = "html"


@app.command("notify-draft")
def notify_draft(
    ctx: typer.Context, case_id: str,
    regime: Annotated[Regime, typer.Option("--regime", help="gdpr, nis2 or hipaa")],
    fmt: Annotated[DraftFormat, typer.Option("--format")] = DraftFormat.markdown,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
    organisation: Annotated[str, typer.Option(help="Name of the notifying organisation")] = "",
) -> None:
    """A draft notification filled from the case and the inventory."""
    regime_rules(str(regime))
    with _store(ctx).read() as conn:
        case = load_case(conn, case_id)
        assets = inventory_assets(conn)
    text = draft(case, assets, str(regime), datetime.now(UTC), organisation)[str(fmt)]
    if output is None:
        sys.stdout.write(text)
    else:
        with writing(output):
            output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


