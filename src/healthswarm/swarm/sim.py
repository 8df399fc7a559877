"""A virtual-time network for the protocol core: deterministic (seeded) latency, partitions and crashes.

Nothing here knows the protocol: it moves bytes between `SwarmNode`s by address and calls `tick`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from healthswarm.share.egress import EgressGate
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import key_id
from healthswarm.swarm.items import Item
from healthswarm.swarm.node import Out, SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.trust import MemoryTrust


@dataclass
class SimNetwork:
    seed: int = 0
    latency: tuple[float, float] = (0.005, 0.05)
    loss: float = 0.0
    now: float = 1_800_000_000.0   # virtual epoch seconds (2027-01-15)
    nodes: dict[str, SwarmNode] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=dict)   # address → partition side; absent = side 0
    delivered: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._n = 0
        self.public: dict[str, Ed25519PublicKey] = {}
        self.gates: dict[str, EgressGate] = {}

    def lookup(self, kid: str) -> Ed25519PublicKey | None:
        return self.public.get(kid)

    def add(self, name: str, params: Params | None = None, trusted: bool = True,
            private: Ed25519PrivateKey | None = None) -> SwarmNode:
        """A node with a key derived from the seed (deterministic), trusted by everyone unless `trusted=False`."""
        private = private or Ed25519PrivateKey.from_private_bytes(
            random.Random(f"{self.seed}:{name}").randbytes(32))
        if trusted:
            self.public[key_id(private.public_key().public_bytes_raw())] = private.public_key()
        p = params or Params()
        node = SwarmNode(name, name, private, self.lookup, p, MemoryTrust(p.trust_prior),
                         random.Random(f"{self.seed}/{name}"), start=self.now)
        node.next_round = self.now + self.rng.uniform(0, p.period)
        node.contradict = lambda data: self.publish(name, "benign", data)   # gossiped with its next round
        self.nodes[name] = node
        return node

    def publish(self, name: str, kind: str, data: dict[str, Any]) -> Item:
        """Node `name` gossips one item, through an egress gate of its own (nothing sensitive is known to a
        simulated organisation, but the shapes — internal addresses, patient ids — are still refused)."""
        from healthswarm.swarm.service import Candidate, node_gate, publish

        node = self.nodes[name]
        if name not in self.gates:
            self.gates[name] = node_gate(node, Sensitive())
        items, refused = publish(node, self.gates[name], [Candidate(kind, data)], self.now)
        if not items:
            raise ValueError(f"{name}: the egress gate refused the {kind} item ({dict(refused)})")
        return items[0]

    def send(self, out: Out, src: str) -> None:
        for dst, raw in out:
            if self.rng.random() < self.loss:
                continue
            self._n += 1
            heapq.heappush(self._queue, (self.now + self.rng.uniform(*self.latency), self._n, dst,
                                         src.encode() + b"\0" + raw))

    def _reachable(self, src: str, dst: str) -> bool:
        return dst in self.nodes and dst not in self.down and self.groups.get(src, 0) == self.groups.get(dst, 0)

    def step(self, dt: float) -> None:
        end = self.now + dt
        while self._queue and self._queue[0][0] <= end:
            at, _, dst, packet = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            src, raw = packet.split(b"\0", 1)
            if self._reachable(src.decode(), dst):
                self.delivered += 1
                self.send(self.nodes[dst].receive(raw, self.now), dst)
        self.now = end
        for name in sorted(self.nodes):
            if name not in self.down:
                self.send(self.nodes[name].tick(self.now), name)

    def run(self, seconds: float, dt: float = 0.1, until: Callable[[], bool] | None = None) -> float:
        """Advance virtual time by at most `seconds`; stop early when `until()` holds. Returns the time spent."""
        start = self.now
        steps = round(seconds / dt)
        for _ in range(steps):
            self.step(dt)
            if until is not None and until():
                break
        return self.now - start

    def full_mesh(self) -> None:
        """Every node knows every other as alive (the state after a completed join), without the join traffic."""
        for node in self.nodes.values():
            for other in self.nodes.values():
                if other is not node:
                    node.members.apply({**other.members.me.update()}, self.now)
            node.members._rumours.clear()
