"""Benchmark of the API and of correlation.

    python bench/api.py [--quick] [--events N] [--runs 5] [--db postgresql://…/EMPTY_DATABASE]

A temporary SQLite store gets the demo ecosystem, synthetic events (full: 1,000,000; --quick: 100,000) and
the incidents that synthetic alerts correlate into. uvicorn serves the app in a child process on a free
loopback port; an httpx client with keep-alive measures p50/p99 latency and requests/s (sequential) for a
page of 100 incidents, event searches (first page, a filtered page, a deep cursor page) and the ecosystem
view (10,000 open incidents over the demo's assets): p50/p99 within each of 5 rounds of 200 requests, the
median over the rounds, and the server's CPU time per request (its /proc stat, load-independent); the set-up
(fill, correlation, saving; on PostgreSQL a VACUUM ANALYZE after it) reported apart, the 1-minute load average
at start and end.
Baselines, measured in the same run: /api/v1/whoami over the same HTTP path (the token check and nothing else:
ratio_p99_to_whoami says how much of a p99 is the endpoint's own work on this loaded machine), and the same
query called in process, without HTTP (ratio = HTTP p50 / direct p50; direct_cpu_ms its CPU time).
Correlation: alerts/s through `detect.correlate.Correlator` (target ≥ 10,000/s).
Targets: p99 ≤ 100 ms for a page of 100 incidents or events and for the ecosystem view.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from common import cpu_timed, peak_rss_mib, report, timed
from healthswarm.api.auth import create_token
from healthswarm.demo import ECOSYSTEM
from healthswarm.detect import service as detect_service
from healthswarm.detect.correlate import Correlator
from healthswarm.ingest import service as ingest_service
from healthswarm.inventory import load_inventory
from healthswarm.inventory import service as inventory_service
from healthswarm.model import Alert, AttackRef, Event, EventRef, Inventory
from healthswarm.model.event import event_key
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents
from healthswarm.store.events import insert_events
from healthswarm.store.inventory import replace_inventory

START = datetime(2026, 11, 1, tzinfo=UTC)
OBSERVERS = ("suricata", "windows", "hl7", "dicom", "ehr-audit", "zeek")
TACTICS = (("initial-access", "TA0001", "T1566.001"), ("execution", "TA0002", "T1059.001"),
           ("credential-access", "TA0006", "T1003.001"), ("discovery", "TA0007", "T1016"),
           ("lateral-movement", "TA0008", "T1021.002"), ("collection", "TA0009", "T1213"),
           ("exfiltration", "TA0010", "T1041"))
LEVELS = ("low", "medium", "high", "critical")
BASELINE = "whoami (baseline: the token check only)"


def fill_events(store: Store, inventory: Inventory, count: int) -> float:
    """Insert `count` synthetic events; returns seconds."""
    rng = random.Random(7)
    asset_ids = [a.id for a in inventory.assets]
    orgs = {a.id: a.organisation for a in inventory.assets}
    batch: list[Event] = []
    started = time.perf_counter()
    for n in range(count):
        asset = rng.choice(asset_ids)
        fields = {"observer.type": OBSERVERS[n % len(OBSERVERS)], "asset.id": asset, "organization.id": orgs[asset],
                  "event.kind": "event", "source.ip": f"10.{n % 250}.{(n // 250) % 250}.{n % 200}",
                  "user.name": f"user{n % 500}"}
        batch.append(Event(START + timedelta(milliseconds=250 * n), fields, None, "bench", n + 1, n + 1,
                           event_key("bench", n)))
        if len(batch) == 50_000:
            with store.transaction() as conn:
                insert_events(conn, batch)
            batch = []
    if batch:
        with store.transaction() as conn:
            insert_events(conn, batch)
    return time.perf_counter() - started


def synthetic_alerts(inventory: Inventory, count: int, per_campaign: int = 10) -> list[Alert]:
    """Campaigns of `per_campaign` alerts within minutes, each on one asset, user and address, half an hour apart:
    an asset comes round again only after days, so each campaign is its own incident (as in a real week)."""
    rng = random.Random(11)
    asset_ids = [a.id for a in inventory.assets]
    out = []
    for n in range(count):
        campaign = n // per_campaign
        tactic, tactic_id, technique = TACTICS[min(n % per_campaign, len(TACTICS) - 1)]
        out.append(Alert(
            detector="bench", rule_id=f"rule-{n % 40}", title=f"Bench rule {n % 40}", level=rng.choice(LEVELS),
            timestamp=START + timedelta(minutes=30 * campaign, seconds=20 * (n % per_campaign)),
            events=(EventRef("bench", n + 1, f"k{n}"),), techniques=(AttackRef(technique),),
            tactics=(AttackRef(tactic_id, shortname=tactic),), assets=(asset_ids[campaign % len(asset_ids)],),
            details={"entities": {"user": [f"user{campaign}"],
                                  "ip": [f"10.9.{campaign // 250 % 250}.{campaign % 250}"]}},
        ))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int) -> None:
    """Child process: the app over `url` on 127.0.0.1:`port`, with its real token authentication."""
    import uvicorn

    from healthswarm.api import create_app
    from healthswarm.api.heap import freeze_startup_heap
    from healthswarm.config import Settings

    store = Store.open(url)
    app = create_app(Settings(db=url), engine=store.engine)
    freeze_startup_heap()  # as `healthswarm serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: httpx.Client, path: str, requests: int, headers: dict[str, str], runs: int,
            server: int) -> dict[str, Any]:
    """`runs` rounds of `requests` sequential GETs after 10 unmeasured ones: p50/p99 within each round and the
    `server` process's CPU time per request in each round, then the median over the rounds."""
    for _ in range(10):
        client.get(path, headers=headers).raise_for_status()
    p50s, p99s, rates, cpus = [], [], [], []
    for _ in range(runs):
        latencies = []
        started, server_cpu = time.perf_counter(), cpu_seconds_of(server)
        for _ in range(requests):
            t = time.perf_counter()
            client.get(path, headers=headers).raise_for_status()
            latencies.append((time.perf_counter() - t) * 1000)
        rates.append(requests / (time.perf_counter() - started))
        cpus.append((cpu_seconds_of(server) - server_cpu) * 1000 / requests)
        p50s.append(statistics.median(latencies))
        p99s.append(percentile(latencies, 0.99))
    return {"p50_ms": round(statistics.median(p50s), 2), "p99_ms": round(statistics.median(p99s), 2),
            "p99_ms_per_run": [round(v, 2) for v in p99s], "requests_per_s": round(statistics.median(rates), 1),
            "server_cpu_ms_per_request": round(statistics.median(cpus), 2), "requests_per_run": requests,
            "runs": runs}


