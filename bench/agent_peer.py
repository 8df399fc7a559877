"""Benchmark: from the first alert at one agent to the incident at its peer, two real agents on loopback.

    python bench/agent_peer.py [--quick] [--runs N]

Two `healthswarm agent run` processes (demo/live.py sets them up as `healthswarm demo` does: a workspace each
with the demo ecosystem's inventory, keys, each trusting the other; swarm nodes seeded with each other).
Agent B (northfield) first ingests Suricata TLS events of one of its workstations to one address per run
(203.0.113.10, .11, …): traffic nobody flagged. Then, run after run, one Suricata alert line (the Cobalt
Strike JA3 signature of the demo, from another St. Aurelia workstation to that run's address) is appended
to the file agent A (st-aurelia) follows. Measured, by polling both stores every 0.05 s:
- line → alert at A;
- **alert at A → incident at B**: A correlates the alert into a high incident, publishes it through the egress
  gate by policy, gossip carries the signed indicator to B, B's watchlist picks it up, retro-hunts its stored
  events, finds the address and opens an incident (`watchlist-retro:ipv4:<address>`).

Every period is the agent's default (printed with the results), except the hold: `hold = 0`, since the hold
is the analyst's window before publishing (300 s by default), not a period of the machinery; with it the
figure is the hold plus this. Each run starts after a pause of up to one publishing period (seeded), so the
runs fall at different phases of the agents' loops. Set-up (start, rule compilation, B's ingest) is apart;
median and p90 of the runs (full 9, --quick 5). Writes bench/results/agent_peer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import String, cast, select

from common import report
from healthswarm.agent.config import load_config
from healthswarm.demo import LOGS
from healthswarm.demo.live import (
    RECEIVER,
    SENDER,
    AgentProcess,
    agent_toml,
    prepare,
    running,
    swarm_ports,
    wait_ready,
)
from healthswarm.store import Store
from healthswarm.store.tables import alerts
from healthswarm.swarm.params import Params

POLL = 0.05
RUN_TIMEOUT = 120.0


def _eve(kind: str) -> dict[str, object]:
    """A line of the demo's St. Aurelia EVE log: the Cobalt Strike JA3 alert, or a TLS event."""
    for line in (LOGS / "suricata-eve.json").read_text().splitlines():
        record = json.loads(line)
        if kind == "alert" and "Cobalt Strike" in str(record.get("alert", {}).get("signature", "")):
            return record
        if kind == "tls" and record.get("event_type") == "tls":
            return record
    raise SystemExit(f"no {kind} line in the demo's EVE log")


def _address(run: int) -> str:
    return f"203.0.113.{10 + run}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def _alert_for(store: Store, address: str) -> bool:
    """An alert naming `address` is stored."""
    query = select(alerts.c.id).where(cast(alerts.c.document, String).like(f'%"{address}"%'))
    with store.read() as conn:
        return conn.execute(query).first() is not None


def _incident_for(store: Store, address: str) -> bool:
    """The retro-hunt alert for `address` is stored, in an incident."""
    query = select(alerts.c.id).where(alerts.c.rule_id == f"watchlist-retro:ipv4:{address}",
                                      alerts.c.incident_id.is_not(None))
    with store.read() as conn:
        return conn.execute(query).first() is not None


def _wait(what: str, check: Callable[[], bool], agents: list[AgentProcess]) -> float:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {RUN_TIMEOUT:.0f} s: {what} (logs: {', '.join(str(a.log) for a in agents)})")
        for agent in agents:
            agent.check_alive()
        time.sleep(POLL)
    return time.perf_counter()


