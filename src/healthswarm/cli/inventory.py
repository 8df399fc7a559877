"""`healthswarm inventory validate|load|show|graph`."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, error_lines
from healthswarm.errors import InputError
from healthswarm.inventory import load_inventory
from healthswarm.inventory.graph import to_graph, write_graph
from healthswarm.model import Inventory
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
        console.print(f"[red]{len(exc.problems)} problem(s)[/red]")
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
    emit(rows, fmt, ["id", "organisation", "zone", "kind", "vendor", "product", "version", "addresses", "safety"],
         title=f"{len(rows)} assets")
    if fmt is OutputFormat.table:
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
    write_graph(g, out, fmt.value)
    console.print(f"wrote {out}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges ({fmt.value})")
