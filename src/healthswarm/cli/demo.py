"""`healthswarm demo`: the end-to-end job on embedded defaults, then the live agents (demo/live.py)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.text import Text

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, activate_hint, console, program, rule
from healthswarm.demo import ADVISORIES, live
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
    live_agents: Annotated[bool, typer.Option(
        "--live/--no-live", help="After the steps, run one real agent per organisation on loopback and replay the "
                                 "day's logs into them")] = True,
    speed: Annotated[float, typer.Option(help="The replay's clock: scenario seconds per second")] = live.SPEED,
    live_port: Annotated[int, typer.Option(
        help="First swarm port of the live agents on 127.0.0.1 (the next organisation's is one up); 0: free ports")
    ] = 0,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table: show each step; json: the summary")] = (
        OutputFormat.table
    ),
) -> None:
    """Run every stage on the reference ecosystem, then the live agents: St. Aurelia's detects and warns,
    Northfield's retro-hunts and opens its own incident."""
    if live_agents:
        live.validate(speed, live_port)  # a taken port is said now, not after the steps
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
    if live_agents:
        if fmt is OutputFormat.table:
            rule(f"[bold]{len(STEPS) + 1}. {live.TITLE}")
        with _live_progress(fmt is OutputFormat.table, speed) as (say, progress):
            result = live.run_live(app.settings.workspace, speed=speed, first_port=live_port, say=say,
                                   progress=progress)
        summaries[live.TITLE] = result.summary()
        if fmt is OutputFormat.table:
            for renderable in live.show(result):
                console.print(renderable)
    if fmt is OutputFormat.table:
        peer = app.settings.workspace / "agents" / live.RECEIVER
        hints = [f"workspace: {app.settings.workspace.resolve()}", "next:",
                 *(f"  {command_line(ctx, args)}" for args in ("inventory show", "vulns list", "incidents list")),
                 *([f"  {program()} -w {shlex.quote(str(peer))} incidents list"] if live_agents else []),
                 activate_hint()]
        console.print(Panel(Text("\n".join(h for h in hints if h)), title="demo complete", expand=False))
    else:
        sys.stdout.buffer.write(orjson.dumps(summaries, option=orjson.OPT_INDENT_2) + b"\n")


@contextmanager
def _live_progress(shown: bool, speed: float) -> Iterator[tuple[Callable[[live.Milestone], None], live.Progress]]:
    """Milestones printed as they happen above a bar of the replay (nothing shown for --format json)."""
    if not shown:
        yield (lambda m: None), (lambda done, total, clock: None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting one agent per organisation", total=None)

        def progress(done: int, total: int, clock: str) -> None:
            bar.update(task, description=f"replaying ×{speed:g}: {clock}", completed=done, total=total)

        yield (lambda m: bar.console.print(live.milestone_line(m), markup=False, highlight=False)), progress


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
