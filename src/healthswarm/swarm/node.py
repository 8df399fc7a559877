"""The protocol core of one node: bytes in, (address, bytes) out, time passed in — no sockets, no clock.

Each round (`Params.period`) a node probes one member (SWIM: ping, then ping-req through k others,
then suspicion, then death unless refuted), and gossips with `fanout` members: a push of its hot items
(new ones, for a few rounds) and a digest of the ids it holds; the partner answers with the items the
digest lacks and asks for those it lacks (push-pull anti-entropy), which is how late joiners and
healed partitions catch up. Items sent per round are bounded in count and bytes. Handlers are looked up
by message kind in a table.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from healthswarm.share.egress import Released
from healthswarm.share.reputation import Reputation
from healthswarm.share.signing import key_id as key_id_of
from healthswarm.swarm.envelope import KeyLookup, Message, Sender, open_message, seal
from healthswarm.swarm.field import ThreatField
from healthswarm.swarm.guard import Drop, DropCounter, RateLimiter, ReplayWindow
from healthswarm.swarm.items import BENIGN, Item, check_item
from healthswarm.swarm.membership import ALIVE, DEAD, LEFT, SUSPECT, Member, Membership
from healthswarm.swarm.params import Params
from healthswarm.swarm.trust import MemoryTrust, Trust, weight_of

Out = list[tuple[str, bytes]]
MAX_INCARNATION = 2**48   # far above any start time; keeps incarnations exact in canonical JSON


@dataclass
class Probe:
    target: str
    started: float
    indirect: bool = False
    relay: tuple[str, int] | None = None   # (address, seq) of the member we probe for


@dataclass
class Stats:
    sent: int = 0
    received: int = 0
    items_sent: int = 0
    bytes_sent: int = 0


@dataclass
class SwarmNode:
    name: str
    addr: str
    private: Ed25519PrivateKey
    keys: KeyLookup
    params: Params = field(default_factory=Params)
    trust: Trust = field(default_factory=MemoryTrust)
    rng: random.Random = field(default_factory=random.Random)
    start: float = 0.0
    #: returns True when our own data proves the item false (the origin is then trusted less)
    refuter: Callable[[Item], bool] | None = None
    #: publishes, through the egress gate, a "benign" item with this data ({"type", "value"}): what our
    #: refutation tells the swarm (without it, a refutation stays our own)
    contradict: Callable[[dict[str, Any]], None] | None = None
    listeners: list[Callable[[Item], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key_id = key_id_of(self.private.public_key().public_bytes_raw())
        self.members = Membership(Member(self.name, self.key_id, self.addr, ALIVE, int(self.start)))
        self.items: dict[str, Item] = {}
        self.hot: dict[str, int] = {}
        self.refuted: set[str] = set()
        self.disputed: set[str] = set()                 # field keys the swarm's benign evidence outweighs
        self._blamed: set[tuple[str, str]] = set()      # (key, claimant key id) already counted against
        self._contradicted: set[str] = set()            # keys we published benign evidence for
        self._fresh = weight_of(Reputation(""), self.params.trust_prior)   # an unknown peer's weight
        self.field = ThreatField(self.params.half_life)
        self.drops = DropCounter()
        self.stats = Stats()
        self.replay = ReplayWindow(self.params.skew)
        self.limiter = RateLimiter(self.params.rate, self.params.burst)
        self.probes: dict[int, Probe] = {}
        self.seq = 0
        self.round = 0
        self.next_round = self.start
        self._probe_order: list[str] = []
        self._budget = (0, 0)
        self.seeds: list[str] = []
        self.handlers: dict[str, Callable[[Message, float], Out]] = {
            "ping": self._on_ping, "ack": self._on_ack, "ping-req": self._on_ping_req, "push": self._on_push,
            "pull": self._on_pull, "deliver": self._on_deliver, "sync": self._on_sync, "sync-reply": self._on_sync,
        }

    # -- sending ----------------------------------------------------------------------------------
    def _send(self, addr: str, kind: str, body: dict[str, Any], now: float) -> tuple[str, bytes]:
        body = {**body, "gossip": self.members.piggyback(self.params.piggyback)}
        me = self.members.me
        self.stats.sent += 1
        return addr, seal(kind, body, Sender(me.name, me.key_id, me.addr, me.inc), self.private, now)

    def _ping(self, addr: str, target: str, now: float, relay: tuple[str, int] | None = None) -> tuple[str, bytes]:
        self.seq += 1
        self.probes[self.seq] = Probe(target, now, relay=relay)
        return self._send(addr, "ping", {"seq": self.seq}, now)

    def _take(self, candidates: list[Item]) -> list[dict[str, Any]]:
        """The items that fit in what is left of this round's bandwidth."""
        count, size = self._budget
        out = []
        for item in candidates:
            if count + 1 > self.params.max_items or size + item.size > self.params.max_bytes:
                break
            count, size = count + 1, size + item.size
            out.append(item.raw)
        self.stats.items_sent += count - self._budget[0]
        self.stats.bytes_sent += size - self._budget[1]
        self._budget = (count, size)
        return out

    def _digest(self) -> list[str]:
        return list(reversed(self.items))[: self.params.digest_max]

    # -- the public interface -----------------------------------------------------------------------
    def join(self, seeds: list[str], now: float) -> Out:
        """Ping the seed addresses; their answers carry their membership, ours reaches them.

        Until some member answers, the seeds are pinged again every round (a seed may start later).
        """
        self.seeds = [s for s in seeds if s != self.addr]
        return [self._ping(addr, "", now) for addr in seeds if addr != self.addr]

    def leave(self, now: float) -> Out:
        self.members.me.state = LEFT
        self.members.me.inc += 1
        self.members._spread(self.name)
        return [self._send(m.addr, "sync", {"members": [self.members.me.update()]}, now) for m in self.members.live()]

    def publish(self, released: Released) -> Item:
        """Gossip an item of ours. Only what the egress gate released (signed with our key) is accepted."""
        if not isinstance(released, Released):
            raise TypeError("SwarmNode.publish takes what share.egress released, nothing else")
        raw = released.require("gossip").payload
        if raw.get("key_id") != self.key_id or raw.get("org") != self.name:
            raise ValueError(f"item {raw.get('id')} was released for another node")
        item = Item.of(raw)
        self._accept(item)
        return item

    def tick(self, now: float) -> Out:
        out: Out = []
        out += self._check_probes(now)
        for m in list(self.members.members.values()):
            if m.state == SUSPECT and now - m.since >= self.params.suspicion_timeout:
                self.members.mark(m.name, DEAD, now)
        if now >= self.next_round:
            self.next_round = now + self.params.period
            out += self._round(now)
        return out

    def receive(self, raw: bytes, now: float) -> Out:
        try:
            msg = open_message(raw, self.keys, now, self.params.max_message, self.params.skew)
            if msg.sender.name == self.name:
                raise Drop("malformed", "a message claiming to be from ourselves")
            self.replay.check(msg.nonce, msg.sent, now)
            self.limiter.check(msg.sender.key_id, now)
            handler = self.handlers.get(msg.kind)
            if handler is None:
                raise Drop("unknown-kind", f"message kind {msg.kind!r}")
            self.stats.received += 1
            self._learn(msg, now)
            return handler(msg, now)
        except Drop as drop:
            self.drops.count(drop)
            return []
        except (KeyError, TypeError, ValueError) as exc:
            self.drops.count(Drop("malformed", f"{type(exc).__name__}: {exc}"))
            return []

    # -- rounds -------------------------------------------------------------------------------------
    def _round(self, now: float) -> Out:
        self.round += 1
        self._budget = (0, 0)
        for item_id in [i for i, item in self.items.items() if item.expires < now]:
            del self.items[item_id]
            self.hot.pop(item_id, None)
        out: Out = []
        if not self.members.live() and self.seeds:
            out += self.join(self.seeds, now)
        target = self._next_target()
        if target is not None:
            out.append(self._ping(target.addr, target.name, now))
        live = self.members.live()
        partners = self.rng.sample(live, min(self.params.fanout, len(live)))
        hot = [self.items[i] for i in self.hot if i in self.items]
        digest = self._digest()
        for partner in partners:
            out.append(self._send(partner.addr, "push", {"items": self._take(hot), "have": digest}, now))
        for item_id in list(self.hot):
            self.hot[item_id] -= 1
            if self.hot[item_id] <= 0:
                del self.hot[item_id]
        if live and self.round % self.params.sync_every == 0:
            partner = self.rng.choice(live)
            out.append(self._send(partner.addr, "sync", {"members": self.members.full_state()}, now))
        dead = [m for m in self.members.members.values() if m.state == DEAD]
        if dead and self.round % self.params.reconnect_every == 0:
            # a partition heals: the dead that answer learn they were declared dead and refute it
            out.append(self._send(self.rng.choice(dead).addr, "sync", {"members": self.members.full_state()}, now))
        return out

    def _next_target(self) -> Member | None:
        while self._probe_order:
            m = self.members.members.get(self._probe_order.pop())
            if m is not None and m.state in (ALIVE, SUSPECT):
                return m
        live = [m.name for m in self.members.live()]
        if not live:
            return None
        self.rng.shuffle(live)
        self._probe_order = live
        return self.members.members[self._probe_order.pop()]

    def _check_probes(self, now: float) -> Out:
        out: Out = []
        for seq, probe in list(self.probes.items()):
            age = now - probe.started
            if probe.relay is not None or not probe.target:
                if age >= self.params.period:
                    del self.probes[seq]
                continue
            if not probe.indirect and age >= self.params.probe_timeout:
                probe.indirect = True
                target = self.members.members.get(probe.target)
                helpers = [m for m in self.members.live() if m.name != probe.target]
                for helper in self.rng.sample(helpers, min(self.params.indirect_k, len(helpers))):
                    if target is not None:
                        out.append(self._send(helper.addr, "ping-req",
                                              {"seq": seq, "target": target.addr, "name": target.name}, now))
            if age >= self.params.period:
                del self.probes[seq]
                self.members.mark(probe.target, SUSPECT, now)
        return out

    # -- receiving ----------------------------------------------------------------------------------
    def _learn(self, msg: Message, now: float) -> None:
        s = msg.sender
        if not 0 <= s.inc < MAX_INCARNATION:
            raise Drop("malformed", f"incarnation {s.inc}")
        self.members.apply({"name": s.name, "key_id": s.key_id, "addr": s.addr, "state": ALIVE, "inc": s.inc}, now,
                           direct=True)
        for upd in msg.body.get("gossip", [])[: self.params.piggyback * 2]:
            self._apply(upd, now)

    def _apply(self, upd: Any, now: float) -> None:
        if (not isinstance(upd, dict) or not all(isinstance(upd.get(k), str) for k in ("name", "key_id", "addr"))
                or upd.get("state") not in (ALIVE, SUSPECT, DEAD, LEFT) or not isinstance(upd.get("inc"), int)
                or not 0 <= upd["inc"] < MAX_INCARNATION):
            raise Drop("malformed", "a membership update")
        if self.keys(upd["key_id"]) is None:
            return  # a member we do not trust is never added, whoever vouches for it
        self.members.apply(upd, now)

    def _on_ping(self, msg: Message, now: float) -> Out:
        return [self._send(msg.sender.addr, "ack", {"seq": int(msg.body["seq"])}, now)]

    def _on_ack(self, msg: Message, now: float) -> Out:
        probe = self.probes.pop(int(msg.body["seq"]), None)
        if probe is None:
            return []
        if probe.relay is not None:
            return [self._send(probe.relay[0], "ack", {"seq": probe.relay[1]}, now)]
        return []

    def _on_ping_req(self, msg: Message, now: float) -> Out:
        target, name = str(msg.body["target"]), str(msg.body["name"])
        return [self._ping(target, name, now, relay=(msg.sender.addr, int(msg.body["seq"])))]

    def _on_sync(self, msg: Message, now: float) -> Out:
        for upd in msg.body.get("members", [])[:10_000]:
            self._apply(upd, now)
        if msg.kind == "sync" and msg.sender.addr and len(msg.body.get("members", [])) > 1:
            return [self._send(msg.sender.addr, "sync-reply", {"members": self.members.full_state()}, now)]
        return []

    def _on_push(self, msg: Message, now: float) -> Out:
        self._ingest(msg.body.get("items", []), now)
        have = msg.body.get("have", [])
        if not isinstance(have, list):
            raise Drop("malformed", "digest")
        theirs = set(have)
        want = [i for i in have if isinstance(i, str) and i not in self.items and i not in self.refuted]
        back = [item for i, item in reversed(self.items.items()) if i not in theirs]
        if not want and not back:
            return []
        return [self._send(msg.sender.addr, "pull", {"items": self._take(back), "want": want[:512]}, now)]

    def _on_pull(self, msg: Message, now: float) -> Out:
        self._ingest(msg.body.get("items", []), now)
        wanted = [self.items[i] for i in msg.body.get("want", [])[:512] if isinstance(i, str) and i in self.items]
        if not wanted:
            return []
        return [self._send(msg.sender.addr, "deliver", {"items": self._take(wanted)}, now)]

    def _on_deliver(self, msg: Message, now: float) -> Out:
        self._ingest(msg.body.get("items", []), now)
        return []

    def _ingest(self, raws: Any, now: float) -> None:
        if not isinstance(raws, list):
            raise Drop("malformed", "items must be a list")
        if len(raws) > self.params.max_items:
            raise Drop("flood", f"{len(raws)} items in one message > {self.params.max_items}")
        for raw in raws:
            if isinstance(raw, dict) and (raw.get("id") in self.items or raw.get("id") in self.refuted):
                continue
            try:
                item = check_item(raw, self.keys, now, self.params.skew, self.params.max_ttl)
            except Drop as drop:
                self.drops.count(drop)
                continue
            # benign evidence is not a claim our data could refute: it is what our refutations publish
            if self.refuter is not None and item.raw["kind"] != "benign" and self.refuter(item):
                self._refute(item)
                continue
            self._accept(item)

    def _refute(self, item: Item) -> None:
        self.refuted.add(item.id)
        self.drops.count(Drop("refuted", f"item {item.id} from {item.org} contradicts our own data"))
        self._blame(item.marks[0].key, item.key_id)   # one refutation per item, however many marks it has
        for mark in item.marks:
            if self.contradict is not None and mark.key.startswith("indicator:") and mark.key not in self._contradicted:
                self._contradicted.add(mark.key)
                _, kind, value = mark.key.split(":", 2)
                self.contradict({"type": kind, "value": value})

    def _blame(self, key: str, claimant: str) -> None:
        """One refutation of `claimant` per claim it made, whether our own data or the swarm's disputed it."""
        if claimant != self.key_id and (key, claimant) not in self._blamed:
            self._blamed.add((key, claimant))
            self.trust.refute(claimant)

    def _judge(self, key: str) -> None:
        """Dispute `key` once the benign evidence for it reaches `dispute_share` of the live swarm: each
        organisation counts once, at most as much as an unknown peer, less as its reputation falls (so
        liars cannot dispute what they were caught lying about, nor a crowd of fresh keys outvote much)."""
        if key in self.disputed or self.params.dispute_share <= 0:
            return
        evidence = self.field.state.get(BENIGN + key, {})
        mass = sum(min(1.0, self.weight(e.key_id) / self._fresh) for e in evidence.values())
        if mass >= self.params.dispute_share * (len(self.members.live()) + 1):
            self.disputed.add(key)
            for entry in self.field.state.get(key, {}).values():
                self._blame(key, entry.key_id)

    def _accept(self, item: Item) -> None:
        self.items[item.id] = item
        self.hot[item.id] = self.params.hot_rounds
        self.field.add(item)
        for mark in item.marks:
            if mark.key.startswith(BENIGN):
                self._judge(mark.key.removeprefix(BENIGN))
            elif mark.key in self.disputed:
                self._blame(mark.key, item.key_id)
        for listener in self.listeners:
            listener(item)

    # -- reading ------------------------------------------------------------------------------------
    def level(self, key: str, now: float) -> float:
        """The threat level of `key`: 0 once disputed, whoever claimed it."""
        return 0.0 if key in self.disputed else self.field.level(key, now, self.weight)

    def top(self, now: float, n: int = 10) -> list[tuple[str, float, int]]:
        """(key, level, reporting organisations) of the threats, highest first: disputed keys and benign
        evidence left out."""
        keys = [k for k in self.field.state if k not in self.disputed and not k.startswith(BENIGN)]
        return self.field.top(now, self.weight, n, keys) if keys else []

    def weight(self, key_id: str) -> float:
        return 1.0 if key_id == self.key_id else self.trust.weight(key_id)

    def status(self, now: float, top: int = 10) -> dict[str, Any]:
        return {
            "name": self.name, "addr": self.addr, "incarnation": self.members.me.inc, "round": self.round,
            "members": [{"name": m.name, "addr": m.addr, "state": m.state, "incarnation": m.inc}
                        for m in sorted(self.members.members.values(), key=lambda m: m.name)],
            "items": len(self.items),
            "threat_field": [{"key": k, "level": round(v, 3), "organisations": n}
                             for k, v, n in self.top(now, top)],
            "dropped": dict(self.drops.reasons), "sent": self.stats.sent, "received": self.stats.received,
        }
