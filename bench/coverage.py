"""Benchmark: ATT&CK coverage and precision of the default rule packs on the OTRF Security-Datasets archives.

For every Windows archive of ../shared/data/windows/security-datasets whose `_metadata` names ATT&CK
techniques, the SigmaHQ snapshot alone ("pack off") and the snapshot plus healthswarm's pack ("pack
on") are run over its events. A data set is *covered* when a fired rule names one of its labelled
techniques (exact) or the same parent technique (parent). The archives are split once, by a hash of
the metadata id (archives of one metadata id stay together), into `dev` (the pack was written
against these) and `held-out` (never looked at while writing rules).

Precision: per rule, the data sets of another technique it fires on (out-of-technique), and the
median number of out-of-technique rules per data set with the pack off and on; each pack rule is
also run over the EVTX attack samples and the demo logs.

Timings (median of --runs, default 5): cold compile of the default rule set, load from the cache,
and events/s of the detection pass over every data set with the pack off and on.

    python bench/coverage.py [--quick] [--runs N]

Prints a table and writes bench/results/coverage.json. Data: OTRF/Security-Datasets (MIT),
sbousseaden/EVTX-ATTACK-SAMPLES (GPL-3.0, test data only), SigmaHQ rules (DRL 1.1).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("HEALTHSWARM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = DATA / "windows" / "security-datasets"
EVTX_SAMPLES = DATA / "windows" / "evtx-attack-samples"
ATTACK_JSON = DATA / "attack" / "enterprise-attack.json"

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from common import report  # noqa: E402
from healthswarm.detect.coverage import v18_id  # noqa: E402
from healthswarm.detect.sigma import SigmaDetector, load_rules  # noqa: E402
from healthswarm.detect.sigma.packs import HEALTHSWARM_PACK, pack_paths  # noqa: E402
from healthswarm.ingest.formats import SNIFF_BYTES  # noqa: E402
from healthswarm.ingest.pipeline import detect  # noqa: E402
from healthswarm.model import Event  # noqa: E402

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def split_of(metadata_id: str) -> str:
    """dev or held-out, fixed by the metadata id (so variants of one data set never straddle the split)."""
    return "held-out" if hashlib.blake2b(metadata_id.encode(), digest_size=8).digest()[0] % 2 else "dev"


def labels(root: Path = DATASETS) -> dict[str, tuple[str, list[str]]]:
    """archive name → (metadata id, labelled techniques) for the archives `_metadata` describes."""
    import yaml

    archives = {p.name for p in root.rglob("*") if p.name.endswith(ARCHIVE_SUFFIXES)}
    out: dict[str, tuple[str, list[str]]] = {}
    for meta in sorted((root / "_metadata").glob("*.yaml")):
        doc = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        techniques = sorted({m["technique"] + (f".{m['sub-technique']}" if m.get("sub-technique") else "")
                             for m in doc.get("attack_mappings") or [] if m.get("technique")})
        techniques = [t for t in techniques if t != "T0000"]
        for item in doc.get("files") or []:
            name = os.path.basename(str(item.get("link", "")))
            if name in archives and techniques:
                out[name] = (str(doc.get("id")), techniques)
    return out


def extract(archive: Path, into: Path) -> list[Path]:
    """The archive's members, extracted (a truncated tar.gz keeps what was read before the cut)."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(into)
        else:
            with tarfile.open(archive, "r:*") as tf:
                try:
                    for member in tf:
                        if member.isfile():
                            tf.extract(member, into, filter="data")
                except (EOFError, tarfile.ReadError, OSError):
                    pass
    except (zipfile.BadZipFile, tarfile.ReadError, OSError, EOFError):
        pass
    return sorted(p for p in into.rglob("*") if p.is_file() and "__MACOSX" not in p.parts
                  and not p.name.startswith("._"))


