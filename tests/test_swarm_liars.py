"""Colluding liars against honest nodes that are never told who lies (docs/swarm.md, "Lying peers").

40 nodes, 8 of them liars backing the same fake each campaign: a benign domain that a fifth of the honest
nodes see in their own traffic (they refute it; the others cannot tell). One honest node takes the true
campaign's domain for benign. Seeded, virtual time: counts, not clocks.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from healthswarm.swarm.items import Item
from healthswarm.swarm.params import Params
from healthswarm.swarm.sim import SimNetwork

N, LIARS, BENIGN_VALUES = 40, 8, 3


World = tuple[SimNetwork, list[str], list[str], dict[str, set[str]], Params]


def _swarm(dispute_share: float) -> World:
    params = Params(dispute_share=dispute_share, max_items=256, max_bytes=256_000)
    net = SimNetwork(seed=7)
    for i in range(N):
        net.add(f"n{i:02}", params)
    net.full_mesh()
    rng = random.Random(7)
    names = sorted(net.nodes)
    liars = sorted(rng.sample(names, LIARS))
    honest = [x for x in names if x not in liars]
    sees = {f"svc-{v}.example": set(rng.sample(honest, len(honest) // 5)) for v in range(BENIGN_VALUES)}
    sees["c2.example"] = {honest[0]}   # an honest mistake: a compromised site it used to visit

    def refuter_for(name: str) -> Callable[[Item], bool]:
        return lambda item: name in sees.get(str(item.data.get("value")), set())

    for name in honest:
        net.nodes[name].refuter = refuter_for(name)
    return net, liars, honest, sees, params


def _lie(net: SimNetwork, liars: list[str], value: str) -> list[Item]:
    return [net.publish(liar, "indicator", {"type": "domain", "value": value, "confidence": 100}) for liar in liars]


def _warned(net: SimNetwork, honest: list[str], value: str, params: Params) -> int:
    return sum(net.nodes[h].level(f"indicator:domain:{value}", net.now) >= params.threshold for h in honest)


def _campaigns(dispute_share: float) -> World:
    net, liars, honest, sees, params = _swarm(dispute_share)
    for v in range(BENIGN_VALUES - 1):   # warm-up: the liars' earlier lies
        _lie(net, liars, f"svc-{v}.example")
        net.run(6.0, dt=0.25)
    _lie(net, liars, f"svc-{BENIGN_VALUES - 1}.example")
    for reporter in honest[1:4]:
        net.publish(reporter, "indicator", {"type": "domain", "value": "c2.example", "confidence": 80})
    net.run(8.0, dt=0.25)
    return net, liars, honest, sees, params


def test_colluding_liars_raise_no_warning_and_a_true_one_still_spreads() -> None:
    net, liars, honest, _sees, params = _campaigns(dispute_share=0.1)
    fake = f"svc-{BENIGN_VALUES - 1}.example"
    assert _warned(net, honest, fake, params) == 0, "no honest node warns on a value the swarm shows benign"
    assert _warned(net, honest, "c2.example", params) >= len(honest) - 1, "the true warning reached the others"
    blind = [h for h in honest if not net.nodes[h].refuted]
    assert blind, "some honest nodes never saw a lie refuted by their own traffic"
    for h in blind:   # they learnt who lies from the swarm's evidence alone
        assert all(net.nodes[h].weight(net.nodes[liar].key_id) == 0.0 for liar in liars)
        assert all(net.nodes[h].weight(net.nodes[r].key_id) > 0.0 for r in honest[1:4])


def test_without_disputes_the_same_liars_raise_warnings_everywhere() -> None:
    net, _liars, honest, sees, params = _campaigns(dispute_share=0.0)
    fake = f"svc-{BENIGN_VALUES - 1}.example"
    # a node that refuted two earlier lies itself weighs the liars 0; the others cannot tell
    assert _warned(net, honest, fake, params) >= 2 * (len(honest) - len(sees[fake])) // 3
