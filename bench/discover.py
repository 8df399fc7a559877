"""Discovery: flow events aggregated per second, memory per 1M distinct flows, and re-discovery on the demo.

    python bench/discover.py [--quick]

1. Throughput: `Discovery.observe` over Suricata-flow-shaped events (the fields the parser produces),
   median of RUNS runs, against a baseline measured in the same run (a loop that only reads the same
   five fields of every event: the floor of any per-event work in Python). Target >= 100,000/s.
2. Memory: resident memory added by a Discovery holding 1M distinct flows (between 1M distinct
   clients-server pairs of 60k addresses), median of RUNS runs in fresh processes. Target <= 500 MB.
   --quick measures 200k flows and scales (labelled).
3. Re-discovery: a day of the demo ecosystem's traffic (`discover.simulate`, from the full inventory)
   plus the demo's own logs, ingested through the real parsers; 20 % of the assets and 20 % of the flows
   removed from the inventory at random (5 seeds); recall of removed devices and flows, false
   "undeclared" on the untouched part. Targets: >= 90 % devices, >= 95 % flows, <= 5 % false.
4. Real captures: the shared Zeek and Suricata samples (../shared/data), ingested and discovered with no
   inventory: devices, flows, fingerprinted devices, seconds (skipped when the data is absent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report
from healthswarm.model import Event

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEALTHSWARM_SHARED_DATA", ROOT.parent / "shared" / "data"))
RUNS = 5


def flow_events(n: int, distinct: int) -> list[Event]:
    base = datetime(2026, 11, 27, tzinfo=UTC)
    out = []
    for i in range(n):
        k = i % distinct
        fields = {"event.kind": "event", "event.module": "suricata", "event.dataset": "suricata.flow",
                  "observer.type": "suricata", "source.ip": f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}",
                  "source.port": 49152 + i % 16000, "destination.ip": f"10.200.{(k >> 6) & 63}.{k & 63}",
                  "destination.port": 443, "network.transport": "tcp", "network.protocol": "tls",
                  "source.bytes": 1200, "destination.bytes": 5400}
        out.append(Event(timestamp=base + timedelta(seconds=i // 100), fields=fields, original=None))
    return out


def throughput(quick: bool) -> dict[str, object]:
    from healthswarm.inventory.discover import Discovery

    n = 200_000 if quick else 1_000_000
    events = flow_events(n, n // 4)
    rates, baselines = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        for e in events:
            f = e.fields
            f.get("source.ip"), f.get("destination.ip"), f.get("destination.port"), f.get("network.transport")
            f.get("event.dataset")
        baselines.append(n / (time.perf_counter() - start))
        d = Discovery()
        start = time.perf_counter()
        observe = d.observe
        for e in events:
            observe(e)
        rates.append(n / (time.perf_counter() - start))
        assert len(d.flows) == n // 4
    # the picture into a report (the diff against the demo inventory): once, on the last run's flows
    from healthswarm.demo import ECOSYSTEM
    from healthswarm.inventory import load_inventory
    from healthswarm.inventory.discover import compare, load_fingerprints

    inventory, prints = load_inventory([ECOSYSTEM]), load_fingerprints()
    start = time.perf_counter()
    compare(d, inventory, prints)
    report_s = time.perf_counter() - start
    return {"events": n, "distinct_flows": n // 4, "runs": RUNS, "report_s_one_run": round(report_s, 2),
            "flow_events_per_s_median": round(statistics.median(rates)),
            "flow_events_per_s_runs": [round(r) for r in rates],
            "baseline_field_reads_per_s_median": round(statistics.median(baselines))}


_MEMORY = r"""
import sys
from datetime import UTC, datetime
from healthswarm.inventory.discover import Discovery
from healthswarm.model import Event

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

