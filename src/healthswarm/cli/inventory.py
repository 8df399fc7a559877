"""`healthswarm inventory validate|load|show|graph|discover|merge`."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, error_lines, writing
from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory import load_inventory
from healthswarm.inventory.graph import to_graph, write_graph
from healthswarm.model import Inventory
from healthswarm.model.words import counted
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.inventory import replace_inventory

app = typer.Typer(help="The infrastructure model: organisations, zones, assets, flows, dependencies.",
                  no_args_is_help=True)

Paths = Annotated[list[Path], typer.Argument(help="Inventory YAML files or folders of them")]


class GraphFormat(StrEnum):
    graphml = "graphml"
    json = "json"


def summary(inventory: Inventory) -> str:
    devices = sum(1 for a in inventory.assets if a.is_medical_device)
    return (f"{len(inventory.organisations)} organisations, {len(inventory.zones)} zones, "
            f"{len(inventory.assets)} assets ({devices} medical devices), {len(inventory.flows)} flows, "
            f"{len(inventory.dependencies)} dependencies")


@app.command()
def validate(paths: Paths) -> None:
    """Check inventory files; print every problem (file:line: what, expected what). Exit 1 on problems."""
    try:
        inventory = load_inventory(paths)
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        console.print(f"[red]{counted(len(exc.problems), 'problem')}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]valid[/green]: {summary(inventory)}")


@app.command()
def load(ctx: typer.Context, paths: Paths) -> None:
    """Validate, then replace the stored inventory in one transaction (nothing is half-written)."""
    inventory = load_inventory(paths)
    store = app_context(ctx).store
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
    console.print(f"loaded {summary(inventory)}")


@app.command()
def show(
    ctx: typer.Context,
    organisation: Annotated[str | None, typer.Option(help="Only this organisation's assets")] = None,
    kind: Annotated[str | None, typer.Option(help="Only assets of this kind")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """List the stored assets (with a count per organisation and kind in table form)."""
    with app_context(ctx).store.read() as conn:
        inventory = stored_inventory(conn)
    assets = [a for a in inventory.assets
              if (organisation is None or a.organisation == organisation) and (kind is None or a.kind == kind)]
    rows = [
        {"id": a.id, "organisation": a.organisation, "zone": a.zone, "kind": a.kind, "name": a.name,
         "vendor": a.vendor, "product": a.product, "version": a.version, "addresses": list(a.addresses),
         "hostnames": list(a.hostnames), "safety": str(a.criticality.safety),
         "confidentiality": str(a.criticality.confidentiality), "availability": str(a.criticality.availability),
         "records": a.records, "medical_device": a.is_medical_device}
        for a in assets
    ]
    empty = (f"no asset matches the filters ({len(inventory.assets)} stored); "
             f"`{command_line(ctx, 'inventory show')}` lists them all" if inventory.assets else
             f"no inventory stored: `{command_line(ctx, 'inventory load FILE')}` adds one "
             f"(or `{command_line(ctx, 'demo')}` the reference ecosystem)")
    emit(rows, fmt, ["id", "organisation", "zone", "kind", "vendor", "product", "version", "addresses", "safety"],
         title=f"{len(rows)} assets", empty=empty)
    if fmt is OutputFormat.table and rows:
        per_org = Counter(a.organisation for a in assets)
        console.print(", ".join(f"{org}: {n}" for org, n in sorted(per_org.items())))


@app.command()
def graph(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write")],
    fmt: Annotated[GraphFormat, typer.Option("--format")] = GraphFormat.graphml,
) -> None:
    """Export the stored asset / flow / dependency graph as GraphML or JSON (node-link)."""
    with app_context(ctx).store.read() as conn:
        g = to_graph(stored_inventory(conn))
    with writing(out):
        write_graph(g, out, fmt.value)
    console.print(f"wrote {out}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges ({fmt.value})")


def _since(text: str | None) -> datetime | None:
    """`--since`: an ISO 8601 time (UTC when no zone is given) or a span back from now (30m, 12h, 7d)."""
    if text is None:
        return None
    text = text.strip()
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(Problem(Location("--since"), f"{text!r} is not a time",
                                 "ISO 8601 (2026-11-27T08:00) or a span back from now (30m, 12h, 7d)")) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


TABLE_ROWS = 25


def _table(rows: list[dict], columns: list[str], title: str) -> None:
    """A table of the first TABLE_ROWS rows (`--format json` has them all), or one line when there are none."""
    if not rows:
        console.print(f"{title}: none")
        return
    more = f" (first {TABLE_ROWS} of {len(rows)}; --format json lists all)" if len(rows) > TABLE_ROWS else ""
    emit(rows[:TABLE_ROWS], OutputFormat.table, columns, title=f"{title}{more}")


@app.command()
def discover(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Only events from then on: ISO 8601 or a span (12h, 7d)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    patch: Annotated[Path | None, typer.Option("--patch", help="Write a YAML patch of the inventory to review")] = None,
    fingerprints: Annotated[list[Path] | None, typer.Option(
        "--fingerprints", help="More fingerprint YAML files or folders (beside the shipped ones)")] = None,
    alerts: Annotated[bool, typer.Option(
        "--alerts/--no-alerts", help="Store alerts for undeclared flows into safety-critical devices")] = True,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Read every stored event again instead of only those stored since the last run")] = False,
) -> None:
    """Devices, services and flows seen in the stored events, against the declared inventory.

    Without --since the picture is kept in the workspace (discover/state.json) and each run reads only the
    events stored since the last one; --since reads that window afresh and keeps nothing."""
    from healthswarm.inventory.discover.patch import write_patch
    from healthswarm.inventory.discover.service import run_discovery

    context = app_context(ctx)
    run = run_discovery(context.store, context.settings.workspace, since=_since(since),
                        fingerprints=fingerprints or [], rebuild=rebuild, store_alerts=alerts)
    report, inventory, found, raised = run.report, run.inventory, run.findings, run.alerts
    written = write_patch(report, inventory, patch) if patch is not None else None
    if fmt is not OutputFormat.table:
        document = report.as_dict()
        document["discovered_findings"] = [
            {"asset_id": f.asset_id, "advisory_id": f.advisory_id, "cve": f.cve, "status": str(f.status),
             "severity": f.severity, "cvss_score": f.cvss_score, "explanation": f.explanation} for f in found]
        document["alerts"] = [a.as_dict() for a in raised]
        if fmt is OutputFormat.json:
            sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str) + b"\n")
        else:
            for section in ("undeclared_devices", "undeclared_flows", "contradictions", "discovered_findings",
                            "alerts"):
                for row in document[section]:
                    sys.stdout.buffer.write(orjson.dumps({"type": section, **row}, default=str) + b"\n")
            sys.stdout.buffer.write(orjson.dumps({"type": "summary", **document["summary"]}) + b"\n")
    else:
        s = report.summary()
        console.print(f"{s['events']} events ({s['flow_events']} flow records), {report.window['first']} .. "
                      f"{report.window['last']}: {s['devices_seen']} devices ({s['undeclared_devices']} undeclared), "
                      f"{s['flows']} flows ({s['undeclared_flows']} undeclared, {s['undeclared_flows_high']} high, "
                      f"{s['infrastructure_flows']} DNS/NTP to own directory), "
                      f"{s['silent_assets']} silent assets, {s['contradictions']} contradicted versions")
        _table([{**d.as_dict(), "model": " ".join(x for x in ((d.fingerprint.vendor, d.fingerprint.product,
                                                              d.fingerprint.version) if d.fingerprint else ()) if x),
                 "confidence": f"{d.fingerprint.confidence:.2f}" if d.fingerprint else ""}
                for d in report.undeclared_devices],
               ["ip", "organisation", "zone", "kind", "model", "confidence", "services", "first_seen"],
               "Undeclared devices")
        _table([f.as_dict() for f in report.undeclared_flows],
               ["severity", "source", "target", "protocol", "port", "connections", "concerns", "first_seen"],
               "Undeclared flows")
        _table([c.as_dict() for c in report.contradictions],
               ["asset_id", "field", "declared", "observed", "confidence"], "Contradicted declarations")
        _table(report.silent, ["asset_id", "kind", "zone", "addresses"],
               "Silent declared assets (their zone was seen, they were not)")
        _table([{"asset": f.asset_id, "advisory": f.advisory_id, "cve": f.cve, "status": str(f.status),
                 "severity": f.severity, "evidence": f.explanation.get("evidence", "")} for f in found],
               ["asset", "advisory", "cve", "status", "severity", "evidence"], "Findings on discovered devices")
        if raised:
            console.print(f"[red]{counted(len(raised), 'alert')}[/red]: undeclared flows into safety-critical devices"
                          + (" (stored)" if alerts else ""))
    if written is not None:
        console.print(f"wrote {patch}: {counted(len(written.assets), 'device')}, "
                      f"{counted(len(written.updated), 'version update')}, {counted(len(written.flows), 'flow')}, "
                      f"{len(written.held_back)} held back", highlight=False)


@app.command()
def merge(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A reviewed inventory patch (YAML, the inventory's own schema)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report, change nothing")] = False,
) -> None:
    """Validate a patch against the stored inventory and apply it in one transaction (nothing on error)."""
    from healthswarm.inventory.discover.patch import merge_patch

    result = merge_patch(app_context(ctx).store, file, dry_run=dry_run)
    verb = "would merge" if dry_run else "merged"
    console.print(f"{verb} {file}: {counted(len(result.added_assets), 'new asset')}, {len(result.replaced_assets)} "
                  f"replaced, {counted(result.added_flows, 'flow')}, "
                  f"{counted(result.added_dependencies, 'dependency', 'dependencies')}; findings "
                  f"{result.findings_before} → {result.findings_after}; now {summary(result.inventory)}",
                  highlight=False)
