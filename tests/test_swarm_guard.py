"""Hostile input is dropped with a counted reason and the node keeps serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from healthswarm.share.signing import KeyPair, key_id, sign_item
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.envelope import Sender, seal
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.items import KINDS, Item
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.sim import SimNetwork

IOC = {"type": "ipv4", "value": "198.51.100.77", "confidence": 80}


def _pair(params: Params | None = None) -> tuple[SimNetwork, SwarmNode, SwarmNode]:
    net = SimNetwork(seed=3)
    a, b = net.add("a", params), net.add("b", params)
    net.send(b.join(["a"], net.now), "b")
    net.run(2)
    return net, a, b


def _frame(node: SwarmNode, kind: str, body: dict[str, object], now: float) -> bytes:
    me = node.members.me
    return seal(kind, body, Sender(me.name, me.key_id, me.addr, me.inc), node.private, now)


def test_sybil_key_not_in_trust_store_is_ignored() -> None:
    net, a, _ = _pair()
    sybil = net.add("sybil", trusted=False)
    a.receive(_frame(sybil, "ping", {"seq": 1}, net.now), net.now)
    assert a.drops.reasons["untrusted"] == 1
    assert "sybil" not in a.members.members
    # a trusted peer relaying the Sybil's item or vouching for its membership changes nothing
    item = Item.of(sign_item("indicator", IOC, "sybil", KeyPair(sybil.private), net.now, 3600))
    b = net.nodes["b"]
    a.receive(_frame(b, "deliver", {"items": [item.raw], "gossip": [sybil.members.me.update()]}, net.now), net.now)
    assert a.drops.reasons["untrusted"] == 2 and item.id not in a.items and "sybil" not in a.members.members


def test_replay_tamper_oversize_malformed_skew_flood() -> None:
    net, a, b = _pair(Params(rate=5.0, burst=5.0))
    frame = _frame(b, "ping", {"seq": 99}, net.now)
    assert a.receive(frame, net.now)               # answered
    assert a.receive(frame, net.now) == []
    tampered = frame.replace(b'"seq":99', b'"seq":98')
    a.receive(tampered, net.now)
    a.receive(b"x" * (a.params.max_message + 1), net.now)
    a.receive(b"{not json", net.now)
    a.receive(orjson.dumps({"v": 1, "kind": "ping"}), net.now)
    a.receive(_frame(b, "ping", {"seq": 1}, net.now + 3600), net.now)
    a.receive(_frame(b, "teleport", {}, net.now), net.now)
    for k in range(10):
        a.receive(_frame(b, "ping", {"seq": 100 + k}, net.now), net.now)
    reasons = a.drops.reasons
    assert (reasons["replay"], reasons["bad-signature"], reasons["oversize"], reasons["skew"]) == (1, 1, 1, 1)
    assert reasons["malformed"] == 2 and reasons["unknown-kind"] == 1 and reasons["flood"] >= 5
    assert a.receive(_frame(b, "ping", {"seq": 7}, net.now + 10), net.now + 10), "still serving"


def test_tampered_and_expired_items_are_dropped() -> None:
    net, a, b = _pair()
    good = Item.of(sign_item("indicator", IOC, "b", KeyPair(b.private), net.now, 3600))
    forged = {**good.raw, "data": {**IOC, "value": "192.0.2.1"}}
    expired = Item.of(sign_item("indicator", IOC, "b", KeyPair(b.private), net.now - 7200, 3600))
    weird = {**good.raw, "kind": "prophecy"}
    a.receive(_frame(b, "deliver", {"items": [forged, expired.raw, weird, good.raw]}, net.now), net.now)
    assert a.drops.reasons["bad-signature"] == 1 and a.drops.reasons["expired"] == 1
    assert a.drops.reasons["unknown-kind"] == 1 and set(a.items) == {good.id}


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("ipv4", "198.51.100.77", "notanip"), ("ipv4", "10.0.0.0/8", "2001:db8::1"), ("ipv6", "2001:db8::1", "10.0.0.1"),
    ("domain", "cdn-update.example", "not a domain"), ("url", "https://c2.example/p?q=1", "c2.example/p"),
    ("email", "a.b@vendor.example", "a@b@c"), ("md5", "d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "z" * 64),
    ("cve", "CVE-2023-30560", "2023-30560"), ("attack-technique", "T1071.001", "1071"),
    ("filename", "invoice.pdf.exe", ""),
])
def test_an_indicator_value_is_checked_by_its_type(kind: str, good: str, bad: str) -> None:
    assert KINDS["sighting"]({"type": kind, "value": good})
    with pytest.raises(Drop) as refused:
        KINDS["indicator"]({"type": kind, "value": bad})
    assert refused.value.reason == "malformed" and (refused.value.field == "value" or not bad)


def test_a_peers_item_with_a_value_not_of_its_type_is_refused_and_counted() -> None:
    net, a, b = _pair()
    bad = Item(sign_item("indicator", {**IOC, "value": "notanip"}, "b", KeyPair(b.private), net.now, 3600), (), 0)
    good = Item.of(sign_item("indicator", IOC, "b", KeyPair(b.private), net.now, 3600))
    a.receive(_frame(b, "deliver", {"items": [bad.raw, good.raw]}, net.now), net.now)
    assert a.drops.reasons == {"malformed": 1} and set(a.items) == {good.id}
    assert "malformed: value 'notanip': expected an IPv4 address or CIDR block for type ipv4" in a.drops.last


def test_node_publish_refuses_a_value_not_of_its_type_naming_the_option(tmp_path: Path) -> None:
    (config,) = make_consortium(tmp_path, ["a"], free_ports(1))
    command = [sys.executable, "-m", "healthswarm", "node", "publish", "--config", str(config), "--type", "ipv4"]
    refused = subprocess.run([*command, "--value", "notanip"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and outbox.take(load_node_config(config).folder) == []
    assert refused.stderr.strip() == "error: --value 'notanip': expected an IPv4 address or CIDR block for type ipv4"
    queued = subprocess.run([*command, "--value", "198.51.100.77"], capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0 and outbox.take(load_node_config(config).folder) == [
        ("indicator", {"confidence": 70, "type": "ipv4", "value": "198.51.100.77", "techniques": []})]


def test_a_liar_refuted_by_local_data_loses_trust_and_weight() -> None:
    net = SimNetwork(seed=5)
    honest, liar, judge = net.add("honest"), net.add("liar"), net.add("judge")
    judge.refuter = lambda item: item.data.get("value") == "update.vendor.example"   # known good here
    for n in (honest, liar):
        net.send(n.join(["judge"], net.now), n.name)
    net.run(3)
    weight_before = judge.weight(liar.key_id)
    lie = net.publish(liar.name, "indicator", {"type": "domain", "value": "update.vendor.example", "confidence": 100})
    net.run(5, until=lambda: lie.id in honest.items)
    assert lie.id not in judge.items and judge.drops.reasons["refuted"] == 1
    assert judge.weight(liar.key_id) < weight_before
    # the liar's later true-looking claim now weighs less than the same claim from an honest peer
    net.publish(liar.name, "sighting", {"type": "ipv4", "value": "203.0.113.5", "confidence": 90})
    net.publish(honest.name, "sighting", {"type": "ipv4", "value": "203.0.113.6", "confidence": 90})
    net.run(5)
    assert judge.level("indicator:ipv4:203.0.113.5", net.now) < judge.level("indicator:ipv4:203.0.113.6", net.now)


def test_unknown_key_in_message_with_valid_shape_is_untrusted_not_crash() -> None:
    net, a, _ = _pair()
    stranger = Ed25519PrivateKey.generate()
    frame = seal("ping", {"seq": 1}, Sender("x", key_id(stranger.public_key().public_bytes_raw()), "x", 0),
                 stranger, net.now)
    assert a.receive(frame, net.now) == [] and a.drops.reasons["untrusted"] == 1


def test_a_peer_cannot_redirect_another_members_address_or_overflow_incarnations() -> None:
    net = SimNetwork(seed=9)
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    for n in (b, c):
        net.send(n.join(["a"], net.now), n.name)
    net.run(3)
    forged = {"name": "c", "key_id": c.key_id, "addr": "evil", "state": "alive", "inc": c.members.me.inc + 5}
    a.receive(_frame(b, "sync", {"members": [forged]}, net.now), net.now)
    assert a.members.members["c"].addr == "c"
    huge = {**forged, "addr": "c", "inc": 2**50}
    a.receive(_frame(b, "sync", {"members": [huge]}, net.now), net.now)
    assert a.drops.reasons["malformed"] == 1 and a.members.members["c"].inc < 2**48
    net.run(3)
    assert a.members.members["c"].state == "alive" and not a.drops.reasons["bad-signature"]
