"""Five real node processes on 127.0.0.1 split into two groups by their deny lists (swarm/partition.py):
both sides keep working and learn intelligence the other side cannot see; once the lists are removed,
every node has every item, the same threat-field state and every member alive — nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_until
from healthswarm.swarm import outbox
from healthswarm.swarm.config import NodeConfig, load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.partition import write_deny
from healthswarm.swarm.persist import ITEMS

NAMES = ["st-aurelia", "northfield", "regio-imaging", "citylab", "medtech"]
LEFT, RIGHT = NAMES[:3], NAMES[3:]
PARAMS = {"period": 0.3, "probe_timeout": 0.12, "suspicion_timeout": 1.5}


def _status(cfg: NodeConfig) -> dict[str, object]:
    try:
        return dict(json.loads((cfg.folder / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _alive(cfg: NodeConfig) -> set[str]:
    return {str(m["name"]) for m in _status(cfg).get("members", []) if m["state"] == "alive"}  # type: ignore[attr-defined, index]


def _item_ids(cfg: NodeConfig) -> set[str]:
    path = cfg.folder / ITEMS
    if not path.exists():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError):
            continue   # a line being written
    return ids



@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, NodeConfig]]:
    configs = make_consortium(tmp_path, NAMES, free_ports(len(NAMES)), seeds=2, params=PARAMS)
    procs = [subprocess.Popen([sys.executable, "-m", "healthswarm", "node", "run", "--config", str(c)],
                              stdout=(tmp_path / f"{c.stem}.log").open("ab"), stderr=subprocess.STDOUT, cwd=c.parent)
             for c in configs]
    try:
        yield {c.stem: load_node_config(c) for c in configs}
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(10)


@pytest.mark.slow
def test_partition_heals_without_losing_intelligence(nodes: dict[str, NodeConfig]) -> None:
    every = list(nodes.values())
    wait_until("everyone sees the four others alive", lambda: all(len(_alive(c)) == len(NAMES) - 1 for c in every), 20)

    for side, other in ((LEFT, RIGHT), (RIGHT, LEFT)):
        for name in side:
            write_deny(nodes[name].folder, [nodes[o].listen for o in other])
    wait_until("each side declares the other dead",
          lambda: all(_alive(nodes[n]) == set(side) - {n} for side in (LEFT, RIGHT) for n in side), 20)

    outbox.post(nodes["st-aurelia"].folder, "indicator",
                {"type": "ipv4", "value": "198.51.100.77", "confidence": 80, "techniques": ["T1071.001"]})
    outbox.post(nodes["regio-imaging"].folder, "technique", {"technique": "T1083", "confidence": 60})
    outbox.post(nodes["citylab"].folder, "sighting", {"type": "domain", "value": "cdn-update.example",
                                                      "confidence": 70})
    outbox.post(nodes["medtech"].folder, "risk", {"vendor": "BD", "model": "Alaris 8015", "confidence": 70})
    wait_until("each side spreads its own intelligence",
          lambda: all(len(_item_ids(nodes[n])) == 2 for n in NAMES), 15)
    time.sleep(1.0)   # several rounds more: the partition really holds
    left, right = _item_ids(nodes["st-aurelia"]), _item_ids(nodes["citylab"])
    assert not left & right and all(_item_ids(nodes[n]) == (left if n in LEFT else right) for n in NAMES)
    assert all(int(_status(nodes[n])["blocked"]) > 0 for n in NAMES)  # type: ignore[call-overload]

    for cfg in every:
        write_deny(cfg.folder, [])
    everything = left | right

    def converged() -> bool:
        statuses = [_status(c) for c in every]
        return (all(len(_alive(c)) == len(NAMES) - 1 for c in every)
                and all(_item_ids(c) == everything for c in every)
                and len({s.get("field_digest") for s in statuses}) == 1
                and all(s.get("items") == len(everything) for s in statuses))

    wait_until("membership, items and threat field converge after healing", converged, 25)
    keys = {row["key"] for row in _status(nodes["northfield"])["threat_field"]}  # type: ignore[index, union-attr]
    assert {"indicator:ipv4:198.51.100.77", "technique:T1083", "indicator:domain:cdn-update.example",
            "vendor:bd", "model:alaris 8015"} <= keys
