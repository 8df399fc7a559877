"""Real node processes on 127.0.0.1: publish reaches all, kill -9 and restart catches up, status command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_until
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium

NAMES = ["st-aurelia", "st-benedict", "pacs", "lab", "clinic"]
PARAMS = {"period": 0.3, "probe_timeout": 0.12, "suspicion_timeout": 1.5}


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "healthswarm", "node", "run", "--config", str(config)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=config.parent)


def _status(config: Path) -> dict[str, object]:
    path = load_node_config(config).folder / "status.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}



@pytest.fixture
def swarm(tmp_path: Path) -> Iterator[tuple[list[Path], dict[str, subprocess.Popen[bytes]]]]:
    configs = make_consortium(tmp_path, NAMES, free_ports(len(NAMES)), seeds=2, params=PARAMS)
    procs = {name: _start(c, tmp_path / f"{name}.log") for name, c in zip(NAMES, configs, strict=True)}
    try:
        yield configs, procs
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for p in procs.values():
            p.wait(10)


def _members(config: Path, state: str = "alive") -> set[str]:
    return {str(m["name"]) for m in _status(config).get("members", []) if m["state"] == state}  # type: ignore[attr-defined, index]


def _has_key(config: Path, key: str) -> bool:
    return any(row["key"] == key for row in _status(config).get("threat_field", []))  # type: ignore[attr-defined, index]


def test_five_processes_disseminate_survive_kill_and_catch_up(
        swarm: tuple[list[Path], dict[str, subprocess.Popen[bytes]]]) -> None:
    configs, procs = swarm
    wait_until("every node sees the four others alive",
          lambda: all(len(_members(c)) == len(NAMES) - 1 for c in configs), 20)

    outbox.post(load_node_config(configs[0]).folder, "indicator",
                {"type": "ipv4", "value": "198.51.100.77", "confidence": 80, "techniques": ["T1071.001"]})
    wait_until("the indicator reaches every node", lambda: all(_has_key(c, "indicator:ipv4:198.51.100.77")
                                                          for c in configs), 15)

    victim = configs[3]
    os.kill(procs["lab"].pid, signal.SIGKILL)
    procs["lab"].wait(5)
    wait_until("the others declare lab dead",
               lambda: all("lab" in _members(c, "dead") for c in configs if c != victim), 15)

    outbox.post(load_node_config(configs[1]).folder, "sighting",
                {"type": "domain", "value": "cdn-update.example", "confidence": 70})
    wait_until("the sighting spreads among the living",
          lambda: all(_has_key(c, "indicator:domain:cdn-update.example") for c in configs if c != victim), 15)

    procs["lab"] = _start(victim, victim.parent / "lab.log")
    wait_until("lab is back alive everywhere and caught up by anti-entropy",
          lambda: all("lab" in _members(c) for c in configs if c != victim)
          and _has_key(victim, "indicator:domain:cdn-update.example")
          and _has_key(victim, "indicator:ipv4:198.51.100.77"), 20)

    out = subprocess.run([sys.executable, "-m", "healthswarm", "node", "status", "--config", str(victim)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert "indicator:ipv4:198.51.100.77" in out and "st-aurelia" in out and "alive" in out
