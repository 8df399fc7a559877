"""`healthswarm worker --role ingest|detect|correlate|all`: one scaled-out worker process (docs/scale-out.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from healthswarm.cli.context import app_context
from healthswarm.worker.config import DEFAULT_NATS, DEFAULT_PREFIX, DEFAULT_STREAM, Role, WorkerConfig


def _placeholders(extra: dict[str, Any]) -> dict[str, list[str]]:
    """`[sigma.placeholders]` of config.toml: NAME = ["value", …]."""
    sigma = extra.get("sigma")
    values = sigma.get("placeholders") if isinstance(sigma, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in values.items()}


def worker(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="Stage(s) this process runs")],
    db: Annotated[str | None, typer.Option(
        "--db", help="Database URL shared by the workers (postgresql://…); SQLite only for a single worker")] = None,
    nats_url: Annotated[str | None, typer.Option(
        "--nats", help=f"NATS JetStream server [default: the configured bus if nats://, else {DEFAULT_NATS}]")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per fetch and per transaction")] = 500,
    max_in_flight: Annotated[int, typer.Option(
        min=1, help="Un-acked messages the role's consumer hands out at most (JetStream max_ack_pending)")] = 5_000,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve /healthz, /readyz and /metrics on this port (0: any free port)")] = None,
    prefix: Annotated[str, typer.Option(help="Subject prefix of the deployment")] = DEFAULT_PREFIX,
    stream: Annotated[str, typer.Option(help="JetStream stream holding <prefix>.>")] = DEFAULT_STREAM,
    partitions: Annotated[int, typer.Option(min=1, max=1024, help="Event partitions (same on every worker)")] = 1,
    partition: Annotated[int | None, typer.Option(
        min=0, help="detect: bind this partition's durable only (exact Sigma correlation rules)")] = None,
    ack_wait: Annotated[float, typer.Option(
        min=0.5, help="Seconds before what a dead worker held is delivered again")] = 30.0,
    flush_interval: Annotated[float, typer.Option(
        min=0.5, help="detect: seconds between flushes of Sigma correlations that only time completes "
                      "(lt/lte/neq conditions); also flushed at a graceful stop")] = 30.0,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", "-r", help="detect: Sigma rule files or folders [default: the healthcare pack]")] = None,
) -> None:
    """Consume from NATS JetStream as one worker of a role: raw records → events (ingest) → alerts (detect) →
    incidents (correlate), each effect stored exactly once; add workers of a role to add throughput."""
    from healthswarm.worker.run import run_worker

    settings = app_context(ctx).settings
    if db is None and not settings.db:
        settings.ensure_workspace()
    bus = settings.bus if settings.bus.startswith("nats://") else DEFAULT_NATS
    config = WorkerConfig(role=role, db=db or settings.db_url, nats=nats_url or bus, batch=batch,
                          max_in_flight=max_in_flight, metrics_port=metrics_port, prefix=prefix, stream=stream,
                          partitions=partitions, partition=partition, ack_wait=ack_wait, flush_interval=flush_interval,
                          organisation=settings.organisation, rules=tuple(rules or ()),
                          placeholders=_placeholders(settings.extra))
    raise typer.Exit(run_worker(config, settings.workspace))
