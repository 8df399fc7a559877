"""The swarm step of `healthswarm demo`: one node per organisation of the ecosystem, in this process.

The attack starts at St. Aurelia. Its node publishes what its own alerts show (`derive.py`: public
observables, ATT&CK techniques, the models of devices its incidents involve; internal addresses and
names never leave); the others receive it by gossip, see their threat levels rise, retro-hunt their
own data and say why they act: Northfield finds the C2 address in its own network log a day earlier,
the PACS provider finds the C-FIND sweep and the C-MOVEs on its PACS among the alerts (the techniques
St. Aurelia reported). With `corroborate=True` a second wave follows: every organisation that found
a warning in its own data reports it itself, the levels cross the threshold (priority high), and the
nodes raise the risk of their own assets (`exposure.py`) — e.g. both hospitals' dependency on the
PACS provider, which now reports the attack too — stored with the assets in the demo's store.
Each node has its own workspace under `<workspace>/swarm/<organisation>/` (keys, trust store with
every member's key, items, watchlist). With `sockets=True` the nodes talk over real TCP on 127.0.0.1
(free ports); otherwise over the virtual-time network of `sim.py` (no sockets, deterministic).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from healthswarm.model import Inventory
from healthswarm.share.egress import Candidate, EgressGate
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.service import sensitive_values
from healthswarm.store import Store
from healthswarm.swarm.act import Actor, corroborations
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.derive import items_from_store
from healthswarm.swarm.exposure import RiskRaiser
from healthswarm.swarm.exposure_store import store_raises
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.retro import retro_hunt, technique_hunt
from healthswarm.swarm.runtime import NodeRuntime
from healthswarm.swarm.service import candidates, node_gate, publish
from healthswarm.swarm.sim import SimNetwork

SENDER = "st-aurelia"
FAST = {"period": 0.2, "probe_timeout": 0.08, "suspicion_timeout": 1.0}


Result = tuple[dict[str, SwarmNode], dict[str, Actor], float, dict[str, int], int, int]


def _equip(actor: Actor, store: Store, inventory: Inventory, org: str) -> None:
    """Hunt in the organisation's own part of the shared store; raise its assets' risk there."""
    actor.hunter = lambda values: retro_hunt(store, values, organisation=org)
    actor.technique_hunter = lambda values: technique_hunt(store, values, organisation=org)
    actor.raiser = RiskRaiser(inventory, org)
    actor.sink = lambda wanted: store_raises(store, org, wanted)


def _second_wave(actors: dict[str, Actor]) -> dict[str, list[Candidate]]:
    return {org: candidates(corroborations(list(actor.actions.values()))) for org, actor in actors.items()}


def _gossip(nodes: dict[str, SwarmNode], gates: dict[str, EgressGate], wave: dict[str, list[Candidate]],
            now: float) -> set[str]:
    """Every organisation's items of the wave, published through its own egress gate; their ids."""
    return {item.id for org, wanted in wave.items() for item in publish(nodes[org], gates[org], wanted, now)[0]}


def _over_sockets(base: Path, orgs: list[str], wanted: list[Candidate], store: Store, inventory: Inventory,
                  corroborate: bool, known: dict[str, Sensitive]) -> Result:
    configs = make_consortium(base, orgs, free_ports(len(orgs)), seeds=1, params=FAST)
    runtimes = [NodeRuntime(load_node_config(c)) for c in configs]
    for rt in runtimes:
        _equip(rt.actor, store, inventory, rt.config.name)
    nodes = {rt.config.name: rt.node for rt in runtimes}
    gates = {rt.config.name: node_gate(rt.node, known[rt.config.name], rt.config.workspace) for rt in runtimes}
    published = 0

    alive: dict[str, int] = {}
    second = 0

    async def spread(ids: set[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(not ids <= set(rt.node.items) for rt in runtimes):
            await asyncio.sleep(0.05)
        await asyncio.sleep(3 * FAST["period"])
        for rt in runtimes:   # every node reviews what arrived, however slow its rounds on a busy machine
            rt.actor.review(time.time())

    async def converged() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(rt.node.members.live()) < len(orgs) - 1 for rt in runtimes):
            await asyncio.sleep(0.05)

    async def scenario() -> float:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(rt.run(stop)) for rt in runtimes]
        try:
            await converged()
            started = time.monotonic()
            nonlocal published, second
            ids = _gossip(nodes, gates, {SENDER: wanted}, time.time())
            published = len(ids)
            await spread(ids)
            took = time.monotonic() - started - 3 * FAST["period"]
            if corroborate:
                ids = _gossip(nodes, gates, _second_wave({rt.config.name: rt.actor for rt in runtimes}), time.time())
                second = len(ids)
                await spread(ids)
            # a node a loaded machine kept from its rounds for a moment is suspected, then heard again: the
            # membership the table shows is the one the swarm settles on, not a passing suspicion
            await converged()
            alive.update({rt.config.name: len(rt.node.members.live()) for rt in runtimes})
            return took
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    took = asyncio.run(scenario())
    return nodes, {rt.config.name: rt.actor for rt in runtimes}, took, alive, published, second


