"""`healthswarm demo`: the end-to-end job on embedded defaults."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.panel import Panel
from rich.text import Text

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, activate_hint, console, rule
from healthswarm.demo import ADVISORIES
from healthswarm.demo.run import STEPS
from healthswarm.demo.steps import DemoRun


def demo(
    ctx: typer.Context,
    advisories: Annotated[
        Path, typer.Option(help="Advisories to import (CSAF/CVE JSON files or folders); default: the bundled ones")
    ] = ADVISORIES,
    flows: Annotated[Path | None, typer.Option(
        help="Labelled CICFlowMeter flows (e.g. ../shared/data/flows/cicids2017): train the flow classifier on part "
             "and run it as a detector over the rest")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table: show each step; json: the summary")] = (
        OutputFormat.table
    ),
) -> None:
    """Run every stage on the reference ecosystem: inventory, advisories, and what later stages add."""
    app = app_context(ctx)
    store = app.store
    store.clear()
    run = DemoRun(store=store, workspace=app.settings.workspace, advisories_path=advisories, flows_path=flows)
    summaries = {}
    for number, step in enumerate(STEPS, 1):
        if fmt is OutputFormat.table:
            rule(f"[bold]{number}. {step.title}")
        with console.status(step.title) if fmt is OutputFormat.table else _quiet():
            result = step.run(run)
        summaries[step.title] = result.summary
        if fmt is OutputFormat.table:
            for renderable in result.show:
                console.print(renderable)
    if fmt is OutputFormat.table:
        hints = [f"workspace: {app.settings.workspace.resolve()}", "next:",
                 *(f"  {command_line(ctx, args)}" for args in ("inventory show", "vulns list", "incidents list")),
                 activate_hint()]
        console.print(Panel(Text("\n".join(h for h in hints if h)), title="demo complete", expand=False))
    else:
        sys.stdout.buffer.write(orjson.dumps(summaries, option=orjson.OPT_INDENT_2) + b"\n")


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
