"""The swarm step of `healthswarm demo`: one node per organisation of the ecosystem, in this process.

St. Aurelia publishes the indicators of its own alerts (share/derive.py: public observables only,
internal addresses and names never leave); the others receive them by gossip, see their threat
levels rise, retro-hunt their own events and say why they act. Each node has its own workspace under
`<workspace>/swarm/<organisation>/` (keys, trust store with every member's key, items, watchlist).
With `sockets=True` the nodes talk over real TCP on 127.0.0.1 (free ports); otherwise over the
virtual-time network of `sim.py` (no sockets, deterministic).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from healthswarm.model import Inventory
from healthswarm.share.alerts_io import alert_from_dict
from healthswarm.share.derive import indicators_from_alerts
from healthswarm.share.known import known_from_store
from healthswarm.store import Store
from healthswarm.store.alerts import load_alerts
from healthswarm.swarm.act import Actor
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.retro import retro_hunt
from healthswarm.swarm.runtime import NodeRuntime
from healthswarm.swarm.sim import SimNetwork

SENDER = "st-aurelia"
FAST = {"period": 0.2, "probe_timeout": 0.08, "suspicion_timeout": 1.0}


def items_from_alerts(store: Store, sender: str) -> list[tuple[str, dict[str, Any]]]:
    """(kind, data) to publish: the sender's alerts' observables, and the ATT&CK techniques they show."""
    with store.read() as conn:
        known = known_from_store(conn, sender)
        alerts = [alert_from_dict(d) for d in load_alerts(conn)]
    out: list[tuple[str, dict[str, Any]]] = []
    techniques = sorted({t.id for a in alerts for t in a.techniques})
    for ind in indicators_from_alerts(alerts, known):
        if ind.type == "attack-technique":
            techniques.append(ind.value)
        else:
            out.append(("indicator", {"type": ind.type, "value": ind.value, "confidence": ind.confidence,
                                      "techniques": list(ind.techniques)}))
    out += [("technique", {"technique": t, "confidence": 60}) for t in dict.fromkeys(techniques)]
    return out


def _hunter(store: Store, org: str) -> Callable[[list[str]], Any]:
    return lambda values: retro_hunt(store, values, organisation=org)


def _over_sockets(base: Path, orgs: list[str], publish: list[tuple[str, dict[str, Any]]],
                  store: Store) -> tuple[dict[str, SwarmNode], dict[str, Actor], float, dict[str, int]]:
    configs = make_consortium(base, orgs, free_ports(len(orgs)), seeds=1, params=FAST)
    runtimes = [NodeRuntime(load_node_config(c)) for c in configs]
    for rt in runtimes:
        rt.actor.hunter = _hunter(store, rt.config.name)

    alive: dict[str, int] = {}

    async def scenario() -> float:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(rt.run(stop)) for rt in runtimes]
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(len(rt.node.members.live()) < len(orgs) - 1 for rt in runtimes):
                await asyncio.sleep(0.05)
            started = time.monotonic()
            sender = runtimes[orgs.index(SENDER)].node
            ids = {sender.publish(kind, data, time.time()).id for kind, data in publish}
            while time.monotonic() < started + 10 and any(not ids <= set(rt.node.items) for rt in runtimes):
                await asyncio.sleep(0.05)
            spread = time.monotonic() - started
            await asyncio.sleep(3 * FAST["period"])   # one more review by every node
            alive.update({rt.config.name: len(rt.node.members.live()) for rt in runtimes})
            return spread
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    spread = asyncio.run(scenario())
    return ({rt.config.name: rt.node for rt in runtimes}, {rt.config.name: rt.actor for rt in runtimes}, spread,
            alive)


def _in_memory(base: Path, orgs: list[str], publish: list[tuple[str, dict[str, Any]]],
               store: Store) -> tuple[dict[str, SwarmNode], dict[str, Actor], float, dict[str, int]]:
    net = SimNetwork(seed=1, now=time.time())
    nodes = {org: net.add(org, Params(**FAST)) for org in orgs}
    actors = {org: Actor(node, _hunter(store, org), base / org / "swarm") for org, node in nodes.items()}
    for org, node in nodes.items():
        net.send(node.join([orgs[0]], net.now), org)
    net.run(10, dt=0.05, until=lambda: all(len(n.members.live()) == len(orgs) - 1 for n in nodes.values()))
    ids = {nodes[SENDER].publish(kind, data, net.now).id for kind, data in publish}
    spread = net.run(10, dt=0.05, until=lambda: all(ids <= set(n.items) for n in nodes.values()))
    for actor in actors.values():
        actor.review(net.now)
    return nodes, actors, spread, {org: len(n.members.live()) for org, n in nodes.items()}


def demo_step(store: Store, workspace: Path, inventory: Inventory,
              sockets: bool = True) -> tuple[dict[str, Any], list[RenderableType]]:
    orgs = [o.id for o in inventory.organisations]
    if SENDER not in orgs:
        raise ValueError(f"the ecosystem has no organisation {SENDER!r}")
    publish = items_from_alerts(store, SENDER)
    base = workspace / "swarm"
    if base.is_dir():
        shutil.rmtree(base)   # the demo's own folder: each run starts from fresh nodes, as the store does
    run = _over_sockets if sockets else _in_memory
    nodes, actors, spread, alive = run(base, orgs, publish, store)
    keys = [f"indicator:{d['type']}:{d['value']}" for kind, d in publish if kind == "indicator"]
    now = time.time()
    table = Table(title=f"The swarm: {SENDER}'s warning reaches {len(orgs) - 1} organisations "
                        f"({'TCP on 127.0.0.1' if sockets else 'in-memory network'}) in {spread:.2f} s")
    table.add_column("organisation")
    table.add_column("members alive", justify="right")
    table.add_column("items", justify="right")
    table.add_column("threat level (top indicator)")
    table.add_column("top technique")
    table.add_column("action")
    summary: dict[str, Any] = {"sender": SENDER, "published": len(publish), "spread_seconds": round(spread, 2),
                               "transport": "tcp" if sockets else "memory", "organisations": {}}
    for org in orgs:
        node = nodes[org]
        levels = sorted(((round(node.level(k, now), 2), k) for k in keys), reverse=True)
        top = levels[0] if levels else (0.0, "-")
        acts = [a for a in actors[org].actions.values() if a.key in keys]
        line = acts[0].explanation if acts and org != SENDER else ("published" if org == SENDER else "-")
        tech = node.field.top(now, node.weight, 1, [k for k in node.field.state if k.startswith("technique:")])
        table.add_row(org, str(alive[org]), str(len(node.items)), f"{top[0]:.2f} {top[1]}",
                      f"{tech[0][1]:.2f} {tech[0][0]}" if tech else "-", line)
        summary["organisations"][org] = {
            "members_alive": alive[org], "items": len(node.items),
            "levels": {k: v for v, k in levels}, "actions": [a.explanation for a in acts],
            "dropped": dict(node.drops.reasons),
        }
    return summary, [table]
