"""`healthswarm status`: the ecosystem at a glance."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.columns import Columns
from rich.table import Table

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console
from healthswarm.detect import service
from healthswarm.model.words import counted


def status(ctx: typer.Context, fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """Open incidents by stage and severity, the most exposed assets, and counts."""
    with app_context(ctx).store.read() as conn:
        summary = service.summary(conn)
    if fmt is not OutputFormat.table:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        return
    n = summary  # a count of one reads "1 alert", as on the dashboard
    console.print(f"[bold]{counted(n['open_incidents'], 'open incident')}[/] of {n['incidents']} · "
                  f"{counted(n['alerts'], 'alert')}, {n['alerts_in_incidents']} of them in incidents · "
                  f"{counted(n['assets'], 'asset')} · {counted(n['findings'], 'finding')}")
    missing = [hint for absent, hint in (
        (not summary["assets"], f"no inventory: `{command_line(ctx, 'inventory load FILE')}`"),
        (not summary["findings"], f"no findings: `{command_line(ctx, 'vulns import PATH')}` then "
                                  f"`{command_line(ctx, 'vulns match')}`"),
        (not summary["alerts"], f"no alerts: `{command_line(ctx, 'ingest FILE…')}` then "
                                f"`{command_line(ctx, 'detect')}`"),
    ) if absent]
    if missing:
        console.print("; ".join(missing) + f" (or `{command_line(ctx, 'demo')}` for all of them)", markup=False,
                      highlight=False)
    stages = Table(title="Open incidents by stage")
    stages.add_column("stage")
    stages.add_column("incidents", justify="right")
    for stage, n in summary["open_by_stage"].items():
        stages.add_row(stage, f"[bold red]{n}[/]" if n and stage in ("lateral-movement", "objectives") else str(n))
    severities = Table(title="Open incidents by severity")
    severities.add_column("severity")
    severities.add_column("incidents", justify="right")
    for level, n in reversed(list(summary["open_by_severity"].items())):
        severities.add_row(level, str(n))
    exposed = Table(title="Most exposed assets")
    for column in ("asset", "findings", "worst", "max CVSS"):
        exposed.add_column(column)
    for a in summary["most_exposed"]:
        exposed.add_row(a["asset"], str(a["findings"]), a["worst"], f"{a['max_cvss']:.1f}")
    console.print(Columns([stages, severities]))
    console.print(exposed)
