"""`healthswarm agent run|init-config|status|share`: the long-running agent, embedded or (`run --role`) one
scale-out role process (docs/agent.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, err_console, writing
from healthswarm.errors import ConfigError
from healthswarm.worker.config import (
    DEFAULT_MAX_DELIVERIES,
    DEFAULT_NATS,
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    Role,
    WorkerConfig,
)

app = typer.Typer(help="The agent: sources → detection → incidents → risk → swarm, running until stopped.",
                  no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="agent.toml [default: the defaults]")]


RoleOpt = Annotated[Role | None, typer.Option(
    help="Run one scale-out role on NATS JetStream and a shared database instead of the embedded agent: ingest, "
         "detect, correlate, respond (live risk and playbooks by policy), or all (ingest, detect and correlate) "
         "(docs/agent.md, Scale-out)")]
DbOpt = Annotated[str | None, typer.Option(
    "--db", help="role: database URL shared by the workers (postgresql://…); SQLite only for a single worker")]
NatsOpt = Annotated[str | None, typer.Option(
    "--nats", help=f"role: NATS JetStream server [default: the configured bus if nats://, else {DEFAULT_NATS}]")]
BatchOpt = Annotated[int, typer.Option(min=1, max=10_000, help=(
    "role: records per fetch and per transaction (the detect role fetches BATCH/100 messages of up to 100 events)"))]
InFlightOpt = Annotated[int, typer.Option(
    min=1, help="role: un-acked messages the role's group holds at most (JetStream max_ack_pending)")]
MetricsPortOpt = Annotated[int | None, typer.Option(
    min=0, max=65535, help="role: serve /healthz, /readyz and /metrics on this port (0: any free port)")]
PrefixOpt = Annotated[str, typer.Option(help="role: subject prefix of the deployment")]
StreamOpt = Annotated[str, typer.Option(help="role: JetStream stream holding <prefix>.>")]
PartitionsOpt = Annotated[int, typer.Option(min=1, max=1024, help="role: event partitions (same on every worker)")]
PartitionOpt = Annotated[int | None, typer.Option(
    min=0, help="detect: take this partition only, so that per-asset, per-interface and per-user state is whole "
                "(one detect worker per partition)")]
AckWaitOpt = Annotated[float, typer.Option(
    min=0.5, help="role: seconds before what a dead worker held is delivered again")]
FlushOpt = Annotated[float, typer.Option(
    min=0.5, help="detect: seconds between flushes of Sigma correlations that only time completes "
                  "(lt/lte/neq conditions); also flushed at a graceful stop")]
RulesOpt = Annotated[list[Path] | None, typer.Option(
    "--rules", "-r", help="detect: Sigma rule files or folders besides the [detect] packs and rules")]
DeadOpt = Annotated[int, typer.Option(
    min=1, help="role: failures of one message before it goes to <prefix>.dead.<role>")]
LogLevelOpt = Annotated[str, typer.Option(help="debug, info, warning or error")]


def log_level_of(log_level: str) -> int:
    import logging

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise ConfigError(f"--log-level {log_level!r}: expected debug, info, warning or error")
    return level


@app.command("run")
def run(ctx: typer.Context, config: ConfigOpt = None,
        api: Annotated[str | None, typer.Option(
            "--api", help="Also serve the API and the dashboard on HOST:PORT (overrides [api])")] = None,
        log_level: LogLevelOpt = "info", role: RoleOpt = None, db: DbOpt = None, nats_url: NatsOpt = None,
        batch: BatchOpt = 500, max_in_flight: InFlightOpt = 5_000, metrics_port: MetricsPortOpt = None,
        prefix: PrefixOpt = DEFAULT_PREFIX, stream: StreamOpt = DEFAULT_STREAM, partitions: PartitionsOpt = 1,
        partition: PartitionOpt = None, ack_wait: AckWaitOpt = 30.0, flush_interval: FlushOpt = 30.0,
        rules: RulesOpt = None, max_deliveries: DeadOpt = DEFAULT_MAX_DELIVERIES) -> None:
    """Run the embedded agent (SQLite, in-memory bus) until SIGTERM/SIGINT; with --role, one scale-out role process
    instead (NATS JetStream, a shared database). Logs are JSON lines on stderr."""
    import dataclasses
    import os

    from healthswarm.agent import logs
    from healthswarm.agent.config import ApiConfig, load_config
    from healthswarm.agent.runtime import Agent
    from healthswarm.api.heap import freeze_startup_heap

    level = log_level_of(log_level)
    if role is not None:
        if api is not None:
            raise ConfigError("--api: the embedded agent's; a role process serves /metrics (--metrics-port)")
        raise typer.Exit(run_role(ctx, role, config, level, db=db, nats_url=nats_url, batch=batch,
                                  max_in_flight=max_in_flight, metrics_port=metrics_port, prefix=prefix,
                                  stream=stream, partitions=partitions, partition=partition, ack_wait=ack_wait,
                                  flush_interval=flush_interval, rules=rules, max_deliveries=max_deliveries))
    given = [flag for flag, value in (("--db", db), ("--nats", nats_url), ("--metrics-port", metrics_port),
                                      ("--partition", partition), ("--rules", rules)) if value is not None]
    if given:
        raise ConfigError(f"{given[0]}: only with --role (the embedded agent takes its settings from --config)")
    cfg = load_config(config)
    if api is not None:
        cfg = dataclasses.replace(cfg, api=ApiConfig(enabled=True, listen=api))
    settings = app_context(ctx).settings
    logs.setup({"agent": settings.workspace.name, "pid": os.getpid()}, level)
    agent = Agent(cfg, settings)
    # the compiled rules, the suite and the app live as long as the process: out of the collector's full walks
    # (what `serve` does for its app; api/heap.py says what it saved there)
    freeze_startup_heap()
    raise typer.Exit(agent.run())


def run_role(ctx: typer.Context, role: Role, config: Path | None, level: int, *, db: str | None,
             nats_url: str | None, rules: list[Path] | None, **options: Any) -> int:
    """One scale-out role process (`agent run --role`, `worker --role`); its exit status."""
    from healthswarm.agent.config import load_config
    from healthswarm.worker.run import run_worker

    settings = app_context(ctx).settings
    if db is None and not settings.db:
        settings.ensure_workspace()
    bus = settings.bus if settings.bus.startswith("nats://") else DEFAULT_NATS
    worker_config = WorkerConfig(role=role, db=db or settings.db_url, nats=nats_url or bus,
                                 organisation=settings.organisation, rules=tuple(rules or ()),
                                 placeholders=_placeholders(settings.extra), agent=load_config(config), **options)
    return run_worker(worker_config, settings.workspace, level)


def _placeholders(extra: dict[str, Any]) -> dict[str, list[str]]:
    """`[sigma.placeholders]` of config.toml: NAME = ["value", …]."""
    sigma = extra.get("sigma")
    values = sigma.get("placeholders") if isinstance(sigma, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in values.items()}


@app.command("init-config")
def init_config(out: Annotated[Path, typer.Argument(help="Where to write it")] = Path("agent.toml"),
                force: Annotated[bool, typer.Option("--force", help="Replace an existing file")] = False) -> None:
    """Write the default configuration, every key commented, to edit."""
    from healthswarm.agent.config import DEFAULT_CONFIG

    if out.exists() and not force:
        raise ConfigError(f"{out}: exists (--force replaces it)")
    with writing(out):
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
    # the two epoch times read as every other UTC time the CLI prints; --format json keeps the numbers
    rows = [{"measure": k, "value": f"{datetime.fromtimestamp(float(v), UTC):%Y-%m-%d %H:%M} UTC"
             if k in ("started", "written") and isinstance(v, int | float) else v}
            for k, v in data.items() if k not in ("per_detector", "errors", "swarm")]
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