def measure(runs: int, base: Path) -> dict[str, object]:
    workspaces = prepare(base, [SENDER, RECEIVER])
    ports = swarm_ports(0, 2)
    files = {org: ws / "logs" / "eve.json" for org, ws in workspaces.items()}
    for path in files.values():
        path.parent.mkdir()
        path.touch()
    tls = _eve("tls")
    with files[RECEIVER].open("w") as out:  # B's own traffic to every address, before any warning
        for run in range(runs):
            out.write(json.dumps({**tls, "timestamp": _now(), "src_ip": "10.20.1.105", "dest_ip": _address(run),
                                  "flow_id": 900000 + run}) + "\n")
    for n, (org, ws) in enumerate(workspaces.items()):
        (ws / "agent.toml").write_text(agent_toml(org, [(files[org], "suricata")], ports[n], [ports[1 - n]],
                                                  hold=0.0), encoding="utf-8")
    config = load_config(workspaces[SENDER] / "agent.toml")
    periods = {"swarm.interval (publishing looks)": config.swarm.interval,
               "watchlist.refresh (reload, retro-hunt)": config.watchlist.refresh,
               "swarm.params.period (gossip round)": Params().period,
               "file follower poll": "0.05 s growing, ≤ 0.25 s quiet"}
    agents = [AgentProcess(org, ws) for org, ws in workspaces.items()]
    stores = {org: Store.open(f"sqlite:///{ws / 'healthswarm.db'}") for org, ws in workspaces.items()}
    rows = []
    try:
        with running(agents):
            started = time.perf_counter()
            wait_ready(agents)
            _wait("B stored and judged its own traffic", lambda: int(agents[1].status().get("events_judged", 0))
                  >= runs, agents)
            setup = time.perf_counter() - started
            alert = _eve("alert")
            pauses = random.Random(7)
            for run in range(runs):
                # a pause of up to one publishing period, so the runs do not all fall at the same phase of the
                # agents' 5 s loops (each run ending right after B's reload would start the next one there)
                time.sleep(pauses.uniform(0, config.swarm.interval))
                address = _address(run)
                # nothing shared with an earlier run's alert (host, address, flow), so each opens its own incident
                line = {**alert, "timestamp": _now(), "src_ip": f"10.10.1.{150 + run}", "dest_ip": address,
                        "flow_id": 800000 + run, "community_id": f"1:bench-{run}"}
                written = time.perf_counter()
                with files[SENDER].open("a") as out:
                    out.write(json.dumps(line) + "\n")
                at_a = _wait(f"the alert at A for {address}", partial(_alert_for, stores[SENDER], address), agents)
                at_b = _wait(f"the incident at B for {address}", partial(_incident_for, stores[RECEIVER], address),
                             agents)
                rows.append({"address": address, "line_to_alert": round(at_a - written, 3),
                             "alert_to_peer_incident": round(at_b - at_a, 3)})
                print(f"run {run + 1}/{runs}: line → alert at A {at_a - written:.2f} s, alert at A → incident at B "
                      f"{at_b - at_a:.2f} s", file=sys.stderr)
            exits = [agent.stop() for agent in agents]
    finally:
        for store in stores.values():
            store.close()
    latencies = [r["alert_to_peer_incident"] for r in rows]
    return {"runs": rows, "load_average_1min_at_end": round(os.getloadavg()[0], 1),
            "setup_seconds": round(setup, 1), "periods": periods, "hold": config.swarm.hold,
            "exits": exits,
            "alert_to_peer_incident": {"median": round(statistics.median(latencies), 2),
                                       "p90": round(_p90(latencies), 2), "min": min(latencies),
                                       "max": max(latencies)},
            "line_to_alert_median": round(statistics.median(r["line_to_alert"] for r in rows), 2),
            "target_seconds": 10.0}


def _p90(values: list[float]) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(0.9 * len(ranked) + 0.5) - 1))]  # nearest rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 runs instead of 9")
    parser.add_argument("--runs", type=int, default=None, help="runs (at least 5)")
    args = parser.parse_args()
    runs = max(5, args.runs or (5 if args.quick else 9))
    with tempfile.TemporaryDirectory(prefix="agent-peer-") as tmp:
        figures = measure(runs, Path(tmp))
    latency = figures["alert_to_peer_incident"]
    assert isinstance(latency, dict)
    rows = [(f"default period: {k}", f"{v:g} s" if isinstance(v, float) else str(v))
            for k, v in figures["periods"].items()]  # type: ignore[union-attr]
    rows += [("swarm.hold (the analyst's window, 300 s by default)", f"{figures['hold']:g} s for the bench"),
             ("set-up (start, rule compilation, B's ingest)", f"{figures['setup_seconds']} s"),
             ("line → alert at A, median", f"{figures['line_to_alert_median']:.2f} s"),
             (f"alert at A → incident at B, median of {runs}", f"{latency['median']:.2f} s"),
             ("alert at A → incident at B, p90", f"{latency['p90']:.2f} s"),
             ("target", f"≤ {figures['target_seconds']:g} s: {'met' if latency['p90'] <= 10 else 'not met'} (p90)"),
             ("load average (1 min) at the end: 2 cores, shared", str(figures["load_average_1min_at_end"])),
             ("agents' exit status after SIGTERM", ", ".join(map(str, figures["exits"])))]  # type: ignore[arg-type]
    report("agent_peer", figures, rows, args.quick)


if __name__ == "__main__":
    main()