n = int(sys.argv[1])
base = datetime(2026, 11, 27, tzinfo=UTC)
d = Discovery()
observe = d.observe
clients = [f"10.{(k >> 8) & 255}.{k & 255}.{(k >> 16) & 255}" for k in range(60_000)]
servers = [f"10.200.{(k >> 6) & 255}.{k & 63}" for k in range(n // 60_000 + 1)]
before = rss()
for i in range(n):
    fields = {"event.dataset": "suricata.flow", "source.ip": clients[i % 60_000],
              "destination.ip": servers[i // 60_000], "destination.port": 443, "source.port": 50000,
              "network.transport": "tcp", "source.bytes": 100, "destination.bytes": 200}
    observe(Event(timestamp=base, fields=fields, original=None))
assert len(d.flows) == n, len(d.flows)
print(rss() - before)
"""


def memory(quick: bool) -> dict[str, object]:
    n = 200_000 if quick else 1_000_000
    samples = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", _MEMORY, str(n)], capture_output=True, text=True, check=True)
        samples.append(int(out.stdout.strip()) / 1e6)
    per_million = statistics.median(samples) * 1_000_000 / n
    return {"distinct_flows": n, "runs": RUNS, "mb_added_median": round(statistics.median(samples), 1),
            "mb_per_1m_flows": round(per_million, 1), "scaled_from_smaller": n != 1_000_000}


def _ingest(store: object, files: list[Path]) -> float:
    from healthswarm.ingest.pipeline import Pipeline
    from healthswarm.ingest.sources.file import ingest_file

    start = time.perf_counter()
    pipeline = Pipeline.for_store(store)  # type: ignore[arg-type]
    try:
        for path in files:
            ingest_file(pipeline, path)
    finally:
        pipeline.close()
    return time.perf_counter() - start


def rediscovery(quick: bool) -> dict[str, object]:
    from healthswarm.demo import ECOSYSTEM, LOGS
    from healthswarm.inventory import load_inventory
    from healthswarm.inventory.discover import compare, load_fingerprints
    from healthswarm.inventory.discover.evaluate import holdout, score
    from healthswarm.inventory.discover.service import observe_stored
    from healthswarm.inventory.discover.simulate import simulate
    from healthswarm.store import Store

    full = load_inventory([ECOSYSTEM])
    prints = load_fingerprints()
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate(full, Path(tmp) / "traffic", seed=7)
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        setup = _ingest(store, [*sim.files, *sorted(LOGS.iterdir())])
        start = time.perf_counter()
        discovery = observe_stored(store)
        observe_s = time.perf_counter() - start
        seeds = [42] if quick else [42, 43, 44, 45, 46]
        per_seed = []
        for seed in seeds:
            reduced, assets, flows = holdout(full, 0.2, seed)
            per_seed.append(score(compare(discovery, reduced, prints), full, reduced, assets, flows, sim.contradicted))
        store.close()

    def col(section: str, key: str) -> list[float]:
        return [s[section][key] for s in per_seed if s[section][key] is not None]

    return {
        "traffic": {"flow_records": sim.flow_records, "announcements": sim.announcements, "events": discovery.events,
                    "ingest_s_setup": round(setup, 2), "discover_from_store_s": round(observe_s, 3)},
        "seeds": seeds,
        "device_recall_median": statistics.median(col("devices", "recall")),
        "device_recall_min": min(col("devices", "recall")),
        "flow_recall_median": statistics.median(col("flows", "recall")),
        "flow_recall_min": min(col("flows", "recall")),
        "false_undeclared_flow_rate_max": max(col("flows", "false_undeclared_rate")),
        "false_undeclared_devices_max": max(col("devices", "false_undeclared_on_untouched")),
        "fingerprint_vendor_agrees_median": statistics.median(col("devices", "fingerprint_vendor_agrees")),
        "contradiction_recall_median": statistics.median([s["contradictions"]["recall"] for s in per_seed
                                                          if s["contradictions"]["recall"] is not None]),
        "per_seed": per_seed,
    }


def real_captures() -> dict[str, object]:
    from healthswarm.inventory.discover import compare, load_fingerprints
    from healthswarm.inventory.discover.service import observe_stored
    from healthswarm.model import Inventory
    from healthswarm.store import Store

    out: dict[str, object] = {}
    for name, folder in (("zeek", SHARED / "zeek"), ("suricata", SHARED / "suricata")):
        if not folder.is_dir():
            out[name] = {"skipped": f"{folder} absent"}
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".log", ".json"))
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{tmp}/real.db")
            setup = _ingest(store, files)
            start = time.perf_counter()
            discovery = observe_stored(store)
            rep = compare(discovery, Inventory(), load_fingerprints())
            seconds = time.perf_counter() - start
            store.close()
        s = rep.summary()
        out[name] = {"files": len(files), "events": s["events"], "flow_events": s["flow_events"],
                     "internal_devices": s["devices_seen"], "flows": s["flows"], "fingerprinted": s["fingerprinted"],
                     "fingerprints": sorted({f"{d.fingerprint.vendor} {d.fingerprint.product}".strip()
                                             for d in rep.devices if d.fingerprint}),
                     "ingest_s_setup": round(setup, 2), "discover_s": round(seconds, 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    load_before = os.getloadavg()
    figures = {"throughput": throughput(quick), "memory": memory(quick), "rediscovery": rediscovery(quick),
               "real_captures": real_captures()}
    # the machine is shared: its load says how much the rates above had to share the two cores
    figures["load_average_1m"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    t, m, r = figures["throughput"], figures["memory"], figures["rediscovery"]
    rows = [
        ("flow events/s aggregated (median)", f"{t['flow_events_per_s_median']:,}"),
        ("baseline: five field reads/s (same run)", f"{t['baseline_field_reads_per_s_median']:,}"),
        (f"report (diff) of {t['distinct_flows']:,} flows, s (one run)", f"{t['report_s_one_run']}"),
        ("MB per 1M distinct flows (median)" + (" [scaled from 200k]" if m["scaled_from_smaller"] else ""),
         f"{m['mb_per_1m_flows']}"),
        ("demo: removed devices found again (median / min)",
         f"{r['device_recall_median']:.3f} / {r['device_recall_min']:.3f}"),
        ("demo: removed flows found again (median / min)",
         f"{r['flow_recall_median']:.3f} / {r['flow_recall_min']:.3f}"),
        ("demo: false undeclared flows on untouched part (max)", f"{r['false_undeclared_flow_rate_max']:.3f}"),
        ("demo: fingerprint vendor agrees (median)", f"{r['fingerprint_vendor_agrees_median']:.3f}"),
        ("demo: simulated version contradictions found (median)", f"{r['contradiction_recall_median']:.3f}"),
        ("demo: stored events read back and observed per s",
         f"{r['traffic']['events'] / r['traffic']['discover_from_store_s']:,.0f}"),
        ("load average (1 min) before / after", f"{figures['load_average_1m']['before']} / "
                                                f"{figures['load_average_1m']['after']}"),
    ]
    for name, info in figures["real_captures"].items():  # type: ignore[union-attr]
        if "skipped" not in info:
            rows.append((f"{name} samples: devices / flows / fingerprinted",
                         f"{info['internal_devices']} / {info['flows']} / {info['fingerprinted']}"))
    report("discover", figures, rows, quick)


if __name__ == "__main__":
    main()
