"""The root of the command line: global options, the command groups, and error handling."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from healthswarm import __version__
from healthswarm.cli.context import AppContext, command_line
from healthswarm.cli.output import error_lines, program
from healthswarm.config import Settings
from healthswarm.errors import HealthswarmError, InputError
from healthswarm.respond.errors import NotFoundError

# Command name → (module, attribute): a Typer app (a group) or a function (one command). Modules are
# imported when their command runs, so `healthswarm hunt` does not pay for scikit-learn or FastAPI.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("healthswarm.cli.demo", "demo"),
    "inventory": ("healthswarm.cli.inventory", "app"),
    "vulns": ("healthswarm.cli.vulns", "app"),
    "ingest": ("healthswarm.cli.ingest", "ingest"),
    "quarantine": ("healthswarm.cli.ingest", "quarantine_app"),
    "hunt": ("healthswarm.cli.hunt", "hunt"),
    "detect": ("healthswarm.cli.detect", "detect"),
    "rules": ("healthswarm.cli.rules", "app"),
    "model": ("healthswarm.cli.model", "app"),
    "risk": ("healthswarm.cli.risk", "app"),
    "share": ("healthswarm.cli.share", "app"),
    "node": ("healthswarm.cli.node", "app"),
    "case": ("healthswarm.cli.case", "app"),
    "playbook": ("healthswarm.cli.playbook", "app"),
    "serve": ("healthswarm.cli.serve", "serve"),
    "tls": ("healthswarm.cli.tls", "app"),
    "worker": ("healthswarm.cli.worker", "worker"),
    "agent": ("healthswarm.cli.agent", "app"),
    "token": ("healthswarm.cli.serve", "token_app"),
    "incidents": ("healthswarm.cli.incidents", "app"),
    "status": ("healthswarm.cli.status", "status"),
    "report": ("healthswarm.cli.report", "app"),
}


def plain_help(command: click.Command) -> click.Command:
    """Help as Click formats it, for `command` and everything under it: help texts are shown as written (Rich
    markup would eat `[tls]` or `[default: …]`) and flags carry no `<bool>` type."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in (getattr(command, "commands", None) or {}).values():
        plain_help(sub)
    return command


# Typer ≥ 0.2x vendors Click: its errors derive from TyperException, not from the click package's ClickException
CLICK_ERRORS: tuple[type[Exception], ...] = (getattr(typer, "TyperException", click.ClickException),)


def _usage_error(exc: Exception) -> NoReturn:
    """A mistake on the command line: one line on stderr in plain words, with where to read the help."""
    message = exc.format_message().replace("Value error, ", "").rstrip(".")  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        where = ctx.command_path.partition(" ")[2]
        message += f" (see `{' '.join(filter(None, (program(), where)))} --help`)"
    error_lines([message])
    raise typer.Exit(getattr(exc, "exit_code", 2))


class LazyGroup(TyperGroup):
    """The root group: lists every command, imports one only when it is asked for."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except CLICK_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # prints the help itself
                raise
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CLICK_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            _usage_error(exc)
        except NotFoundError as exc:
            # an unknown case: the stage cannot know how the user's shell reaches their workspace, the root can
            raise HealthswarmError(f"{exc} (see `{command_line(ctx, 'case list')}`)") from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            target._add_completion = False  # completion is the root's business
            command: click.Command = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return plain_help(command)


app = typer.Typer(
    name="healthswarm",
    cls=LazyGroup,
    help="Protect healthcare ICT: inventory, advisories, detection, risk, response and sharing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    rich_markup_mode=None,
)


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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print healthswarm's version and exit")] = False,
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
