"""The swarm in virtual time: 1,000 simulated nodes running the real protocol core (swarm/node.py).

Measured: rounds for one item to reach 99 % of nodes at fan-out 3 (target ≤ 15; baseline: the
log_(fanout+1) N rounds of ideal push-pull), messages per node per round (probes, acks, gossip, all
signed); rounds for every node to hold every item after a 30 % partition heals; and the early-warning
false-warning rate at honest nodes with 20 % colluding lying nodes (target ≤ 1 %), with the baseline
of the same swarm without trust weighting (every peer weighs 0.5 whatever it did).

Liar model: every liar reports every fabricated indicator at confidence 100 (inflated and colluding);
an honest node can refute a fabricated claim from its own data with probability 0.5 (it sees the
claimed value in its own traffic, benign). A warm-up of fabricated and true campaigns comes first;
then fresh campaigns are measured. True campaigns are reported by 3 honest nodes each.

    python bench/swarm.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import time
from typing import Any

from common import peak_rss_mib, report
from healthswarm.swarm.node import SwarmNode
from healthswarm.swarm.params import Params
from healthswarm.swarm.sim import SimNetwork


def _mesh(n: int, seed: int, params: Params) -> SimNetwork:
    net = SimNetwork(seed=seed)
    for i in range(n):
        net.add(f"n{i}", params)
    net.full_mesh()
    return net


def dissemination(n: int, seed: int, fanout: int = 3) -> dict[str, float]:
    net = _mesh(n, seed, Params(fanout=fanout))
    net.run(2.0)   # rounds of membership traffic before the item, so the message rate is steady
    sent0 = sum(x.stats.sent for x in net.nodes.values())
    item = net.nodes["n0"].publish("sighting", {"type": "ipv4", "value": "203.0.113.9", "confidence": 90}, net.now)
    rounds = 0
    while sum(item.id in x.items for x in net.nodes.values()) < 0.99 * n and rounds < 40:
        net.run(1.0)   # one protocol period = one round
        rounds += 1
    sent = sum(x.stats.sent for x in net.nodes.values()) - sent0
    return {"rounds_to_99pct": rounds, "messages_per_node_per_round": round(sent / n / max(rounds, 1), 2),
            "ideal_rounds": round(math.log(n) / math.log(fanout + 1), 2)}


def partition_heal(n: int, seed: int, per_side: int = 5) -> dict[str, float]:
    net = _mesh(n, seed, Params())
    cut = [f"n{i}" for i in range(int(0.3 * n))]
    for name in cut:
        net.groups[name] = 1
    for k in range(per_side):
        net.nodes[f"n{k}"].publish("sighting", {"type": "ipv4", "value": f"192.0.2.{k}"}, net.now)
        net.nodes[f"n{n - 1 - k}"].publish("sighting", {"type": "ipv4", "value": f"198.51.100.{k}"}, net.now)
    net.run(15.0)   # long enough for each side to declare the other dead
    everything = set().union(*(x.items for x in net.nodes.values()))
    net.groups.clear()
    rounds = 0
    while not all(set(x.items) >= everything for x in net.nodes.values()) and rounds < 60:
        net.run(1.0)
        rounds += 1
    dead = sum(m.state == "dead" for x in net.nodes.values() for m in x.members.members.values())
    return {"rounds_to_converge_after_heal": rounds, "items": len(everything), "dead_views_left": dead}


def _refutes(node: str, value: str) -> bool:
    return hashlib.blake2b(f"{node}|{value}".encode(), digest_size=2).digest()[0] < 128   # probability 0.5


def liars(n: int, seed: int, warmup: int, measured: int, trust_weighting: bool) -> dict[str, float]:
    params = Params(max_items=256, max_bytes=256_000)
    net = _mesh(n, seed, params)
    rng = random.Random(seed)
    names = sorted(net.nodes)
    lying = set(rng.sample(names, n // 5))
    honest = [x for x in names if x not in lying]
    fake_values: set[str] = set()

    def refuter_for(node: SwarmNode) -> Any:
        return lambda item: item.data.get("value") in fake_values and _refutes(node.name, item.data["value"])

    for name in honest:
        node = net.nodes[name]
        node.refuter = refuter_for(node)
        if not trust_weighting:
            node.weight = lambda _kid: 0.5  # type: ignore[method-assign]

    def campaign(tag: str, k: int) -> tuple[str, str]:
        fake, true = f"fake-{tag}{k}.example", f"true-{tag}{k}.example"
        fake_values.add(fake)
        for liar in lying:
            net.nodes[liar].publish("indicator", {"type": "domain", "value": fake, "confidence": 100}, net.now)
        for reporter in rng.sample(honest, 3):
            net.nodes[reporter].publish("indicator", {"type": "domain", "value": true, "confidence": 80}, net.now)
        return fake, true

    def settle(expected: int) -> None:
        def done() -> bool:
            return all(len(net.nodes[h].items) + len(net.nodes[h].refuted) >= expected for h in honest)
        net.run(60.0, dt=0.25, until=done)

    for k in range(warmup):
        campaign("w", k)
    settle(warmup * (len(lying) + 3))
    pairs = [campaign("m", k) for k in range(measured)]
    settle((warmup + measured) * (len(lying) + 3))
    false = missed = 0
    for h in honest:
        node = net.nodes[h]
        for fake, true in pairs:
            false += node.level(f"indicator:domain:{fake}", net.now) >= params.threshold
            missed += node.level(f"indicator:domain:{true}", net.now) < params.threshold
    total = len(honest) * measured
    return {"false_warning_rate": round(false / total, 4), "true_warning_rate": round(1 - missed / total, 4),
            "honest_nodes": len(honest), "lying_nodes": len(lying)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials and a smaller liar swarm")
    args = parser.parse_args()
    n = 1000
    trials = 1 if args.quick else 3
    liar_n, warmup, measured = (200, 10, 5) if args.quick else (400, 12, 8)
    started = time.perf_counter()
    spread = [dissemination(n, seed) for seed in range(trials)]
    heal = [partition_heal(n if not args.quick else 500, seed) for seed in range(trials)]
    with_trust = liars(liar_n, 1, warmup, measured, trust_weighting=True)
    without = liars(liar_n, 1, warmup, measured, trust_weighting=False)
    rounds = max(s["rounds_to_99pct"] for s in spread)
    figures: dict[str, Any] = {
        "nodes": n, "fanout": 3, "trials": trials,
        "rounds_to_99pct": rounds, "rounds_to_99pct_target": 15,
        "ideal_rounds_baseline": spread[0]["ideal_rounds"],
        "rounds_ratio_to_ideal": round(rounds / spread[0]["ideal_rounds"], 2),
        "messages_per_node_per_round": max(s["messages_per_node_per_round"] for s in spread),
        "partition_nodes": 500 if args.quick else n, "partition_share": 0.3,
        "rounds_to_converge_after_heal": max(h["rounds_to_converge_after_heal"] for h in heal),
        "liar_swarm_nodes": liar_n, "liar_share": 0.2, "warmup_campaigns": warmup, "measured_campaigns": measured,
        "false_warning_rate": with_trust["false_warning_rate"], "false_warning_target": 0.01,
        "false_warning_rate_baseline_no_trust": without["false_warning_rate"],
        "true_warning_rate": with_trust["true_warning_rate"],
        "true_warning_rate_baseline_no_trust": without["true_warning_rate"],
        "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    rows = [
        ("nodes / fan-out", f"{n} / 3"),
        ("rounds to 99 % (target ≤ 15)", f"{rounds} (ideal {spread[0]['ideal_rounds']})"),
        ("messages per node per round", str(figures["messages_per_node_per_round"])),
        (f"rounds to converge after a 30 % partition heals ({figures['partition_nodes']} nodes)",
         str(figures["rounds_to_converge_after_heal"])),
        (f"false warnings at honest nodes, 20 % liars ({liar_n} nodes; target ≤ 1 %)",
         f"{with_trust['false_warning_rate']:.2%} (no trust: {without['false_warning_rate']:.2%})"),
        ("true warnings at honest nodes", f"{with_trust['true_warning_rate']:.2%}"),
        ("seconds", str(figures["seconds"])),
    ]
    report("swarm", figures, rows, args.quick)


if __name__ == "__main__":
    main()
