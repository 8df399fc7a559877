"""`healthswarm worker --role ingest|detect|correlate|respond|all`: an alias of `healthswarm agent run --role …`,
same flags (docs/agent.md, Scale-out)."""

from __future__ import annotations

from typing import Annotated

import typer

from healthswarm.cli.agent import (
    AckWaitOpt,
    BatchOpt,
    ConfigOpt,
    DbOpt,
    DeadOpt,
    FlushOpt,
    InFlightOpt,
    LogLevelOpt,
    MetricsPortOpt,
    NatsOpt,
    PartitionOpt,
    PartitionsOpt,
    PrefixOpt,
    RulesOpt,
    StreamOpt,
    log_level_of,
    run_role,
)
from healthswarm.worker.config import DEFAULT_MAX_DELIVERIES, DEFAULT_PREFIX, DEFAULT_STREAM, Role


def worker(ctx: typer.Context, role: Annotated[Role, typer.Option(help="The stage this process runs, or all three")],
           config: ConfigOpt = None, log_level: LogLevelOpt = "info", db: DbOpt = None, nats_url: NatsOpt = None,
           batch: BatchOpt = 500, max_in_flight: InFlightOpt = 5_000, metrics_port: MetricsPortOpt = None,
           prefix: PrefixOpt = DEFAULT_PREFIX, stream: StreamOpt = DEFAULT_STREAM, partitions: PartitionsOpt = 1,
           partition: PartitionOpt = None, ack_wait: AckWaitOpt = 30.0, flush_interval: FlushOpt = 30.0,
           rules: RulesOpt = None, max_deliveries: DeadOpt = DEFAULT_MAX_DELIVERIES) -> None:
    """One scale-out role process, as `healthswarm agent run --role`: raw records → events (ingest) → alerts
    (detect, the whole suite) → incidents (correlate), each effect stored exactly once; add workers to add
    throughput."""
    raise typer.Exit(run_role(ctx, role, config, log_level_of(log_level), db=db, nats_url=nats_url, batch=batch,
                              max_in_flight=max_in_flight, metrics_port=metrics_port, prefix=prefix, stream=stream,
                              partitions=partitions, partition=partition, ack_wait=ack_wait,
                              flush_interval=flush_interval, rules=rules, max_deliveries=max_deliveries))