def _in_memory(base: Path, orgs: list[str], wanted: list[Candidate], store: Store, inventory: Inventory,
               corroborate: bool, known: dict[str, Sensitive]) -> Result:
    net = SimNetwork(seed=1, now=time.time())
    nodes = {org: net.add(org, Params(**FAST)) for org in orgs}
    gates = {org: node_gate(node, known[org], base / org) for org, node in nodes.items()}
    actors = {org: Actor(node, folder=base / org / "swarm") for org, node in nodes.items()}
    for org, actor in actors.items():
        _equip(actor, store, inventory, org)
    for org, node in nodes.items():
        net.send(node.join([orgs[0]], net.now), org)
    net.run(10, dt=0.05, until=lambda: all(len(n.members.live()) == len(orgs) - 1 for n in nodes.values()))
    ids = _gossip(nodes, gates, {SENDER: wanted}, net.now)
    published = len(ids)
    spread = net.run(10, dt=0.05, until=lambda: all(ids <= set(n.items) for n in nodes.values()))
    for actor in actors.values():
        actor.review(net.now)
    second = 0
    if corroborate:
        ids = _gossip(nodes, gates, _second_wave(actors), net.now)
        second = len(ids)
        net.run(10, dt=0.05, until=lambda: all(ids <= set(n.items) for n in nodes.values()))
        for actor in actors.values():
            actor.review(net.now)
    return nodes, actors, spread, {org: len(n.members.live()) for org, n in nodes.items()}, published, second


def _first_traces(actor: Actor) -> list[str]:
    """What the organisation found in its own data, earliest first: `key first seen … in …`."""
    found = sorted((a.first_seen_here, a.key, a.where) for a in actor.actions.values()
                   if a.first_seen_here is not None and a.reporters)
    return [f"{key} first seen here {seen[:16].replace('T', ' ')} in {where}" for seen, key, where in found]


def demo_step(store: Store, workspace: Path, inventory: Inventory, sockets: bool = True,
              corroborate: bool = False) -> tuple[dict[str, Any], list[RenderableType]]:
    orgs = [o.id for o in inventory.organisations]
    if SENDER not in orgs:
        raise ValueError(f"the ecosystem has no organisation {SENDER!r}")
    known = {org: sensitive_values(store, org) for org in orgs}
    wanted = candidates(items_from_store(store, SENDER, known[SENDER]))
    base = workspace / "swarm"
    if base.is_dir():
        shutil.rmtree(base)   # the demo's own folder: each run starts from fresh nodes, as the store does
    run = _over_sockets if sockets else _in_memory
    nodes, actors, spread, alive, published, second = run(base, orgs, wanted, store, inventory, corroborate, known)
    mine = [i for i in nodes[SENDER].items.values() if i.org == SENDER and i.raw["kind"] == "indicator"]
    keys = [f"indicator:{i.data['type']}:{i.data['value']}" for i in mine]
    now = time.time()
    title = (f"The swarm: {SENDER}'s warning reaches {len(orgs) - 1} organisations "
             f"({'TCP on 127.0.0.1' if sockets else 'in-memory network'}) in {spread:.2f} s")
    if corroborate:
        title += f"; {second} confirmations from their own data follow"
    table = Table(title=title)
    for column in ("organisation", "members alive", "items", "threat level (top indicator)", "top technique",
                   "action", "first traces in own data", "risk raised"):
        table.add_column(column, justify="right" if column in ("members alive", "items") else "left")
    summary: dict[str, Any] = {"sender": SENDER, "published": published, "corroborated": second,
                               "spread_seconds": round(spread, 2), "transport": "tcp" if sockets else "memory",
                               "organisations": {}}
    for org in orgs:
        node, actor = nodes[org], actors[org]
        levels = sorted(((round(node.level(k, now), 2), k) for k in keys), reverse=True)
        top = levels[0] if levels else (0.0, "-")
        acts = [a for a in actor.actions.values() if a.key in keys]
        line = acts[0].explanation if acts and org != SENDER else ("published" if org == SENDER else "-")
        tech = node.field.top(now, node.weight, 1, [k for k in node.field.state if k.startswith("technique:")])
        traces = _first_traces(actor)
        raised = [r.explanation for r in actor.raised]
        table.add_row(org, str(alive[org]), str(len(node.items)), f"{top[0]:.2f} {top[1]}",
                      f"{tech[0][1]:.2f} {tech[0][0]}" if tech else "-", line,
                      "\n".join(traces[:3]) + (f"\n(+{len(traces) - 3} more)" if len(traces) > 3 else "") or "-",
                      "\n".join(raised) or "-")
        summary["organisations"][org] = {
            "members_alive": alive[org], "items": len(node.items),
            "levels": {k: v for v, k in levels}, "actions": [a.explanation for a in acts],
            "first_traces": traces, "risk_raised": raised, "dropped": dict(node.drops.reasons),
        }
    return summary, [table]
