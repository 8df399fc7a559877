"""`healthswarm report incident ID --format html`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import console, error_lines, writing
from healthswarm.detect.service import alert_volume, get_incident, list_alerts
from healthswarm.inventory.service import get_asset
from healthswarm.risk.history import load_history, series

app = typer.Typer(help="Reports for people: an incident's timeline, assets, ATT&CK mapping and evidence.",
                  no_args_is_help=True)


class ReportFormat(StrEnum):
    html = "html"


@app.command("incident")
def incident(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.html,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write; default: "
                                                "<workspace>/reports/<ID>.html")] = None,
) -> None:
    """Write one incident's report."""
    from healthswarm.web.report import incident_html

    app_ = app_context(ctx)
    with app_.store.read() as conn:
        found = get_incident(conn, incident_id)
        if found is None:
            error_lines([f"incident {incident_id!r}: no such incident (see `{command_line(ctx, 'incidents list')}`)"])
            raise typer.Exit(2)
        assets = [a for a in (get_asset(conn, i) for i in found["assets"]) if a is not None]
        alerts, _ = list_alerts(conn, incident=incident_id, limit=10_000)
        risk, volume = series(load_history(conn)), alert_volume(conn)
    page = incident_html(found, assets, sorted(alerts, key=lambda a: a["timestamp"]), datetime.now(UTC), risk, volume)
    target = output or app_.settings.workspace / "reports" / f"{incident_id}.{fmt}"
    with writing(target):
        target.write_text(page, encoding="utf-8")
    console.print(f"wrote {target}", highlight=False, markup=False)
