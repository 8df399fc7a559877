"""Attack paths over what really happens: observed flows as edges of the attack graph, marked observed.

Discovery (`inventory.discover`) reports the flows seen between inventory assets. Those not declared
are added to the inventory the graph is built from, so every rule that reads flows (reachability,
credential reuse over RDP/SMB, relays) uses them; afterwards every technique resting on an observed
flow carries `evidence["observed"]` ("undeclared" or "declared") and an "(observed)" note in its
description, so a path that uses one says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from healthswarm.model import Finding, Flow, Inventory
from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph


def _tag(flow: Flow) -> str:
    return f"flow:{flow.source}>{flow.target}:{flow.protocol}"


def with_observed_flows(inventory: Inventory,
                        observed: Iterable[tuple[Flow, bool]]) -> tuple[Inventory, dict[str, str]]:
    """The inventory plus the undeclared observed flows between its assets; flow tag → "declared"/"undeclared"."""
    assets = {a.id for a in inventory.assets}
    declared = set(inventory.flows)
    added: list[Flow] = []
    tags: dict[str, str] = {}
    for flow, was_declared in observed:
        if flow.source not in assets or flow.target not in assets:
            continue
        if not was_declared and flow not in declared:
            added.append(flow)
            declared.add(flow)
            tags[_tag(flow)] = "undeclared"
        else:
            tags.setdefault(_tag(flow), "declared")
    return replace(inventory, flows=inventory.flows + tuple(added)), tags


def observed_attack_graph(inventory: Inventory, findings: Iterable[Finding],
                          observed: Iterable[tuple[Flow, bool]], **options: object) -> AttackGraph:
    """`build_attack_graph` over the declared and the observed flows, techniques on observed flows marked."""
    extended, tags = with_observed_flows(inventory, observed)
    graph = build_attack_graph(extended, findings, **options)  # type: ignore[arg-type]
    for move, techniques in graph.moves.items():
        for i, t in enumerate(techniques):
            hit = next((tags[tag] for tag in t.tags if tag in tags), None)
            if hit is not None:
                note = "observed, undeclared" if hit == "undeclared" else "observed"
                techniques[i] = replace(t, description=f"{t.description} ({note})",
                                        evidence={**t.evidence, "observed": hit})
        graph.moves[move] = techniques
    return graph
