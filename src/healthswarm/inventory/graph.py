"""The asset / flow / dependency graph of an inventory, as networkx and in GraphML or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from healthswarm.model import Inventory


def to_graph(inventory: Inventory) -> nx.MultiDiGraph:
    """Nodes are assets (with their organisation, zone and criticality); edges are flows and
    dependencies, each with a `relation` attribute saying which."""
    graph = nx.MultiDiGraph(name="healthswarm inventory")
    zones = {z.id: z for z in inventory.zones}
    for a in inventory.assets:
        graph.add_node(
            a.id, name=a.name, kind=a.kind, organisation=a.organisation, zone=a.zone,
            exposure=zones[a.zone].exposure if a.zone in zones else "", vendor=a.vendor, product=a.product,
            version=a.version, addresses=" ".join(a.addresses), medical_device=a.is_medical_device,
            safety=str(a.criticality.safety), confidentiality=str(a.criticality.confidentiality),
            availability=str(a.criticality.availability), records=a.records if a.records is not None else -1,
        )
    for f in inventory.flows:
        graph.add_edge(f.source, f.target, relation="flow", protocol=f.protocol,
                       port=f.port if f.port is not None else -1)
    for d in inventory.dependencies:
        graph.add_edge(d.source, d.target, relation="dependency", kind=d.kind)
    return graph


def write_graph(graph: nx.MultiDiGraph, path: Path, fmt: str) -> None:
    if fmt == "graphml":
        nx.write_graphml(graph, path)
    elif fmt == "json":
        path.write_text(json.dumps(nx.node_link_data(graph, edges="edges"), indent=1), encoding="utf-8")
    else:
        raise ValueError(f"unknown graph format {fmt!r} (expected graphml or json)")
