"""The protocol core in virtual time (seeded): dissemination, failure detection, refutation, partitions, bandwidth."""

from __future__ import annotations

from healthswarm.swarm.membership import ALIVE, DEAD, SUSPECT
from healthswarm.swarm.params import Params
from healthswarm.swarm.sim import SimNetwork

IOC = {"type": "ipv4", "value": "198.51.100.77", "confidence": 80, "techniques": ["T1071.001"]}


def _joined(n: int, seed: int = 7, params: Params | None = None) -> SimNetwork:
    net = SimNetwork(seed=seed)
    for i in range(n):
        net.add(f"n{i}", params)
    for i in range(1, n):
        net.send(net.nodes[f"n{i}"].join(["n0"], net.now), f"n{i}")
    net.run(30, until=lambda: all(len(x.members.live()) == n - 1 for x in net.nodes.values()))
    return net


def _state(net: SimNetwork, name: str, about: str) -> str:
    return net.nodes[name].members.members[about].state


def test_join_via_seed_and_dissemination_reaches_every_node() -> None:
    net = _joined(24)
    assert all(len(x.members.live()) == 23 for x in net.nodes.values())
    item = net.publish("n13", "indicator", IOC)
    spent = net.run(20, until=lambda: all(item.id in x.items for x in net.nodes.values()))
    assert all(item.id in x.items for x in net.nodes.values())
    assert spent <= 8.0, f"took {spent:.1f} s of virtual time"
    for x in net.nodes.values():
        assert x.field.state["indicator:ipv4:198.51.100.77"].keys() == {"n13"}


def test_crash_is_detected_and_a_suspected_node_refutes() -> None:
    net = _joined(8)
    net.down.add("n5")
    net.run(15)
    assert all(_state(net, f"n{i}", "n5") == DEAD for i in range(8) if i != 5)
    # n3 is cut off briefly (shorter than the suspicion timeout): suspected, then refutes with a higher incarnation
    before = net.nodes["n3"].members.me.inc
    net.groups["n3"] = 1
    seen_suspect = False

    def suspected() -> bool:
        nonlocal seen_suspect
        seen_suspect = seen_suspect or any(_state(net, f"n{i}", "n3") == SUSPECT for i in (0, 1, 2, 4, 6, 7))
        return seen_suspect

    net.run(10, until=suspected)
    assert seen_suspect
    net.groups.clear()
    net.run(10)
    assert net.nodes["n3"].members.me.inc > before
    assert all(_state(net, f"n{i}", "n3") == ALIVE for i in (0, 1, 2, 4, 6, 7))


def test_crashed_node_restarts_and_rejoins() -> None:
    net = _joined(6)
    net.down.add("n4")
    net.run(15)
    assert _state(net, "n0", "n4") == DEAD
    old = net.nodes["n4"]
    item = net.publish("n1", "sighting", {"type": "domain", "value": "cdn-update.example"})
    net.run(3)
    net.down.discard("n4")
    reborn = net.add("n4", private=old.private)   # a fresh process: empty state, incarnation = start time
    net.send(reborn.join(["n0"], net.now), "n4")
    net.run(15, until=lambda: item.id in reborn.items
            and all(_state(net, f"n{i}", "n4") == ALIVE for i in (0, 1, 2, 3, 5)))
    assert item.id in reborn.items, "anti-entropy brings what was published while it was down"
    assert all(_state(net, f"n{i}", "n4") == ALIVE for i in (0, 1, 2, 3, 5))


def test_partition_heals_and_replicas_converge() -> None:
    net = _joined(12)
    for i in range(6, 12):
        net.groups[f"n{i}"] = 1
    net.run(2)
    left = net.publish("n1", "indicator", IOC)
    right = net.publish("n8", "indicator", {**IOC, "confidence": 60})
    net.run(20)
    assert right.id not in net.nodes["n2"].items and left.id not in net.nodes["n9"].items
    assert _state(net, "n2", "n9") == DEAD and _state(net, "n9", "n2") == DEAD, "each side gave the other up"
    net.groups.clear()
    everything = {left.id, right.id}
    net.run(30, until=lambda: all(set(x.items) >= everything for x in net.nodes.values()))
    assert all(set(x.items) >= everything for x in net.nodes.values())
    states = {repr(sorted((k, sorted(v.items())) for k, v in x.field.state.items())) for x in net.nodes.values()}
    assert len(states) == 1, "every replica holds the same threat field"
    levels = {round(x.level("indicator:ipv4:198.51.100.77", net.now + 3600), 9) for x in net.nodes.values()
              if x.name not in ("n1", "n8")}
    assert len(levels) == 1
    net.run(30, until=lambda: all(len(x.members.live()) == 11 for x in net.nodes.values()))
    assert all(len(x.members.live()) == 11 for x in net.nodes.values()), "membership heals too"


def test_items_sent_per_round_are_bounded() -> None:
    params = Params(max_items=10, max_bytes=4_000)
    net = _joined(5, params=params)
    for i in range(120):
        net.publish("n0", "sighting", {"type": "ipv4", "value": f"203.0.113.{i}"})
    sent_before = net.nodes["n0"].stats.items_sent
    net.run(1.0)
    assert 0 < net.nodes["n0"].stats.items_sent - sent_before <= 10
    everything = set(net.nodes["n0"].items)
    net.run(60, until=lambda: all(set(x.items) == everything for x in net.nodes.values()))
    assert all(set(x.items) == everything for x in net.nodes.values())
