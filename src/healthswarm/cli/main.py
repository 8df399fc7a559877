"""The root of the command line: global options, the command groups, and error handling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from healthswarm import __version__
from healthswarm.cli import demo, hunt, ingest, inventory, model, risk, share, vulns
from healthswarm.cli.context import AppContext
from healthswarm.cli.output import error_lines
from healthswarm.config import Settings
from healthswarm.errors import HealthswarmError, InputError

app = typer.Typer(
    name="healthswarm",
    help="Protect healthcare ICT: inventory, advisories, detection, risk, response and sharing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(inventory.app, name="inventory")
app.add_typer(vulns.app, name="vulns")
app.add_typer(risk.app, name="risk")
app.add_typer(model.app, name="model")
app.command("demo")(demo.demo)
app.command("ingest")(ingest.ingest)
app.command("hunt")(hunt.hunt)
app.add_typer(ingest.quarantine_app, name="quarantine")
app.add_typer(share.app, name="share")


def _version(value: bool) -> None:
    if value:
        print(f"healthswarm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Workspace folder [env HEALTHSWARM_HOME; default ./.healthswarm]"),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (postgresql://…); default: SQLite in the workspace"),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    ctx.obj = AppContext(Settings.load(workspace, db=db))


def run() -> None:
    """Console-script entry point: a user mistake is one line per problem on stderr and exit 2."""
    try:
        app()
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        sys.exit(2)
    except HealthswarmError as exc:
        error_lines([str(exc)])
        sys.exit(2)
    except OperationalError as exc:
        error_lines([f"cannot open the database: {str(exc.orig).strip().splitlines()[0]}"])
        sys.exit(2)
