"""`healthswarm node`: run a swarm node, show its status, hand it intelligence to publish."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healthswarm.cli.federate import federate
from healthswarm.cli.output import OutputFormat, console, emit, program
from healthswarm.errors import ConfigError
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import KINDS
from healthswarm.swarm.runtime import NodeRuntime, read_status

app = typer.Typer(help="A swarm node: membership, gossip of signed intelligence, the threat field.",
                  no_args_is_help=True)
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="node.toml")]


@app.command("run")
def run(config: ConfigOpt) -> None:
    """Run the node until SIGINT/SIGTERM (then it announces that it leaves)."""
    cfg = load_node_config(config)
    runtime = NodeRuntime(cfg)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")   # drops, with reasons

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runtime.run(stop)

    console.print(f"node {cfg.name} on {cfg.listen}, seeds: {', '.join(cfg.seeds) or 'none'}", highlight=False)
    asyncio.run(main())


@app.command("status")
def status(config: ConfigOpt,
           fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """Members and their state, the threat field's top keys, dropped messages by reason, actions taken."""
    cfg = load_node_config(config)
    data = read_status(cfg)
    if data is None:
        raise ConfigError(f"{cfg.folder}: no status yet (is `healthswarm node run --config {config}` running?)")
    if fmt is not OutputFormat.table:
        emit([data], fmt, [])
        return
    age = time.time() - float(data["written"])
    console.print(f"[bold]{data['name']}[/] {data['addr']} · incarnation {data['incarnation']} · round "
                  f"{data['round']} · {data['items']} items · status {age:.0f} s old"
                  + (" [red](node not running?)[/]" if age > 10 * cfg.params.period else ""))
    emit(data["members"], OutputFormat.table, ["name", "addr", "state", "incarnation"], title="members",
         empty=f"members: none known yet; the seeds in {config} name the nodes this one joins, and they must be "
               "running")
    emit(data["threat_field"], OutputFormat.table, ["key", "level", "organisations"], title="threat field",
         empty=f"threat field: empty; nothing received from peers or published here yet "
               f"(`{program()} node publish --config {config} …` queues an item)")
    if data["dropped"]:
        drops = Table(title="dropped")
        drops.add_column("reason")
        drops.add_column("count", justify="right")
        for reason, count in sorted(data["dropped"].items()):
            drops.add_row(reason, str(count))
        console.print(drops)
    else:
        console.print("dropped: none")
    for line in data.get("actions", []):
        console.print(f"• {line}", highlight=False)
    for line in data.get("risk_raised", []):
        console.print(f"risk: {line}", markup=False, highlight=False)


@app.command("publish")
def publish(config: ConfigOpt,
            kind: Annotated[str, typer.Option(help=f"item kind: {', '.join(KINDS)}")] = "indicator",
            type_: Annotated[str, typer.Option("--type", help="indicator type (ipv4, domain, sha256, …)")] = "",
            value: Annotated[str, typer.Option(help="indicator value")] = "",
            technique: Annotated[list[str] | None, typer.Option(help="ATT&CK technique id (repeatable)")] = None,
            confidence: Annotated[int, typer.Option(min=0, max=100)] = 70) -> None:
    """Queue one item for the running node to sign and gossip (its outbox)."""
    cfg = load_node_config(config)
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    data: dict[str, object] = {"confidence": confidence}
    if kind in ("indicator", "sighting"):
        data |= {"type": type_, "value": value, "techniques": technique or []}
    elif kind == "technique":
        data["technique"] = (technique or [""])[0]
    else:
        data |= {"vendor": value}
    try:
        KINDS[kind](data)   # refuse now what the node would refuse later
    except Drop as exc:
        # the item's fields are this command's options (a risk item's vendor is --value)
        option = {"type": "--type", "value": "--value"}.get(exc.field)
        raise ConfigError(f"{option} {exc.detail}" if option else f"{kind}: {exc}") from None
    path = outbox.post(cfg.folder, kind, data)
    console.print(f"queued {path.name} for {cfg.name}", highlight=False)


app.command("federate")(federate)
