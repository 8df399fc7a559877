"""What every command shares: the resolved settings and, opened on first use, the store."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import typer

from healthswarm.config import Settings
from healthswarm.store import Store


@dataclass
class AppContext:
    settings: Settings
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            if not self.settings.db:
                self.settings.ensure_workspace()
            self._store = Store.open(self.settings.db_url)
        return self._store


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext), "the root callback sets the context"
    return obj


def command_line(ctx: typer.Context, args: str) -> str:
    """`args` as a command the user can paste: this installation's healthswarm (`output.program`) and the
    --workspace this command was given, so a hint reaches the same workspace."""
    from healthswarm.cli.output import program

    workspace = ctx.find_root().params.get("workspace")
    where = f" -w {shlex.quote(str(workspace))}" if workspace is not None else ""
    return f"{program()}{where} {args}"