def direct(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of `repeat` calls."""
    times, cpu = [], []
    for _ in range(repeat):
        _, seconds = timed(fn)
        _, cpu_seconds = cpu_timed(fn)
        times.append(seconds * 1000)
        cpu.append(cpu_seconds * 1000)
    return round(statistics.median(times), 2), round(statistics.median(cpu), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", help="an empty database URL to measure on instead of a temporary SQLite file "
                                     "(results then go to api-<backend>.json)")
    parser.add_argument("--events", type=int, help="events stored (default 1,000,000; 100,000 quick)")
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per endpoint (default 5)")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    n_events = args.events or (100_000 if args.quick else 1_000_000)
    n_alerts = 20_000 if args.quick else 100_000
    requests = 40 if args.quick else 200
    with tempfile.TemporaryDirectory(prefix="hs-bench-api-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store.open(url)
        store.clear()
        inventory = load_inventory([ECOSYSTEM])
        with store.transaction() as conn:
            replace_inventory(conn, inventory)
        fill_seconds = fill_events(store, inventory, n_events)
        setup_started = time.perf_counter()
        alerts = synthetic_alerts(inventory, n_alerts)
        correlator = Correlator(inventory.assets)
        incidents, corr_seconds = timed(lambda: correlator.add_all(alerts))
        corr_rate = n_alerts / corr_seconds
        incident_of = {a: i.id for i in incidents for a in i.alert_ids}
        with store.transaction() as conn:
            # in slices: save_alerts looks the ids up in one IN list, and PostgreSQL takes at most 65,535 parameters
            for start in range(0, n_alerts, 10_000):
                save_alerts(conn, alerts[start:start + 10_000], incident_of)
            save_incidents(conn, incidents)
        if store.backend == "postgresql":
            # what autovacuum does within a minute of a bulk load: statistics and the visibility map, without
            # which the planner sorts 10,000 incident_assets rows instead of reading them in index order
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        setup_seconds = fill_seconds + time.perf_counter() - setup_started
        with store.read() as conn:
            last_id = ingest_service.find_events(conn, None, None, None, None, 0, 1)[0][0]["id"] + n_events - 200
        from healthswarm.api.pages import encode

        deep = encode("e", last_id - 5000)
        asset = inventory.assets[0].id
        paths = {
            "incident list (100)": ("/api/v1/incidents?limit=100",
                                    lambda c: detect_service.list_incidents(c, limit=100)),
            "event search, first page (100)": ("/api/v1/events?limit=100",
                                               lambda c: ingest_service.find_events(c, None, None, None, None, 0, 100)),
            "event search, observer+asset (100)": (
                f"/api/v1/events?limit=100&observer_type=windows&asset={asset}",
                lambda c: ingest_service.find_events(c, None, None, "windows", asset, 0, 100)),
            "event search, deep cursor (100)": (f"/api/v1/events?limit=100&cursor={deep}",
                                                lambda c: ingest_service.find_events(c, None, None, None, None,
                                                                              last_id - 5000, 100)),
            "ecosystem view": ("/api/v1/ecosystem", inventory_service.ecosystem),
        }
        port = free_port()
        child = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])  # uvicorn: one process
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/api/v1/health")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or child.poll() is not None:
                            raise SystemExit("the API server did not start") from None
                        time.sleep(0.2)
                figures: dict[str, Any] = {
                    "events_stored": n_events, "incidents_stored": len(incidents), "alerts_stored": n_alerts,
                    "event_fill_per_s": round(n_events / fill_seconds), "setup_s": round(setup_seconds, 1)}
                endpoints = {}
                load_start = round(os.getloadavg()[0], 2)
                with store.transaction() as conn:
                    headers = {"Authorization": f"Bearer {create_token(conn, 'bench', 'viewer')}"}
                baseline = endpoints[BASELINE] = measure(client, "/api/v1/whoami", requests, headers, args.runs,
                                                         child.pid)
                for name, (path, call) in paths.items():
                    got = measure(client, path, requests, headers, args.runs, child.pid)
                    with store.read() as conn:
                        got["direct_p50_ms"], got["direct_cpu_ms"] = direct(lambda: call(conn), 50)  # noqa: B023
                    got["ratio_http_to_direct"] = round(got["p50_ms"] / max(got["direct_p50_ms"], 0.01), 2)
                    got["ratio_p99_to_whoami"] = round(got["p99_ms"] / max(baseline["p99_ms"], 0.01), 2)
                    got["meets_p99_100ms"] = got["p99_ms"] <= 100
                    endpoints[name] = got
        finally:
            child.terminate()
            child.wait(timeout=10)
        store.close()
    figures["endpoints"] = endpoints
    figures["correlation"] = {"alerts": n_alerts, "incidents": len(incidents), "alerts_per_s": round(corr_rate),
                              "target_per_s": 10_000, "ratio_to_target": round(corr_rate / 10_000, 2)}
    figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
    # the machine is shared: the 1-minute load average at the start and at the end of the measurements
    figures["load_average_1min"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    figures["statistic"] = ("p50/p99 within each round of sequential requests over HTTP, the median over the "
                            "rounds; server_cpu_ms_per_request: the server process's CPU time over a round / its "
                            "requests, median over the rounds; baselines: /api/v1/whoami over HTTP (same run), "
                            "direct_p50_ms / direct_cpu_ms: the same service call in process")
    rows = [(f"{name}: p50 / p99 / req/s / server CPU per request / direct p50",
             f"{e['p50_ms']} / {e['p99_ms']} ms / {e['requests_per_s']} / {e['server_cpu_ms_per_request']} ms / "
             f"{e.get('direct_p50_ms', '-')} ms") for name, e in endpoints.items()]
    rows += [("events stored", f"{n_events:,}"), ("incidents stored", f"{len(incidents):,}"),
             ("set-up (fill, correlation, saving)", f"{setup_seconds:,.1f} s"),
             ("correlation", f"{corr_rate:,.0f} alerts/s (target 10,000)"),
             ("peak RSS", f"{figures['peak_rss_mib']} MiB"),
             ("load average (1 min, shared machine)", f"{load_start} at start, {os.getloadavg()[0]:.2f} at end")]
    figures["backend"] = store.backend
    report("api" if store.backend == "sqlite" else f"api-{store.backend}", figures, rows, args.quick)


if __name__ == "__main__":
    main()
