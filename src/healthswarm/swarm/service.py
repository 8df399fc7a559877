"""The swarm's use cases: what a node publishes, always through the egress gate, and what the nodes last said.

`publish_from_store` is what the agent, the demo and `node publish` call; `publish` takes candidate
items from anywhere (a responder's indicator, a corroboration) and gossips only what the gate released.
`node_views` is what the API's swarm view shows: each node's last status file, and whether it is stale.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from healthswarm.errors import HealthswarmError
from healthswarm.share.egress import AUDIT, Candidate, EgressAudit, EgressGate, Preview
from healthswarm.share.secrets import Pseudonymiser, load_or_create_secret
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.service import sensitive_values
from healthswarm.share.signing import KeyPair
from healthswarm.store import Store
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.derive import items_from_store
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import KINDS, Item, marks_of
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.persist import ITEMS


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


# -- what the nodes of a workspace last said (the API's swarm view) --------------------------------------
# A running node rewrites `<node workspace>/swarm/status.json` every round (runtime.py); reading those files needs
# no port of the nodes' and shows the last known state of a node that has stopped. Two layouts are read: the
# workspace's own node (`<workspace>/swarm/status.json`) and the demo's consortium, one node workspace per
# organisation (`<workspace>/swarm/<org>/swarm/status.json`, configured by `<workspace>/swarm/<org>.toml`).
SWARM = "swarm"
STATUS = "status.json"
# reporter names come from the node's item log; past this size a dashboard poll would read too much, so the
# names are left out (the count of reporting organisations is still in the status)
MAX_ITEM_LOG = 16 * 1024 * 1024
# a status older than this many rounds is stale (the node stopped or hangs); never under STALE_FLOOR seconds, so
# a fast demo node (0.2 s rounds) on a busy machine does not flicker between fresh and stale
STALE_ROUNDS = 5
STALE_FLOOR = 5.0


class Member(BaseModel):
    name: str
    addr: str = ""
    state: str = Field(description="alive, suspect, dead or left, as this node sees the member")
    incarnation: int = 0


class FieldKey(BaseModel):
    key: str = Field(description="indicator:<type>:<value>, technique:<id>, vendor:<name> or model:<name>")
    level: float = Field(description="trust × strength × decay, summed over reporting organisations")
    organisations: int = Field(description="how many organisations reported the key")
    reporters: list[str] | None = Field(None, description="their names, from the node's item log; null when unread")


class StatusFile(BaseModel):
    """The part of `status.json` the view shows; a file that does not fit this is reported as corrupt."""

    name: str | None = None
    addr: str | None = None
    round: int | None = None
    items: int | None = None
    written: float | None = None
    period: float | None = None
    members: list[Member] = []
    threat_field: list[FieldKey] = []
    actions: list[str] = []
    dropped: dict[str, int] = {}
    risk_raised: list[str] = []
    field_digest: str | None = None


@dataclass
class NodeView:
    """One node's last status and how old it is; `error` says why the status is missing (no file, unreadable,
    corrupt). Stale: older than `stale_after`, so what it says is the node's last word, not the present."""

    name: str
    folder: str   # relative to the workspace
    period: float
    stale_after: float
    threshold: float
    error: str | None = None
    written: str | None = None
    file_modified: str | None = None
    age_seconds: float | None = None
    stale: bool = False
    status: StatusFile | None = None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def node_folders(workspace: Path) -> list[tuple[str, Path, Path | None]]:
    """(name, node folder, node.toml or None) of the workspace's own node and of the demo's nodes."""
    base = workspace / SWARM
    found: list[tuple[str, Path, Path | None]] = []
    if (base / STATUS).is_file():
        found.append((workspace.resolve().name, base, None))
    if base.is_dir():
        # a demo node workspace is recognised by its own node folder; the local node's outbox/ has none
        for sub in sorted(p for p in base.iterdir() if p.is_dir() and (p / SWARM).is_dir()):
            config = base / f"{sub.name}.toml"
            found.append((sub.name, sub / SWARM, config if config.is_file() else None))
    return found


def _params(config: Path | None) -> Params:
    if config is not None:
        try:
            return load_node_config(config).params
        except HealthswarmError:
            pass   # a broken node.toml must not hide the status; the default is what such a node would use
    return Params()


def stale_after(period: float) -> float:
    return max(STALE_ROUNDS * period, STALE_FLOOR)


def _reporters(folder: Path, keys: set[str], now: float) -> dict[str, list[str]] | None:
    """Field key → the organisations whose unexpired items in the node's log mark it (verified when accepted)."""
    log = folder / ITEMS
    try:
        if log.stat().st_size > MAX_ITEM_LOG:
            return None
        lines = log.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    names: dict[str, set[str]] = {k: set() for k in keys}
    for line in lines:
        try:
            raw = json.loads(line)
            if raw["created"] / 1000 + raw["ttl"] < now:
                continue
            marks = KINDS[raw["kind"]](raw["data"])
            org = str(raw["org"])
        except (ValueError, KeyError, TypeError, AttributeError, Drop):
            continue   # a line cut short by a crash, as persist.ItemLog skips it too
        for mark in marks:
            if mark.key in names:
                names[mark.key].add(org)
    return {k: sorted(v) for k, v in names.items()}


def read_node(workspace: Path, name: str, folder: Path, config: Path | None, now: float) -> NodeView:
    """One node's status as of `now` (epoch seconds), or the node with an `error` saying why there is none."""
    where = str(folder.relative_to(workspace))
    params = _params(config)
    node = NodeView(name=name, folder=where, threshold=params.threshold, period=params.period,
                    stale_after=stale_after(params.period))
    path = folder / STATUS
    try:
        text = path.read_text(encoding="utf-8")
        mtime = path.stat().st_mtime
        node.file_modified = _iso(mtime)
    except FileNotFoundError:
        node.error = f"no {STATUS} in {where}: the node has not completed a round here"
        return node
    except (OSError, UnicodeDecodeError) as exc:
        node.error = f"{where}/{STATUS} cannot be read: {exc}"
        return node
    try:
        status = StatusFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        node.error = f"{where}/{STATUS} is corrupt: {loc + ': ' if loc else ''}{first['msg']}"
        return node
    reporters = _reporters(folder, {k.key for k in status.threat_field}, now)
    for key in status.threat_field:
        key.reporters = None if reporters is None else reporters.get(key.key, [])
    node.name = status.name or name
    written = status.written if status.written is not None else mtime
    node.written = _iso(written)
    if status.period:   # the runtime writes its round; a node.toml beside it may be older than the running node
        node.period, node.stale_after = status.period, stale_after(status.period)
    node.age_seconds = round(max(now - written, 0.0), 1)
    node.stale = node.age_seconds > node.stale_after
    node.status = status
    return node


def node_views(workspace: Path, now: float) -> list[NodeView]:
    """The last status of each node of the workspace (its own, the demo's), judged at `now`."""
    return [read_node(workspace, name, folder, config, now) for name, folder, config in node_folders(workspace)]
