"""The threat field CRDT: convergence in any order, once per organisation, evaporation, trust weighting."""

from __future__ import annotations

import itertools
import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from healthswarm.share.signing import KeyPair, key_id, sign_item
from healthswarm.swarm.field import ThreatField
from healthswarm.swarm.items import Item
from healthswarm.swarm.trust import MemoryTrust

KEY = "indicator:ipv4:198.51.100.77"
T0 = 1_800_000_000.0
DAY = 86_400.0


def _item(org: str, private: Ed25519PrivateKey, at: float, confidence: int = 80) -> Item:
    return Item.of(sign_item("sighting", {"type": "ipv4", "value": "198.51.100.77", "confidence": confidence}, org,
                             KeyPair(private), at, DAY * 7))


def _keys(n: int) -> list[Ed25519PrivateKey]:
    return [Ed25519PrivateKey.from_private_bytes(random.Random(i).randbytes(32)) for i in range(n)]


def test_merge_is_order_independent_and_idempotent() -> None:
    keys = _keys(3)
    items = [_item(f"org{i % 3}", keys[i % 3], T0 + 60 * i, 50 + 7 * i) for i in range(6)]
    states = set()
    for order in itertools.permutations(items):
        replicas = [ThreatField(DAY), ThreatField(DAY)]
        for j, item in enumerate(order):
            replicas[j % 2].add(item)
        replicas[0].merge(replicas[1])
        replicas[0].merge(replicas[1])   # idempotent
        states.add(repr(sorted(replicas[0].state[KEY].items())))
    assert len(states) == 1


def test_an_organisation_counts_once_however_often_it_reports() -> None:
    keys = _keys(2)
    once, inflated = ThreatField(DAY), ThreatField(DAY)
    once.add(_item("liar", keys[0], T0))
    for k in range(100):
        inflated.add(_item("liar", keys[0], T0 - k))
    flat = lambda _: 1.0  # noqa: E731
    assert inflated.level(KEY, T0, flat) == once.level(KEY, T0, flat) == 0.8
    inflated.add(_item("honest", keys[1], T0))
    assert inflated.level(KEY, T0, flat) == 1.6


def test_evaporation_halves_the_level_every_half_life() -> None:
    field = ThreatField(half_life=DAY)
    field.add(_item("a", _keys(1)[0], T0, 100))
    flat = lambda _: 1.0  # noqa: E731
    assert field.level(KEY, T0, flat) == 1.0
    assert abs(field.level(KEY, T0 + DAY, flat) - 0.5) < 1e-9
    assert abs(field.level(KEY, T0 + 3 * DAY, flat) - 0.125) < 1e-9


def test_reinforcement_is_weighted_by_trust_and_refutation_removes_it() -> None:
    keys = _keys(2)
    trust = MemoryTrust(prior=2.0)
    field = ThreatField(DAY)
    for org, k in (("a", keys[0]), ("b", keys[1])):
        field.add(_item(org, k, T0))
    kid_a = key_id(keys[0].public_key().public_bytes_raw())
    assert abs(field.level(KEY, T0, trust.weight) - 0.8) < 1e-9        # 2 peers × 0.5 × 0.8
    trust.refute(kid_a)
    assert abs(trust.weight(kid_a) - 0.2) < 1e-9
    trust.refute(kid_a)
    assert trust.weight(kid_a) == 0.0
    assert abs(field.level(KEY, T0, trust.weight) - 0.4) < 1e-9
    trust.confirm(key_id(keys[1].public_key().public_bytes_raw()))
    assert field.level(KEY, T0, trust.weight) > 0.4
