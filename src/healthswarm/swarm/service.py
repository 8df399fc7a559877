"""The swarm's use cases: what a node publishes, always through the egress gate.

`publish_from_store` is what the agent, the demo and `node publish` call; `publish` takes candidate
items from anywhere (a responder's indicator, a corroboration) and gossips only what the gate released.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from healthswarm.share.egress import AUDIT, Candidate, EgressAudit, EgressGate, Preview
from healthswarm.share.secrets import Pseudonymiser, load_or_create_secret
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.service import sensitive_values
from healthswarm.share.signing import KeyPair
from healthswarm.store import Store
from healthswarm.swarm.derive import items_from_store
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import Item, marks_of
from healthswarm.swarm.node import SwarmNode


def node_gate(node: SwarmNode, known: Sensitive, workspace: Path | None = None) -> EgressGate:
    """The gate of the organisation a node speaks for, signing with the node's key.

    With a workspace, its pseudonym secret and audit file; without one (a simulated node), a fresh
    secret and an audit in memory."""
    if workspace is None:
        return EgressGate(node.name, known, KeyPair(node.private), Pseudonymiser(secrets.token_bytes(32)),
                          EgressAudit(None))
    return EgressGate(node.name, known, KeyPair(node.private), Pseudonymiser(load_or_create_secret(workspace)),
                      EgressAudit(workspace / AUDIT))


def candidates(items: Iterable[tuple[str, dict[str, Any]]], tlp: str = "amber") -> list[Candidate]:
    return [Candidate(kind, dict(data), tlp) for kind, data in items]


def publish(node: SwarmNode, gate: EgressGate, wanted: Iterable[Candidate],
            now: float | None = None) -> tuple[list[Item], Counter[str]]:
    """Gossip what the gate releases of `wanted`; the items published and why the rest was refused."""
    moment = time.time() if now is None else now
    refused: Counter[str] = Counter()
    valid = []
    for candidate in wanted:   # what the node would refuse to gossip is not worth a signature
        try:
            marks_of(candidate.kind, candidate.data)
        except Drop as drop:
            refused[drop.reason] += 1
            continue
        valid.append(candidate)
    released, gate_refused = gate.gossip(valid, node=node.name, ttl=node.params.default_ttl, now=moment)
    return [node.publish(r) for r in released], refused + gate_refused


def publish_from_store(store: Store, node: SwarmNode, workspace: Path | None, organisation: str,
                       now: float | None = None, incidents: Collection[str] | None = None) -> list[str]:
    """Publish what the organisation's own store shows (`derive.py`) through the gate; the item ids. With
    `incidents`, only what those incidents show (the agent publishes the incidents its policy made due).

    Items released before and not yet expired are not signed again (the gate's audit remembers them)."""
    known = sensitive_values(store, organisation)
    gate = node_gate(node, known, workspace)
    items, _refused = publish(node, gate, candidates(items_from_store(store, organisation, known, incidents)), now)
    return [item.id for item in items]


def preview_gossip(store: Store, workspace: Path, organisation: str) -> Preview:
    """What our node would gossip now of what the store shows (unsigned, unrecorded)."""
    known = sensitive_values(store, organisation)
    gate = EgressGate.in_workspace(workspace, organisation, known)
    return gate.preview_gossip(candidates(items_from_store(store, organisation, known)))
