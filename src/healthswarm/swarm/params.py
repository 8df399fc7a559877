"""Protocol parameters of a node (times in seconds, sizes in bytes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Params:
    period: float = 1.0               # one protocol round: a probe and a gossip exchange
    probe_timeout: float = 0.4        # direct ack awaited this long before indirect probes
    indirect_k: int = 3               # members asked to probe on our behalf
    suspicion_timeout: float = 5.0    # a suspect not refuted within this is declared dead
    fanout: int = 3                   # gossip partners per round
    hot_rounds: int = 4               # rounds a new item is pushed actively (rumour mongering)
    max_items: int = 64               # items sent per round, all partners together
    max_bytes: int = 64_000           # item bytes sent per round
    max_message: int = 256_000        # larger frames are dropped unread
    digest_max: int = 2_000           # item ids in one anti-entropy digest (newest first)
    piggyback: int = 8                # membership updates carried per message
    sync_every: int = 5               # full membership exchange with one partner every n rounds
    reconnect_every: int = 3          # and with one member we believe dead (partitions heal)
    skew: float = 300.0               # accepted clock difference of a message's send time
    rate: float = 60.0                # messages per second accepted from one peer (token bucket)
    burst: float = 120.0
    default_ttl: float = 7 * 86400.0  # life of an intelligence item
    max_ttl: float = 90 * 86400.0
    half_life: float = 86400.0        # evaporation of the threat field
    threshold: float = 0.5            # threat level at which a node acts
    trust_prior: float = 2.0          # confirmations credited to a peer of the trust store
    # a claim is disputed once organisations making up this share of the live swarm say their own traffic
    # shows the value benign (each counted at most once, by reputation: docs/swarm.md "Lying peers"); it must
    # lie above the share of honest organisations that mistake a real threat for benign. 0: no disputes
    dispute_share: float = 0.02
