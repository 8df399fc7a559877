"""`healthswarm agent run|init-config|status|share`: the long-running embedded agent (docs/agent.md)."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, err_console
from healthswarm.errors import ConfigError

app = typer.Typer(help="The agent: sources → detection → incidents → risk → swarm, running until stopped.",
                  no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="agent.toml [default: the defaults]")]


@app.command("run")
def run(ctx: typer.Context, config: ConfigOpt = None,
        api: Annotated[str | None, typer.Option(
            "--api", help="Also serve the API and the dashboard on HOST:PORT (overrides [api])")] = None,
        log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info") -> None:
    """Run the embedded agent (SQLite, in-memory bus) until SIGTERM/SIGINT; logs are JSON lines on stderr."""
    import dataclasses
    import logging
    import os

    from healthswarm.agent.config import ApiConfig, load_config
    from healthswarm.agent.runtime import Agent
    from healthswarm.worker import logs

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise ConfigError(f"--log-level {log_level!r}: expected debug, info, warning or error")
    cfg = load_config(config)
    if api is not None:
        cfg = dataclasses.replace(cfg, api=ApiConfig(enabled=True, listen=api))
    settings = app_context(ctx).settings
    logs.setup({"agent": settings.workspace.name, "pid": os.getpid()}, level)
    agent = Agent(cfg, settings)
    raise typer.Exit(agent.run())


@app.command("init-config")
def init_config(out: Annotated[Path, typer.Argument(help="Where to write it")] = Path("agent.toml"),
                force: Annotated[bool, typer.Option("--force", help="Replace an existing file")] = False) -> None:
    """Write the default configuration, every key commented, to edit."""
    from healthswarm.agent.config import DEFAULT_CONFIG

    if out.exists() and not force:
        raise ConfigError(f"{out}: exists (--force replaces it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(DEFAULT_CONFIG, encoding="utf-8")
    console.print(f"wrote {out}; start with: healthswarm agent run --config {out}", highlight=False)


@app.command("status")
def status(ctx: typer.Context,
           fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """What the running agent last wrote to <workspace>/agent/status.json."""
    path = app_context(ctx).settings.workspace / "agent" / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(f"{path}: no status (is `healthswarm agent run` running on this workspace?)") from None
    if fmt is not OutputFormat.table:
        emit([data], fmt, [])
        return
    age = time.time() - float(data.get("written", 0))
    rows = [{"measure": k, "value": v} for k, v in data.items() if k not in ("per_detector", "errors", "swarm")]
    rows += [{"measure": f"alerts by {k}", "value": v} for k, v in sorted(data.get("per_detector", {}).items())]
    emit(rows, OutputFormat.table, ["measure", "value"], title=f"agent status ({age:.0f} s old)")
    for line in data.get("errors", []):
        err_console.print(f"error: {line}", markup=False)


class Decision(StrEnum):
    veto = "veto"
    now = "now"
    hold = "hold"


@app.command("share")
def share(ctx: typer.Context, incident: Annotated[str, typer.Argument(help="Incident id (INC-…)")],
          decision: Annotated[Decision, typer.Option(help="veto: never publish it; now: publish without waiting "
                                                          "for the hold; hold: the default policy again")]) -> None:
    """Decide about publishing one incident's indicators to peers (read by the running agent)."""
    from healthswarm.agent.swarm import set_decision

    set_decision(app_context(ctx).settings.workspace, incident, decision.value)
    console.print(f"{incident}: {decision.value}", highlight=False)
