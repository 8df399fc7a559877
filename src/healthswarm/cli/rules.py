"""`healthswarm rules list|update|reset`: the bundled rule packs and the pinned SigmaHQ snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, error_lines
from healthswarm.detect.sigma.packs import SNAPSHOT_FOLDERS, install_snapshot, list_packs, remove_workspace_snapshot
from healthswarm.errors import InputError

app = typer.Typer(help="Rule packs loaded by default: the SigmaHQ snapshot, the healthswarm pack, the healthcare pack.",
                  no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """Each pack: where it comes from (packaged or the workspace), its version and how many rules it holds."""
    packs = list_packs(app_context(ctx).settings.workspace)
    if fmt is OutputFormat.table:
        rows = []
        for p in packs:
            folders = ", ".join(f"{k} {v}" for k, v in p.details.get("rules_per_folder", {}).items())
            rows.append({"pack": p.name, "version": p.version, "origin": p.origin, "rules": p.rules,
                         "contents": folders, "path": str(p.path)})
        emit(rows, fmt, ["pack", "version", "origin", "rules", "contents"], title="Rule packs loaded by default")
        sigma = packs[0]
        if sigma.details.get("license"):
            console.print(f"SigmaHQ rules: {sigma.details['license']}, {sigma.details.get('upstream', '')} "
                          f"(licence and attribution inside {sigma.path.name})", markup=False)
    else:
        emit([p.as_dict() for p in packs], fmt, [])


@app.command("update")
def update(
    ctx: typer.Context,
    source: Annotated[Path, typer.Option("--from", help="A SigmaHQ checkout folder or a release / snapshot zip")],
    commit: Annotated[str, typer.Option(help="The upstream commit the rules come from (recorded in the manifest)")]
    = "",
    date: Annotated[str, typer.Option(help="The snapshot date (default: the newest rule date)")] = "",
    folder: Annotated[list[str] | None, typer.Option(
        "--folder", help=f"Rule folders to keep (repeatable; default: {', '.join(SNAPSHOT_FOLDERS)})")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Install a newer SigmaHQ snapshot into the workspace (it then replaces the packaged one)."""
    workspace = app_context(ctx).settings.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    try:
        manifest = install_snapshot(source, workspace, commit, date, tuple(folder) if folder else SNAPSHOT_FOLDERS)
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        raise typer.Exit(2) from None
    if fmt is OutputFormat.table:
        console.print(f"installed SigmaHQ snapshot {manifest['date']} {manifest['commit']}".rstrip()
                      + f": {manifest['rules']} rules ({manifest['compiled']} compiled, "
                      f"{manifest['not_evaluable']} not evaluable) into {workspace / 'rules' / 'sigmahq.zip'}",
                      markup=False)
    else:
        emit([manifest], fmt, [])


@app.command("reset")
def reset(ctx: typer.Context) -> None:
    """Remove the workspace's snapshot: the packaged SigmaHQ snapshot is used again."""
    removed = remove_workspace_snapshot(app_context(ctx).settings.workspace)
    console.print("workspace snapshot removed; the packaged snapshot is in use" if removed
                  else "no workspace snapshot; the packaged snapshot is in use")
