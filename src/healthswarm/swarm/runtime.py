"""A real node: the protocol core on the loopback TCP transport, wall-clock time, the workspace's keys,
trust store, reputation and store; it persists items, takes publish requests from its outbox, acts on
the threat field (retro-hunts, and raises the risk of the organisation's assets in the store when the
workspace has one), refutes peers' warnings its own data shows benign and publishes the refutations through
the egress gate (`refute.py`), obeys its deny list (`partition.py`), and writes `<workspace>/swarm/status.json`
every round for `healthswarm node status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from healthswarm.config import Settings
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.service import sensitive_values
from healthswarm.share.signing import load_or_create_keys
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory
from healthswarm.swarm import outbox
from healthswarm.swarm.act import Actor
from healthswarm.swarm.config import NodeConfig
from healthswarm.swarm.exposure import RiskRaiser
from healthswarm.swarm.exposure_store import store_raises
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import check_item
from healthswarm.swarm.keyring import Keyring
from healthswarm.swarm.node import Out, SwarmNode
from healthswarm.swarm.partition import DenyList
from healthswarm.swarm.persist import ItemLog
from healthswarm.swarm.refute import LocalEvidence, VouchedFor
from healthswarm.swarm.retro import retro_hunt, technique_hunt
from healthswarm.swarm.service import STATUS, candidates, node_gate, publish
from healthswarm.swarm.tcp import TcpTransport, TransportTls
from healthswarm.swarm.trust import WorkspaceTrust


def _store_of(workspace: Path) -> Store | None:
    db = workspace / "healthswarm.db"
    return Store.open(f"sqlite:///{db}") if db.exists() else None


class NodeRuntime:
    """`store`: the organisation's (the agent's, whatever its database); by default the workspace's SQLite file,
    when there is one."""

    def __init__(self, config: NodeConfig, store: Store | None = None) -> None:
        self.config = config
        config.folder.mkdir(parents=True, exist_ok=True)
        keys = load_or_create_keys(config.workspace)
        self.keyring = Keyring(config.trust_path, keys)
        now = time.time()
        self.node = SwarmNode(config.name, config.listen, keys.private, self.keyring, config.params,
                              WorkspaceTrust(config.workspace, config.params.trust_prior), random.Random(), start=now)
        self.log = ItemLog(config.folder)
        for raw in self.log.load():
            try:
                self.node._accept(check_item(raw, self.keyring, now, config.params.skew, config.params.max_ttl))
            except Drop:
                continue
        self.node.listeners.append(lambda item: self.log.append(item.raw))
        self.actor = Actor(self.node, folder=config.folder)
        store = store if store is not None else _store_of(config.workspace)
        # what the node publishes leaves through the organisation's egress gate (sanitise, leak check, sign)
        self.gate = node_gate(self.node, sensitive_values(store, config.name) if store else Sensitive(),
                              config.workspace)
        if store is not None:
            self._use_store(store)
        # the liars' defence: what our own data shows benign is refuted, and the refutation shared (gate permitting)
        self.evidence = LocalEvidence(self.gate.known, VouchedFor(config.folder))
        self.evidence.vouched.reload()
        self.node.refuter = self.evidence
        self.node.contradict = self._contradict
        self.deny = DenyList(config.folder)
        self.deny.reload()
        host, port = config.host_port
        # node traffic is TLS when the workspace's settings name certificates ([tls] / HEALTHSWARM_TLS_*)
        tls = TransportTls.from_settings(Settings.load(config.workspace).tls)
        self.transport = TcpTransport(host, port, self._on_frame, self.node.drops.count, config.params.max_message,
                                      tls=tls)

    def _use_store(self, store: Store) -> None:
        """Hunt in the workspace's own store; raise the risk of the assets of the organisation named like
        the node (the inventory's organisation id), keeping it with the assets."""
        name = self.config.name
        self.actor.hunter = lambda values: retro_hunt(store, values)
        self.actor.technique_hunter = lambda values: technique_hunt(store, values)
        with store.read() as conn:
            inventory = load_inventory(conn)
        if any(a.organisation == name for a in inventory.assets):
            self.actor.raiser = RiskRaiser(inventory, name)
            self.actor.sink = lambda wanted: store_raises(store, name, wanted)

    def _contradict(self, data: dict[str, Any]) -> None:
        """Publish a refutation as a benign item: what the egress gate refuses (our own assets) stays ours."""
        publish(self.node, self.gate, candidates([("benign", data)]), time.time())

    def _on_frame(self, frame: bytes) -> None:
        self._send(self.node.receive(frame, time.time()))

    def _send(self, out: Out) -> None:
        for addr, frame in out:
            if self.deny.allows(addr):
                self.transport.send(addr, frame)

    async def run(self, stop: asyncio.Event) -> None:
        await self.transport.start()
        self._send(self.node.join(self.config.seeds, time.time()))
        step = min(self.config.params.probe_timeout, self.config.params.period) / 4
        last_round = -1
        try:
            while not stop.is_set():
                now = time.time()
                wanted = candidates(outbox.take(self.config.folder))
                if wanted:
                    publish(self.node, self.gate, wanted, now)
                self._send(self.node.tick(now))
                if self.node.round != last_round:
                    last_round = self.node.round
                    if last_round % 10 == 0:
                        self.keyring.reload()
                    self.deny.reload()
                    self.evidence.vouched.reload()
                    self.actor.review(now)
                    self.write_status(now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), step)
            self._send(self.node.leave(time.time()))
            await asyncio.sleep(0.2)
        finally:
            await self.transport.stop()

    def status(self, now: float) -> dict[str, Any]:
        status = self.node.status(now)
        status["written"] = now
        status["period"] = self.config.params.period   # the API calls a status older than a few rounds stale
        status["pid"] = os.getpid()
        status["send_failures"] = self.transport.send_failures
        status["actions"] = [a.explanation for a in self.actor.actions.values()]
        status["risk_raised"] = [r.explanation for r in self.actor.raised]
        status["field_digest"] = self.node.field.digest()
        status["refuted"] = dict(self.evidence.counts)   # peers' warnings refuted, by the evidence
        status["disputed"] = sorted(self.node.disputed)
        status["denied"] = sorted(self.deny.denied)
        status["blocked"] = self.deny.blocked
        return status

    def write_status(self, now: float) -> None:
        tmp = self.config.folder / (STATUS + ".tmp")
        tmp.write_text(json.dumps(self.status(now), indent=2), encoding="utf-8")
        os.replace(tmp, self.config.folder / STATUS)


def read_status(config: NodeConfig) -> dict[str, Any] | None:
    path = config.folder / STATUS
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
