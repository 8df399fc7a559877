"""`healthswarm node federate`: train the flow model across organisations' private partitions with Flower.

Thin: parse options, call `swarm.federated.run.run_federated`, print. Flower is imported only when the
command runs, so other commands do not pay for it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table as RichTable

from healthswarm.cli.output import OutputFormat, console, writing


def federate(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="CICFlowMeter CSV files or folders of them")],
    clients: Annotated[int, typer.Option(help="organisations (Flower clients)")] = 10,
    rounds: Annotated[int, typer.Option(help="federated rounds")] = 40,
    local_epochs: Annotated[int, typer.Option(help="local epochs per round")] = 3,
    strategy: Annotated[str, typer.Option(help="fedavg, trimmed-mean or krum")] = "fedavg",
    server_momentum: Annotated[float, typer.Option(
        help="trimmed-mean only: momentum μ of the server's step, in [0, 1); 0 = Flower's FedTrimmedAvg")] = 0.5,
    alpha: Annotated[float, typer.Option(help="Dirichlet label skew (small = more skewed)")] = 0.5,
    poisoned: Annotated[float, typer.Option(help="share of poisoned organisations, for evaluation")] = 0.0,
    attack: Annotated[str, typer.Option(help="label-flip or scaled (flip + model replacement)")] = "scaled",
    dp_noise: Annotated[float | None, typer.Option(help="central DP noise multiplier z (fedavg only)")] = None,
    dp_clip: Annotated[float, typer.Option(help="DP clipping norm of each update")] = 1.0,
    max_per_class: Annotated[int | None, typer.Option(help="stratified subsample: rows per class at most")] = None,
    transport: Annotated[str, typer.Option(help="in-process or grpc (one process per organisation)")] = "in-process",
    baselines: Annotated[bool, typer.Option(help="also train centralised and local-only models")] = True,
    seed: Annotated[int, typer.Option(help="seed of partitions, attackers, training and DP noise")] = 0,
    out: Annotated[Path | None, typer.Option(help="write the full report as JSON here")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table or json")] = OutputFormat.table,
) -> None:
    """Federate the flow model (FedAvg / trimmed mean / Krum, optional poisoning and DP) and compare it with
    centralised and local-only training on the same held-out rows."""
    if out is not None:
        with writing(out):  # an unwritable --out is one error line before the rounds, not a traceback after them
            out.open("ab").close()
    from healthswarm.swarm.federated.run import FederatedConfig, run_federated

    config = FederatedConfig(data=tuple(data), clients=clients, rounds=rounds, local_epochs=local_epochs,
                             strategy=strategy, server_momentum=server_momentum, alpha=alpha,
                             poisoned=poisoned, attack=attack,  # type: ignore[arg-type]
                             dp_noise=dp_noise, dp_clip=dp_clip, max_per_class=max_per_class, transport=transport,
                             baselines=baselines, seed=seed)
    report = run_federated(config)
    document = orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    if out is not None:
        with writing(out):
            out.write_bytes(document + b"\n")
    if fmt is not OutputFormat.table:
        sys.stdout.buffer.write(document + b"\n")
        return
    table = RichTable(title=f"federated {strategy}, {clients} organisations, {rounds} rounds ({transport})")
    for column in ("model", "macro-F1", "attack-vs-benign F1"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_row("federated", f"{report.federated['macro_f1']:.4f}", f"{report.federated['binary_f1']:.4f}")
    if report.centralised and report.local_only:
        table.add_row("centralised", f"{report.centralised['macro_f1']:.4f}", f"{report.centralised['binary_f1']:.4f}")
        table.add_row("local-only (mean)", f"{report.local_only['mean_macro_f1']:.4f}", "")
    console.print(table)
    console.print(f"rows: {report.rows['train']} train over {clients} organisations, {report.rows['test']} held out; "
                  f"{report.seconds_per_round:.3f} s per round; flwr {report.flwr_version}")
    if report.poisoned_clients:
        console.print(f"poisoned organisations: {report.poisoned_clients}")
    if report.rejected:
        console.print(f"refused updates: {report.rejected}")
    if report.epsilon is not None:
        console.print(f"differential privacy: ε = {report.epsilon:.2f} at δ = {config.dp_delta:g} ({report.notes[0]})")
