"""The swarm in virtual time: 1,000 simulated nodes running the real protocol core (swarm/node.py).

Measured: rounds for one item to reach 99 % of nodes at fan-out 3 (target ≤ 15), with plain push gossip
of the same fan-out simulated in the same run as the baseline (log₄ N is quoted for reference only: it
bounds push-only gossip, not this protocol, which also pulls and piggybacks items on membership
traffic); messages per node per round (probes, acks, gossip, all signed); rounds for every node to hold
every item after a 30 % partition heals; medians over 5 seeds (1 with --quick), worst kept.

Liars, at 1,000 nodes: a share of the nodes (20 %, then 10 % and 5 %) claims that benign domains are
malicious. Honest nodes are never told which values are fake: each refutes a claim only when its own
traffic shows the domain benign (popular services at most nodes, the long tail at few), and it holds
1 % of the true malicious domains for benign too. Liars vary: each its own confidence (50-100), all at
100, or at the honest reporters' 80; all backing the same fake, cells of 10, or each alone. A warm-up of
campaigns comes first, then fresh ones are measured; true campaigns are reported by 3 honest nodes. The
false-warning rate at honest nodes (target ≤ 1 %) has as baseline the same swarm without trust
weighting (every peer weighs 0.5 whatever it did).

The defence (docs/swarm.md, "Lying peers"): honest nodes gossip what their own traffic refutes, and a
claim that a share of the swarm shows benign is disputed, its claimants losing reputation. Two baselines
run in the same process: the protocol before it (trust weighting, refutations kept to oneself) and no
trust weighting at all.

    python bench/swarm.py [--quick]
    python bench/swarm.py --liars-only --nodes 300 --seeds 3   # the headline liar scenario alone, medians
                                                              # over seeds; replaces only figures.liars_only
                                                              # ["300 nodes"] in bench/results/swarm.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import time
from typing import Any

from common import RESULTS, machine, peak_rss_mib, report
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
    item = net.publish("n0", "sighting", {"type": "ipv4", "value": "203.0.113.9", "confidence": 90})
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
        net.publish(f"n{k}", "sighting", {"type": "ipv4", "value": f"192.0.2.{k}"})
        net.publish(f"n{n - 1 - k}", "sighting", {"type": "ipv4", "value": f"198.51.100.{k}"})
    net.run(15.0)   # long enough for each side to declare the other dead
    everything = set().union(*(x.items for x in net.nodes.values()))
    net.groups.clear()
    rounds = 0
    while not all(set(x.items) >= everything for x in net.nodes.values()) and rounds < 60:
        net.run(1.0)
        rounds += 1
    dead = sum(m.state == "dead" for x in net.nodes.values() for m in x.members.members.values())
    return {"rounds_to_converge_after_heal": rounds, "items": len(everything), "dead_views_left": dead}


# -- liars -------------------------------------------------------------------------------------------------
# The world an honest node judges from: BENIGN domains that organisations' own traffic shows, popular ones at
# most nodes, the long tail at few (node sees rank r with probability 0.9 / (1 + r / 20) ** 0.7: rank 0 at
# 90 % of nodes, rank 100 at 29 %, rank 2,999 at 3 %). Liars claim benign domains are malicious (to get
# services blocked), drawn uniformly over the ranks; true campaigns are fresh malicious domains, which an
# honest node wrongly holds for benign with probability 1 % (a compromised site it used to visit).
# An honest node refutes a claim only from its own traffic: it is never told which values are fake.
BENIGN = 3000


def _seen(node: str, value: str, rank: int | None) -> bool:
    share = 0.9 / (1 + rank / 20) ** 0.7 if rank is not None else 0.01
    digest = hashlib.blake2b(f"{node}|{value}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") < share * 2**32


def liars(n: int, seed: int, warmup: int, measured: int, trust_weighting: bool, share: float = 0.2,
          confidence: str = "mixed", collusion: str = "all", disputes: bool = True) -> dict[str, Any]:
    """False and true warning rates at honest nodes with `share` of the nodes lying.

    disputes: honest nodes gossip what their own traffic refutes and dispute a claim the swarm shows benign
    (the defence, Params.dispute_share); without, a refutation stays the refuter's own (the protocol before).

    confidence: "max" (every lie at 100), "mixed" (each liar its own level, 50-100), "mimic" (80, as the
    honest reporters). collusion: "all" (every liar backs the same fake), "cells" (cells of 10 liars, each
    its own fake), "lone" (every liar its own fake)."""
    params = Params(max_items=256, max_bytes=256_000, **({} if disputes else {"dispute_share": 0.0}))
    net = _mesh(n, seed, params)
    rng = random.Random(seed)
    names = sorted(net.nodes)
    lying = sorted(rng.sample(names, round(n * share)))
    honest = [x for x in names if x not in set(lying)]
    level_of = {liar: {"max": 100, "mimic": 80, "mixed": rng.randrange(50, 101)}[confidence] for liar in lying}
    size = {"all": len(lying), "cells": 10, "lone": 1}[collusion]
    cells = [lying[i:i + size] for i in range(0, len(lying), size)]
    rank = {f"svc-{r}.example": r for r in range(BENIGN)}

    def refuter_for(node: SwarmNode) -> Any:
        def refutes(item: Any) -> bool:
            value = item.data.get("value")
            return isinstance(value, str) and _seen(node.name, value, rank.get(value))
        return refutes

    claims = dict.fromkeys(names, 0)   # items other than benign evidence, counted as they arrive

    def count(name: str) -> Any:
        def listener(item: Any) -> None:
            claims[name] += item.raw["kind"] != "benign"
        return listener

    for name in names:
        net.nodes[name].listeners.append(count(name))
        if not disputes:
            net.nodes[name].contradict = None
    for name in honest:
        node = net.nodes[name]
        node.refuter = refuter_for(node)
        if not trust_weighting:
            node.weight = lambda _kid: 0.5  # type: ignore[method-assign]

    def campaign(tag: str, k: int) -> tuple[list[str], str]:
        fakes = []
        for cell in cells:
            fake = f"svc-{rng.randrange(BENIGN)}.example"
            fakes.append(fake)
            for liar in cell:
                net.publish(liar, "indicator", {"type": "domain", "value": fake, "confidence": level_of[liar]})
        true = f"c2-{tag}{k}.example"
        for reporter in rng.sample(honest, 3):
            net.publish(reporter, "indicator", {"type": "domain", "value": true, "confidence": 80})
        return fakes, true

    def settle(expected: int) -> None:
        def done() -> bool:
            return all(claims[h] + len(net.nodes[h].refuted) >= expected for h in honest)
        net.run(60.0, dt=0.25, until=done)
        net.run(5.0, dt=0.25)   # the benign evidence sent in answer to the last claims spreads too

    for k in range(warmup):
        campaign("w", k)
    settle(warmup * (len(lying) + 3))
    pairs = [campaign("m", k) for k in range(measured)]
    settle((warmup + measured) * (len(lying) + 3))
    false = missed = fakes_judged = 0
    for h in honest:
        node = net.nodes[h]
        for fakes, true in pairs:
            for fake in set(fakes):
                false += node.level(f"indicator:domain:{fake}", net.now) >= params.threshold
                fakes_judged += 1
            missed += node.level(f"indicator:domain:{true}", net.now) < params.threshold
    return {"false_warning_rate": round(false / fakes_judged, 4),
            "true_warning_rate": round(1 - missed / (len(honest) * measured), 4),
            "honest_nodes": len(honest), "lying_nodes": len(lying), "liar_share": share,
            "confidence": confidence, "collusion": collusion, "trust_weighting": trust_weighting,
            "disputes": disputes, "disputed_keys_per_honest_node": round(statistics.mean(
                len(net.nodes[h].disputed) for h in honest), 1),
            "refutations_per_honest_node": round(statistics.mean(len(net.nodes[h].refuted) for h in honest), 1)}


def push_only(n: int, seed: int, fanout: int = 3) -> int:
    """Baseline measured in the same run: plain push gossip (every informed node pushes to `fanout` random
    nodes each round, no pull, no loss); rounds until 99 % hold the item."""
    rng = random.Random(seed)
    informed = {0}
    rounds = 0
    while len(informed) < 0.99 * n and rounds < 100:
        informed |= {rng.randrange(n) for _ in range(fanout * len(informed))}
        rounds += 1
    return rounds


VARIANTS = {"defence": (True, True), "baseline_protocol_before": (True, False), "baseline_no_trust": (False, False)}


def liars_only(n: int, seeds: int, warmup: int, measured: int, variants: list[str]) -> None:
    """The headline scenario (20 % liars, mixed confidence, all colluding) with the defence and the
    baselines in `variants`, over `seeds` seeds; medians into figures.liars_only["<n> nodes"] of
    swarm.json, the rest of the file kept."""
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for seed in range(seeds):
        for variant in variants:
            trust_weighting, disputes = VARIANTS[variant]
            runs[variant].append(liars(n, seed, warmup, measured, trust_weighting, disputes=disputes))
            print(f"seed {seed} {variant}: {runs[variant][-1]}", flush=True)
    section: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
        "command": f"python bench/swarm.py --liars-only --nodes {n} --seeds {seeds} --variants {' '.join(variants)}",
        "nodes": n, "seeds": list(range(seeds)), "warmup_campaigns": warmup, "measured_campaigns": measured,
        "scenario": "20 % liars, each its own confidence 50-100, all backing the same fake",
        "statistic": "median over seeds", "false_warning_target": 0.01, "true_warning_target": 0.95,
        "seconds": round(time.perf_counter() - started, 1),
    }
    rows = []
    for variant, results in runs.items():
        false = statistics.median(r["false_warning_rate"] for r in results)
        true = statistics.median(r["true_warning_rate"] for r in results)
        section[variant] = {"false_warning_rate": false, "true_warning_rate": true,
                            "false_warning_rate_worst": max(r["false_warning_rate"] for r in results),
                            "true_warning_rate_worst": min(r["true_warning_rate"] for r in results), "runs": results}
        rows.append((f"{variant}: false / true warnings (median of {seeds})", f"{false:.2%} / {true:.2%}"))
    out = RESULTS / "swarm.json"
    document = json.loads(out.read_text(encoding="utf-8"))
    document["figures"].setdefault("liars_only", {})[f"{n} nodes"] = section
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for name, value in rows:
        print(f"{name}: {value}")
    print(f"wrote figures.liars_only[{n} nodes] of {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 trial; liars: 3 warm-up and 2 measured campaigns, "
                        "the headline scenario only (still 1,000 nodes)")
    parser.add_argument("--liars-only", action="store_true", help="the headline liar scenario alone (3 warm-up "
                        "and 2 measured campaigns), defence and baselines, medians over --seeds")
    parser.add_argument("--nodes", type=int, default=1000, help="swarm size of --liars-only")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of --liars-only")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="what --liars-only runs: the defence and/or the baselines")
    args = parser.parse_args()
    if args.liars_only:
        liars_only(args.nodes, args.seeds, 3, 2, args.variants)
        return
    n = 1000
    trials = 1 if args.quick else 5
    warmup, measured = (3, 2) if args.quick else (8, 5)
    started = time.perf_counter()
    spread = [dissemination(n, seed) for seed in range(trials)]
    push = [push_only(n, seed) for seed in range(trials)]
    heal = [partition_heal(n if not args.quick else 500, seed) for seed in range(trials)]
    # liar scenarios at 1,000 nodes: the headline (20 %, each liar its own confidence, all colluding) with and
    # without trust weighting, then confidence, collusion and share varied one at a time
    scenarios = [(0.2, "mixed", "all"), (0.2, "max", "all"), (0.2, "mimic", "all"), (0.2, "mixed", "cells"),
                 (0.2, "mixed", "lone"), (0.1, "mixed", "all"), (0.05, "mixed", "all")]
    if args.quick:
        scenarios = scenarios[:1]
    liar_runs = []
    for share, confidence, collusion in scenarios:
        liar_runs.append(liars(n, 1, warmup, measured, True, share, confidence, collusion))
        print(f"liars {share} {confidence} {collusion}: {liar_runs[-1]}", flush=True)
    before = liars(n, 1, warmup, measured, True, *scenarios[0], disputes=False)
    without = liars(n, 1, warmup, measured, False, *scenarios[0], disputes=False)
    head = liar_runs[0]
    rounds = statistics.median(s["rounds_to_99pct"] for s in spread)
    figures: dict[str, Any] = {
        "nodes": n, "fanout": 3, "trials": trials, "statistic": "median over trials (seeds 0..trials-1), worst kept",
        "rounds_to_99pct": rounds, "rounds_to_99pct_worst": max(s["rounds_to_99pct"] for s in spread),
        "rounds_to_99pct_target": 15,
        "baseline_push_only_rounds": statistics.median(push),
        # not a lower bound: nodes here also pull (anti-entropy) and piggyback items on membership traffic
        "reference_log4_n": spread[0]["ideal_rounds"],
        "messages_per_node_per_round": statistics.median(s["messages_per_node_per_round"] for s in spread),
        "partition_nodes": 500 if args.quick else n, "partition_share": 0.3,
        "rounds_to_converge_after_heal": statistics.median(h["rounds_to_converge_after_heal"] for h in heal),
        "rounds_to_converge_after_heal_worst": max(h["rounds_to_converge_after_heal"] for h in heal),
        "liar_swarm_nodes": n, "warmup_campaigns": warmup, "measured_campaigns": measured,
        "liar_model": "liars claim benign domains (uniform over 3,000 by popularity rank) are malicious; honest "
                      "nodes refute only what their own traffic shows benign (popular domains at most nodes, "
                      "the tail at few) and hold 1 % of true malicious domains for benign; never told which "
                      "values are fake",
        "liar_scenarios": liar_runs, "false_warning_target": 0.01,
        "false_warning_rate": head["false_warning_rate"], "true_warning_rate": head["true_warning_rate"],
        "false_warning_rate_worst_scenario": max(r["false_warning_rate"] for r in liar_runs),
        "baseline_protocol_before": before, "baseline_no_trust": without,
        "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    rows = [
        ("nodes / fan-out", f"{n} / 3"),
        ("rounds to 99 % (target ≤ 15), median / worst", f"{rounds} / {figures['rounds_to_99pct_worst']}"),
        ("baseline: plain push gossip, same fan-out (measured)", str(figures["baseline_push_only_rounds"])),
        ("reference: log4 N (not a bound for push-pull)", str(figures["reference_log4_n"])),
        ("messages per node per round", str(figures["messages_per_node_per_round"])),
        (f"rounds to converge after a 30 % partition heals ({figures['partition_nodes']} nodes)",
         str(figures["rounds_to_converge_after_heal"])),
    ]
    for r in liar_runs:
        rows.append((f"liars {r['liar_share']:.0%} of {n}, confidence {r['confidence']}, collusion {r['collusion']}: "
                     "false / true warnings", f"{r['false_warning_rate']:.2%} / {r['true_warning_rate']:.2%}"))
    rows += [("  same as the first, the protocol before the defence (baseline)",
              f"{before['false_warning_rate']:.2%} / {before['true_warning_rate']:.2%}"),
             ("  same as the first, no trust weighting, no disputes (baseline)",
              f"{without['false_warning_rate']:.2%} / {without['true_warning_rate']:.2%}"),
             ("seconds", str(figures["seconds"]))]
    report("swarm", figures, rows, args.quick)


if __name__ == "__main__":
    main()