def read_events(files: list[Path]) -> list[Event]:
    events: list[Event] = []
    for path in files:
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
                fh.seek(0)
                fmt = detect(head, path.name)
                if fmt is not None:
                    events.extend(e for e in fmt.parse(fh, str(path)) if isinstance(e, Event))
        except (OSError, EOFError, ValueError):
            continue
    events.sort(key=lambda e: e.timestamp)
    return events


def load_datasets(quick: bool) -> dict[str, dict[str, Any]]:
    labelled = labels()
    names = sorted(labelled)
    if quick:
        names = names[::4]
    out: dict[str, dict[str, Any]] = {}
    paths = {p.name: p for p in DATASETS.rglob("*") if p.name in labelled}
    with tempfile.TemporaryDirectory(prefix="hs-coverage-") as tmp:
        for name in names:
            events = read_events(extract(paths[name], Path(tmp) / name))
            mid, techniques = labelled[name]
            out[name] = {"metadata_id": mid, "techniques": techniques, "split": split_of(mid), "events": events}
    return out


def fire(ruleset: Any, events: list[Event]) -> dict[str, dict[str, Any]]:
    """rule key → {title, techniques (v18 ids), detections} over one stream."""
    detector = SigmaDetector(ruleset)
    fired: dict[str, dict[str, Any]] = {}

    def note(alerts: list[Any]) -> None:
        for a in alerts:
            techniques = sorted({v18_id(t.id) for t in a.techniques})
            row = fired.setdefault(a.rule_id, {"title": a.title, "techniques": techniques,
                                               "source": a.rule_source, "detections": 0})
            row["detections"] += 1

    for event in events:
        alerts = detector.detect(event)
        if alerts:
            note(alerts)
    note(detector.flush())
    return fired


def judge(labelled: list[str], fired: dict[str, dict[str, Any]]) -> dict[str, Any]:
    parents = {t.split(".")[0] for t in labelled}
    inside = {k for k, r in fired.items() if any(t.split(".")[0] in parents for t in r["techniques"])}
    return {
        "parent": bool(inside),
        "exact": any(t in labelled for r in fired.values() for t in r["techniques"]),
        "in_technique_rules": sorted(fired[k]["title"] for k in inside),
        "out_of_technique_rules": sorted(r["title"] for k, r in fired.items() if k not in inside),
    }


def is_pack(row: dict[str, Any]) -> bool:
    return str(HEALTHSWARM_PACK) in str(row.get("source", ""))


def pass_rate(ruleset: Any, datasets: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """(events/s wall, events/s CPU) of one detection pass over every data set."""
    count = sum(len(d["events"]) for d in datasets.values())
    wall, cpu = time.perf_counter(), time.process_time()
    for d in datasets.values():
        fire(ruleset, d["events"])
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the data sets, 2 timing runs")
    parser.add_argument("--runs", type=int, default=None, help="timing runs (median reported; default 5, quick 2)")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    if not DATASETS.is_dir():
        sys.exit(f"shared data not available: {DATASETS}")

    # --- rule sets: compile time cold (no cache) and from the cache
    with tempfile.TemporaryDirectory(prefix="hs-coverage-cache-") as cache:
        cache_dir = Path(cache)
        default_paths = pack_paths()
        cold, cached = [], []
        for _ in range(runs):
            started = time.process_time()
            load_rules(default_paths)
            cold.append(time.process_time() - started)
        load_rules(default_paths, cache_dir=cache_dir)
        for _ in range(runs):
            started = time.process_time()
            load_rules(default_paths, cache_dir=cache_dir)
            cached.append(time.process_time() - started)
        off = load_rules(pack_paths(["sigmahq"]), cache_dir=cache_dir)
        on = load_rules(pack_paths(["sigmahq", "healthswarm"]), cache_dir=cache_dir)
        default = load_rules(default_paths, cache_dir=cache_dir)

    setup = time.perf_counter()
    datasets = load_datasets(args.quick)
    setup_seconds = time.perf_counter() - setup
    events = sum(len(d["events"]) for d in datasets.values())

    # --- coverage and precision, per data set
    rows: dict[str, dict[str, Any]] = {}
    for name, d in datasets.items():
        fired_off, fired_on = fire(off, d["events"]), fire(on, d["events"])
        rows[name] = {
            "metadata_id": d["metadata_id"], "split": d["split"], "techniques": d["techniques"],
            "events": len(d["events"]),
            "pack_off": judge(d["techniques"], fired_off), "pack_on": judge(d["techniques"], fired_on),
            "pack_rules_fired": {r["title"]: r["techniques"] for r in fired_on.values() if is_pack(r)},
        }

    summary: dict[str, Any] = {}
    for split in ("dev", "held-out", "all"):
        chosen = [r for r in rows.values() if split == "all" or r["split"] == split]
        n = len(chosen)
        entry: dict[str, Any] = {"datasets": n}
        for side in ("pack_off", "pack_on"):
            parent = sum(r[side]["parent"] for r in chosen)
            entry[side] = {
                "covered_parent": parent, "covered_exact": sum(r[side]["exact"] for r in chosen),
                "covered_parent_per_41": round(41 * parent / n, 1) if n else 0.0,
                "median_out_of_technique_rules": median([len(r[side]["out_of_technique_rules"]) for r in chosen]),
            }
        entry["uncovered_with_pack"] = sorted(k for k, r in rows.items() if r in chosen and not r["pack_on"]["parent"])
        summary[split] = entry

    families: dict[str, dict[str, int]] = defaultdict(lambda: Counter())
    for r in rows.values():
        for family in sorted({t.split(".")[0] for t in r["techniques"]}):
            f = families[family]
            f["datasets"] += 1
            f[f"{r['split']}_datasets"] += 1
            f["pack_off"] += r["pack_off"]["parent"]
            f["pack_on"] += r["pack_on"]["parent"]

    # --- precision of each pack rule: out-of-technique firings over every other data set
    per_rule: dict[str, dict[str, Any]] = defaultdict(lambda: {"in_technique": [], "out_of_technique": []})
    for name, r in rows.items():
        parents = {t.split(".")[0] for t in r["techniques"]}
        for title, techs in r["pack_rules_fired"].items():
            inside = any(t.split(".")[0] in parents for t in techs)
            per_rule[title]["in_technique" if inside else "out_of_technique"].append(name)
    pack_titles = sorted({rule.meta.title for rule in [*on.rules, *on.correlations]
                          if str(HEALTHSWARM_PACK) in rule.meta.source})
    pack_only = load_rules([HEALTHSWARM_PACK])
    evtx_files = sorted(EVTX_SAMPLES.rglob("*.evtx")) if EVTX_SAMPLES.is_dir() else []
    evtx_fired: dict[str, list[str]] = defaultdict(list)
    for path in evtx_files:
        for row in fire(pack_only, read_events([path])).values():
            evtx_fired[row["title"]].append(f"{path.parent.name}/{path.name}")
    demo_logs = sorted((ROOT / "src" / "healthswarm" / "demo" / "logs").glob("*"))
    demo_fired = Counter()
    for row in fire(pack_only, read_events(demo_logs)).values():
        demo_fired[row["title"]] += row["detections"]
    precision = {t: {"datasets_in_technique": len(per_rule[t]["in_technique"]),
                     "datasets_out_of_technique": len(per_rule[t]["out_of_technique"]),
                     "out_of_technique": per_rule[t]["out_of_technique"],
                     "evtx_attack_sample_files": len(evtx_fired.get(t, [])),
                     "evtx_attack_samples": evtx_fired.get(t, []),
                     "demo_detections": demo_fired.get(t, 0)} for t in pack_titles}

    # --- timings: events/s of the pass over every data set, pack off and on
    rate_off = [pass_rate(off, datasets) for _ in range(runs)]
    rate_on = [pass_rate(on, datasets) for _ in range(runs)]

    figures = {
        "data": {"datasets": len(rows), "events": events, "evtx_attack_sample_files": len(evtx_files),
                 "demo_logs": [p.name for p in demo_logs], "read_seconds": round(setup_seconds, 1),
                 "sources": "OTRF/Security-Datasets @ d9d40ef123 (MIT); sbousseaden/EVTX-ATTACK-SAMPLES @ 4ceed2f470; "
                            "SigmaHQ/sigma @ 8eaafff1f2 (DRL 1.1)"},
        "split": "blake2b(metadata id)[0] odd → held-out; archives of one metadata id stay on one side; "
                 "archives without _metadata or labelled T0000 are left out",
        "technique_ids": "SigmaHQ's ATT&CK v19 ids (T1685/T1686) mapped to v18 (T1562/T1070) before comparing; "
                         "see healthswarm.detect.coverage.RENUMBERED",
        "rules": {"pack_off": len(off.rules) + len(off.correlations), "pack_on": len(on.rules) + len(on.correlations),
                  "default": len(default.rules) + len(default.correlations),
                  "pack": len(pack_only.rules) + len(pack_only.correlations),
                  "not_evaluable_default": len(default.problems)},
        "compile_cpu_seconds": {"cold_median": round(median(cold), 2), "cached_median": round(median(cached), 3),
                                "runs": runs, "cold_all": [round(x, 2) for x in cold]},
        "events_per_second": {
            "pack_off": {"wall_median": round(median([r[0] for r in rate_off])),
                         "cpu_median": round(median([r[1] for r in rate_off]))},
            "pack_on": {"wall_median": round(median([r[0] for r in rate_on])),
                        "cpu_median": round(median([r[1] for r in rate_on]))},
            "runs": runs},
        "summary": summary,
        "families": {k: dict(v) for k, v in sorted(families.items())},
        "pack_rule_precision": precision,
        "per_dataset": rows,
    }
    ho, dv = summary["held-out"], summary["dev"]
    table = [
        ("data sets (dev / held-out)", f"{dv['datasets']} / {ho['datasets']}"),
        ("events", f"{events:,}"),
        ("held-out covered, parent: pack off → on",
         f"{ho['pack_off']['covered_parent']} → {ho['pack_on']['covered_parent']} of {ho['datasets']} "
         f"(per 41: {ho['pack_on']['covered_parent_per_41']})"),
        ("held-out covered, exact: pack off → on",
         f"{ho['pack_off']['covered_exact']} → {ho['pack_on']['covered_exact']}"),
        ("dev covered, parent: pack off → on", f"{dv['pack_off']['covered_parent']} → {dv['pack_on']['covered_parent']}"
                                               f" of {dv['datasets']}"),
        ("median out-of-technique rules / data set (held-out)",
         f"{ho['pack_off']['median_out_of_technique_rules']} → {ho['pack_on']['median_out_of_technique_rules']}"),
        ("median out-of-technique rules / data set (all)",
         f"{summary['all']['pack_off']['median_out_of_technique_rules']} → "
         f"{summary['all']['pack_on']['median_out_of_technique_rules']}"),
        ("pack rules firing outside their technique (data sets)",
         ", ".join(f"{t} ({p['datasets_out_of_technique']})" for t, p in precision.items()
                   if p["datasets_out_of_technique"]) or "none"),
        ("pack rules firing on EVTX attack samples (files)",
         ", ".join(f"{t} ({p['evtx_attack_sample_files']})" for t, p in precision.items()
                   if p["evtx_attack_sample_files"]) or "none"),
        ("pack detections on the demo logs", str(sum(demo_fired.values()))),
        ("default rule set: rules, compile cold / cached (CPU s)",
         f"{figures['rules']['default']:,}, {median(cold):.2f} / {median(cached):.3f}"),
        ("events/s CPU, pack off / on", f"{figures['events_per_second']['pack_off']['cpu_median']:,} / "
                                        f"{figures['events_per_second']['pack_on']['cpu_median']:,}"),
    ]
    report("coverage", figures, table, args.quick)


if __name__ == "__main__":
    main()
