"""Benchmark of one embedded agent (`healthswarm agent run`, here in-process): the whole detection suite on a
mixed stream of Suricata EVE, Sysmon (Windows JSON), HL7 v2 and FHIR AuditEvent records.

    python bench/agent.py [--quick] [--soak SECONDS] [--runs N] [--rate R] [--soak-only] [--modes both|split|one]

The stream: the demo's logs (src/healthswarm/demo/logs: suricata-eve.json, windows-sysmon.json, hl7-adt.hl7,
ehr-audit.ndjson; 505 events a copy), replicated with each copy moved two days later (so that copies are
distinct attacks, correlated into their own incidents, as days of a hospital's logs would be), written to four
files in the folder the agent follows. The agent runs with its defaults (every detector: the default Sigma
packs, sensors, per-asset baselines, clinical analytics, patient-privacy monitoring with the demo's staff
directory, the watchlist; correlation; live risk over the demo inventory, which is loaded first).

Both process layouts of the embedded agent are measured in the same run (`--modes both`, the default):
**split**, the sources in an ingest process and playbooks by policy in a responder process of their own
(`[agent] ingest_process = true`, `respond_process = true`, what "auto" picks with 2 or more CPUs:
agent/ingest_process.py, agent/respond_process.py), and **one** process (both false); runs alternate.

Measured:
- **drain**: the whole stream written before the agent starts; events/s from the agent being ready to every
  event stored and judged (ingest and detection running together, as they do), the median of the runs;
  start-up (imports, rule compilation, inventory, the ingest process) reported apart; CPU seconds per 1,000
  events of the agent's process and of its ingest process, apart;
- **baseline** in the same run, each run alternating with a drain run: the batch commands' way over the same
  files (`ingest` then `detect` over the whole store: detect/stage.py), events/s, median of the runs (suite
  construction apart);
- **sustained**: lines appended at a fixed rate (default 5,000 events/s) for a while, in each layout; whether the
  agent kept
  up (backlog at the end), and the latency from a line being written to the commit that stored its alert and
  the incident it joined (p50/p99 over every alert of EVE, Sysmon and FHIR lines; HL7 records are messages,
  not lines, and are left out of the latency);
- the same at 80 % of the measured drain rate where the target is above what the machine sustains (a backlog
  only grows there, and latency with it), as bench/scale.py measures latency;
- **soak**: that kept-up load for `--soak` seconds (full: 1,800, quick: 60): RSS of the agent's processes after
  warm-up (a fifth of the soak) and at the end of writing, each the median of a minute (`soak_rss`);
  `--soak-only --rate R` measures only the soak and adds it to the existing JSON;
  `--sustain-only --rate R --soak S` one sustained run of S seconds (the target rate longer than the 10 s or
  60 s runs), added as `sustained_long`.

The lines are written by a process of its own (in the agent's process the writer competed with the agent for
the GIL, and its bookkeeping was part of the RSS the soak reports).

Each agent's start-up heap is frozen out of the garbage collector's reach after it is built, as `agent run` does
(api/heap.py), and unfrozen after its run (this process builds many).

Figures are wall-clock on a shared machine: the drain also reports CPU seconds of the agent's process per
1,000 events, which other processes' load does not inflate as much.

Full: 5 drain and 5 baseline runs of 100,000 events, 5 sustained runs of 60 s; --quick: 5 drain and 5 baseline
runs of 30,000 events, 5 sustained runs of 10 s (`--runs` changes the count). Writes bench/results/agent.json.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from common import report
from healthswarm.agent.config import parse_config
from healthswarm.agent.detect import StepResult
from healthswarm.agent.runtime import Agent
from healthswarm.api.heap import freeze_startup_heap
from healthswarm.config import Settings
from healthswarm.detect.stage import detect_stored
from healthswarm.detect.suite import SuiteSpec, build_suite
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file
from healthswarm.inventory import load_inventory
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "healthswarm" / "demo"
FILES = {"eve.json": "suricata-eve.json", "sysmon.json": "windows-sysmon.json", "adt.hl7": "hl7-adt.hl7",
         "audit.ndjson": "ehr-audit.ndjson"}
LATENCY_FILES = ("eve.json", "sysmon.json", "audit.ndjson")
DAY0 = date(2026, 11, 27)
DEFAULT_COLLECTOR = gc.get_threshold()


def copy_lines(k: int) -> dict[str, list[str]]:
    """The demo's lines, moved 2·k days later."""
    day = DAY0 + timedelta(days=2 * k)
    before = day - timedelta(days=1)
    out = {}
    for name, source in FILES.items():
        text = (DEMO / "logs" / source).read_text(encoding="utf-8")
        text = (text.replace("2026-11-27", day.isoformat()).replace("2026-11-26", before.isoformat())
                .replace("20261127", day.strftime("%Y%m%d")))
        out[name] = [line for line in text.split("\n") if line.strip()]
    return out


class Corpus:
    def __init__(self) -> None:
        # the drains reuse their copies; a soak's thousands of copies must not stay, or their text is the
        # process's memory growth that the soak reports (it was: 2.5 million lines in a 30-minute run)
        self.copy = lru_cache(maxsize=128)(copy_lines)

    def per_copy(self) -> int:
        """Events in one copy (an HL7 message spans several lines: one event per MSH segment)."""
        return sum(sum(is_event(name, line) for line in lines) for name, lines in self.copy(0).items())


def is_event(name: str, line: str) -> bool:
    return not name.endswith(".hl7") or line.startswith("MSH|")


def unfreeze() -> None:
    """Undo freeze_startup_heap after an agent's run: this process builds many (and the batch baseline between
    them), so the last one's heap must be collectable and the collector as CPython sets it."""
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_COLLECTOR)


def workspace(base: Path) -> Settings:
    settings = Settings.load(base / "ws")
    settings.ensure_workspace()
    store = Store.open(settings.db_url)
    with store.transaction() as conn:
        replace_inventory(conn, load_inventory([DEMO / "ecosystem.yaml"]))
    store.close()
    (base / "logs").mkdir(exist_ok=True)
    return settings


def agent_config(base: Path, split: bool = True) -> Any:
    return parse_config({
        "agent": {"health": "", "organisation": "st-aurelia", "ingest_process": split, "respond_process": split},
        "sources": {"files": [{"paths": ["logs"], "rescan": 0.5}]},
        "detect": {"staff": str(DEMO / "staff.yaml")},
    }, "bench", base)


def caught_up(agent: Agent, logs: Path) -> bool:
    """Every byte of the four files read (their checkpoints at their sizes) and every stored event judged."""
    from healthswarm.store.events import list_checkpoints

    with agent.store.read() as conn:
        read = {cp.source: cp.position for cp in list_checkpoints(conn)}
    files = [logs / name for name in FILES]
    return all(read.get(str(f.resolve()), -1) >= f.stat().st_size for f in files) and agent.detector.backlog() == 0


def rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def ingest_pid(agent: Agent) -> int | None:
    return agent.ingest.pid if agent.ingest is not None else None


def responder_pid(agent: Agent) -> int | None:
    return agent.responder.pid if agent.responder is not None else None


def agent_rss_mib(agent: Agent) -> float:
    """The agent's process and its ingest and responder processes, if any."""
    return rss_mib() + sum(rss_mib(pid) for pid in (ingest_pid(agent), responder_pid(agent)) if pid is not None)


def cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a running process has used; 0 for none."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- drain ---------------------------------------------------------------------------------------------------

def drain_run(corpus: Corpus, copies: int, split: bool) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    try:
        settings = workspace(base)
        for name in FILES:
            with (base / "logs" / name).open("w", encoding="utf-8") as out:
                for k in range(copies):
                    out.write("\n".join(corpus.copy(k)[name]) + "\n")
        total = corpus.per_copy() * copies
        started = time.perf_counter()
        agent = Agent(agent_config(base, split), settings)
        freeze_startup_heap()  # as `agent run` does after building the agent
        agent.start()
        ready = time.perf_counter()
        child, responder = ingest_pid(agent), responder_pid(agent)
        cpu0, child0, responder0 = time.process_time(), cpu_s(child), cpu_s(responder)
        while not caught_up(agent, base / "logs"):
            time.sleep(0.05)
        done = time.perf_counter()
        cpu, child_cpu = time.process_time() - cpu0, cpu_s(child) - child0
        responder_cpu = cpu_s(responder) - responder0  # what it answered by the time detection caught up
        stats = agent.detector.stats
        agent.shutdown()
        agent.store.close()
        unfreeze()
        judged = agent.detector.stats.events
        return {"events": judged, "expected": total, "startup_s": ready - started, "seconds": done - ready,
                "events_per_s": judged / (done - ready),
                "cpu_s_per_1000_events": 1000 * (cpu + child_cpu + responder_cpu) / judged,
                "agent_cpu_s_per_1000_events": 1000 * cpu / judged,
                "ingest_cpu_s_per_1000_events": 1000 * child_cpu / judged,
                "respond_cpu_s_per_1000_events": 1000 * responder_cpu / judged,
                "alerts": stats.alerts, "incident_writes": stats.incidents_written}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def baseline_run(corpus: Corpus, copies: int) -> dict[str, float]:
    """The batch way: ingest the files, then detect over the whole store (detect/stage.py), same suite."""
    base = Path(tempfile.mkdtemp(prefix="bench-agent-base-"))
    try:
        settings = workspace(base)
        for name in FILES:
            with (base / "logs" / name).open("w", encoding="utf-8") as out:
                for k in range(copies):
                    out.write("\n".join(corpus.copy(k)[name]) + "\n")
        store = Store.open(settings.db_url)
        from healthswarm.agent.runtime import default_packs
        from healthswarm.detect.sigma import CACHE_SUBDIR

        spec: dict[str, Any] = {"staff": DEMO / "staff.yaml", "cache_dir": settings.workspace / CACHE_SUBDIR}
        if packs := default_packs():
            spec["packs"] = packs
        with store.read() as conn:
            from healthswarm.store.inventory import load_inventory as stored

            assets = stored(conn).assets
        t_setup = time.perf_counter()
        suite = build_suite(SuiteSpec(**spec), assets)
        total = corpus.per_copy() * copies
        t0 = time.perf_counter()
        pipeline = Pipeline.for_store(store, "st-aurelia")
        for name in FILES:
            ingest_file(pipeline, base / "logs" / name)
        t1 = time.perf_counter()
        result = detect_stored(store, suite.detectors)
        t2 = time.perf_counter()
        store.close()
        return {"events": total, "setup_s": t0 - t_setup, "ingest_s": t1 - t0, "detect_s": t2 - t1,
                "events_per_s": total / (t2 - t0), "alerts": len(result.alerts)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- sustained load and soak ---------------------------------------------------------------------------------

@dataclass
class Written:
    """What a writer process wrote: events, and per latency file the byte offset past each line with when it
    was written (compact arrays: a 30-minute soak writes millions of lines)."""

    events: int = 0
    ends: dict[str, tuple[array, array]] = dataclass_field(default_factory=dict)  # name → (offsets, times)

    def times_by_key(self, store: Store, logs: Path) -> dict[str, float]:
        """Event key → when its line was written. Keys are made from the file's identity (its checkpoint) and
        the byte offset past the line (ingest/sources/file.py), which stay true across the follower's passes
        (record numbers restart with each pass, so they cannot place a line)."""
        from healthswarm.model import event_key
        from healthswarm.store.events import list_checkpoints

        with store.read() as conn:
            identity = {cp.source: cp.identity for cp in list_checkpoints(conn)}
        out: dict[str, float] = {}
        for name, (offsets, times) in self.ends.items():
            ident = identity.get(str((logs / name).resolve()))
            if ident is not None:
                out.update((event_key(ident, end), when) for end, when in zip(offsets, times, strict=True))
        return out


def write_lines(logs: Path, rate: float, seconds: float, tick: float = 0.1) -> Written:
    """Append copies of the corpus to the four files at `rate` events/s, in chunks every `tick` seconds."""
    corpus = Corpus()
    written = Written(ends={name: (array("q"), array("d")) for name in LATENCY_FILES})
    size = dict.fromkeys(LATENCY_FILES, 0)
    queue: list[tuple[str, str]] = []
    k = 0
    started = time.monotonic()
    handles = {name: (logs / name).open("a", encoding="utf-8") for name in FILES}
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - written.events
            chunk: dict[str, list[str]] = {}
            for _ in range(max(due, 0)):
                if not queue:
                    copy = corpus.copy(k)
                    k += 1
                    # interleave the formats as a live hospital would, line by line
                    longest = max(len(v) for v in copy.values())
                    queue = [(n, copy[n][i]) for i in range(longest) for n in FILES if i < len(copy[n])]
                    queue.reverse()
                name, line = queue.pop()
                chunk.setdefault(name, []).append(line)
                while queue and not is_event(*queue[-1]):  # the rest of an HL7 message goes with it
                    name, line = queue.pop()
                    chunk.setdefault(name, []).append(line)
            for name, lines in chunk.items():
                handles[name].write("\n".join(lines) + "\n")
                handles[name].flush()
            now = time.time()
            for name, lines in chunk.items():
                if name in written.ends:
                    offsets, times = written.ends[name]
                    for line in lines:
                        size[name] += len(line.encode()) + 1
                        offsets.append(size[name])
                        times.append(now)
            written.events += sum(is_event(n, line) for n, v in chunk.items() for line in v)
            time.sleep(tick)
    finally:
        for handle in handles.values():
            handle.close()
    return written


def _write_into(conn: Any, logs: Path, rate: float, seconds: float) -> None:
    conn.send(write_lines(logs, rate, seconds))
    conn.close()


class WriterProcess:
    """The writer in a process of its own: in the agent's process it competed with the agent for the GIL (and
    its bookkeeping was part of the RSS the soak reports)."""

    def __init__(self, logs: Path, rate: float, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process whose agent threads hold locks
        self._receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_write_into, args=(send, logs, rate, seconds), daemon=True)
        self.process.start()
        send.close()

    def result(self) -> Written:
        written: Written = self._receive.recv()
        self.process.join()
        return written


def sustained_run(rate: float, seconds: float, soak: bool = False, split: bool = True) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="bench-agent-load-"))
    try:
        settings = workspace(base)
        for name in FILES:
            (base / "logs" / name).touch()
        agent = Agent(agent_config(base, split), settings)
        freeze_startup_heap()
        agent.start()
        # per alert: the hash of its last event's key and when alert + incident committed, in compact arrays (the
        # soak's first runs kept (key, time) tuples: 57 MiB of the measured process's growth over 30 minutes)
        committed_keys, committed_times = array("q"), array("d")

        def on_step(result: StepResult) -> None:
            committed = time.time()
            for a in result.found:
                if a.events:
                    committed_keys.append(hash(a.events[-1].key))
                    committed_times.append(committed)

        agent.step_listeners.insert(0, on_step)  # the commit's time, before the responder's playbooks run
        samples: list[tuple[float, float]] = []
        sampling = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not sampling.wait(5.0):
                samples.append((time.monotonic() - t0, agent_rss_mib(agent)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        written = WriterProcess(base / "logs", rate, seconds).result()
        end_write = time.monotonic()
        backlog_at_end = written.events - agent.detector.stats.events
        while not caught_up(agent, base / "logs") and time.monotonic() - end_write < 120:
            time.sleep(0.05)
        catch_up = time.monotonic() - end_write
        sampling.set()
        sampler.join()
        written_at = written.times_by_key(agent.store, base / "logs")
        agent.shutdown()
        agent.store.close()
        unfreeze()
        written_by_hash = {hash(key): when for key, when in written_at.items()}
        latencies = sorted(t - written_by_hash[k] for k, t in zip(committed_keys, committed_times, strict=True)
                           if k in written_by_hash)
        out: dict[str, Any] = {
            "ingest_process": split, "rate_target": rate, "seconds": seconds, "events": written.events,
            "rate_written": written.events / seconds, "backlog_at_end_of_writing": backlog_at_end,
            "catch_up_s": catch_up, "latency_samples": len(latencies),
            "latency_p50_s": _pct(latencies, 0.50), "latency_p99_s": _pct(latencies, 0.99),
            "latency_max_s": latencies[-1] if latencies else None,
        }
        if soak and samples:
            out.update(soak_rss(samples, seconds))
            # the bench's own records are in the measured process too: its record of alert commits (all along) and
            # the writer's record of its lines (received when writing ended, after the end figure)
            out["bench_record_mib"] = (sys.getsizeof(committed_keys) + sys.getsizeof(committed_times)) / 2**20
            out["bench_written_record_mib"] = sum(sys.getsizeof(a) for pair in written.ends.values()
                                                  for a in pair) / 2**20
        return out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def soak_rss(samples: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """RSS after warm-up (a fifth of the soak) and at the end of writing, each the median of a minute of samples
    (every 5 s): the agent gives free heap back every minute (api/heap.py), so single samples lie on a sawtooth
    of about 25 MiB. The end is the last minute of writing: the writer's record of its lines (about 40 MiB in 30
    minutes at 2,000 events/s: 16 bytes for each of 3.6 million lines' ends and times) reaches this process when
    writing ends, and the samples after are not the agent's."""
    warm = seconds / 5
    first = [r for t, r in samples if warm <= t < warm + 60] or [samples[0][1]]
    last = [r for t, r in samples if seconds - 60 <= t <= seconds] or [samples[-1][1]]
    start, end = statistics.median(first), statistics.median(last)
    return {"rss_after_warmup_mib": start, "rss_end_mib": end, "rss_growth_pct": 100 * (end - start) / start,
            "rss_samples": [(round(t), round(r, 1)) for t, r in samples]}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (CI, development)")
    parser.add_argument("--rate", type=float, default=5_000.0, help="events/s of the sustained load")
    parser.add_argument("--soak", type=float, default=None, help="seconds of the soak (full 1800, quick 60)")
    parser.add_argument("--runs", type=int, default=5, help="drain, baseline and sustained runs (default 5)")
    parser.add_argument("--soak-only", action="store_true",
                        help="only the soak (--soak seconds at --rate events/s), added to the existing "
                             "bench/results/agent.json")
    parser.add_argument("--sustain-only", action="store_true",
                        help="only one sustained run of --soak seconds at --rate events/s (no RSS verdict: the "
                             "target rate for longer than the 10 s or 60 s runs), added to the existing "
                             "bench/results/agent.json as sustained_long")
    parser.add_argument("--modes", choices=("both", "split", "one"), default="both",
                        help="process layouts: split (sources in an ingest process), one, or both in the same run "
                             "(default; the targets are judged on split)")
    parser.add_argument("--add-low-rate", type=float, default=None, metavar="RATE",
                        help="only measure the latency at this low rate (the pipeline's own latency, as scale.py's "
                             "10 %% figure) and add it to the existing bench/results/agent.json")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs: at least 1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("healthswarm").setLevel(logging.WARNING)
    corpus = Corpus()
    if args.add_low_rate is not None:
        add_low_rate(args.add_low_rate, args.runs, 20.0 if args.quick else 60.0, args.modes != "one")
        return
    if args.soak_only or args.sustain_only:
        soak_only(args.rate, args.soak if args.soak is not None else 1800.0, args.modes != "one",
                  "sustained_long" if args.sustain_only else "soak")
        return
    copies = (30_000 if args.quick else 100_000) // corpus.per_copy()
    runs = load_runs = args.runs
    load_seconds = 10.0 if args.quick else 60.0
    soak_seconds = args.soak if args.soak is not None else (60.0 if args.quick else 1800.0)

    split = args.modes != "one"  # the layout the targets are judged on; the other, if measured, beside it
    both = args.modes == "both"
    drains, others, bases = [], [], []
    for _ in range(runs):  # alternated, so that a change in the machine's load falls on all alike
        drains.append(drain_run(corpus, copies, split))
        if both:
            others.append(drain_run(corpus, copies, not split))
        bases.append(baseline_run(corpus, copies))
    loads, other_loads = [], []
    for _ in range(load_runs):
        loads.append(sustained_run(args.rate, load_seconds, split=split))
        if both:
            other_loads.append(sustained_run(args.rate, load_seconds, split=not split))
    # where the target rate is above what this machine sustains, latency grows with the backlog: measure it
    # (and the soak) also at 80 % of the drain rate just measured, as bench/scale.py does
    drain_rate = statistics.median(d["events_per_s"] for d in drains)
    kept_rate = min(args.rate, 0.8 * drain_rate)
    kept = [sustained_run(kept_rate, load_seconds, split=split) for _ in range(load_runs)] \
        if kept_rate < args.rate else loads
    soak = sustained_run(kept_rate, soak_seconds, soak=True, split=split) if soak_seconds > 0 else None

    def med(rows: list[dict[str, Any]], key: str) -> float:
        values = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    def drain_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"runs": rows, "median_events_per_s": med(rows, "events_per_s"),
                "median_startup_s": med(rows, "startup_s"),
                "median_cpu_s_per_1000_events": med(rows, "cpu_s_per_1000_events"),
                "median_agent_cpu_s_per_1000_events": med(rows, "agent_cpu_s_per_1000_events"),
                "median_ingest_cpu_s_per_1000_events": med(rows, "ingest_cpu_s_per_1000_events"),
                "median_respond_cpu_s_per_1000_events": med(rows, "respond_cpu_s_per_1000_events")}

    def load_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"runs": rows, "median_latency_p50_s": med(rows, "latency_p50_s"),
                "median_latency_p99_s": med(rows, "latency_p99_s"),
                "median_rate_written": med(rows, "rate_written"),
                "median_backlog_at_end": med(rows, "backlog_at_end_of_writing")}

    layout = "split" if split else "one"
    figures = {
        "stream": {"files": list(FILES.values()), "events_per_copy": corpus.per_copy(), "copies": copies},
        "layout": {"split": "the sources in an ingest process of their own ([agent] ingest_process = true)",
                   "one": "one process ([agent] ingest_process = false)", "measured": layout,
                   "beside": ("one" if split else "split") if both else None},
        "drain": drain_figures(drains),
        "baseline_batch": {"runs": bases, "median_events_per_s": med(bases, "events_per_s"),
                           "median_setup_s": med(bases, "setup_s")},
        "drain_over_baseline": med(drains, "events_per_s") / med(bases, "events_per_s"),
        "sustained": load_figures(loads),
        "sustained_at_80pct_of_drain": {"rate": kept_rate, "runs": kept,
                                        "median_latency_p50_s": med(kept, "latency_p50_s"),
                                        "median_latency_p99_s": med(kept, "latency_p99_s"),
                                        "median_backlog_at_end": med(kept, "backlog_at_end_of_writing")},
        "soak": soak,
        "load_average_at_end": os.getloadavg(),
        "targets": {"events_per_s": 5_000, "event_to_incident_p99_s": 2.0, "soak_rss_growth_pct": 10},
    }
    if both:
        figures["drain_other_layout"] = drain_figures(others)
        figures["sustained_other_layout"] = load_figures(other_loads)
        # the medians of the two layouts' drains, run by run alternated
        figures["drain_split_over_one"] = (med(drains, "events_per_s") / med(others, "events_per_s")) ** (
            1 if split else -1)
    rows = [
        ("events in the stream (drain)", f"{drains[0]['events']:,}"),
        (f"layout measured{' (the other beside it)' if both else ''}", layout),
        ("agent start-up (median)", f"{figures['drain']['median_startup_s']:.1f} s"),
        (f"drain: events/s, ingest + whole suite (median of {runs})",
         f"{figures['drain']['median_events_per_s']:,.0f}"),
        ("drain: CPU s per 1,000 events (every process)", f"{figures['drain']['median_cpu_s_per_1000_events']:.3f}"),
        ("  … of which the agent's process (detection)",
         f"{figures['drain']['median_agent_cpu_s_per_1000_events']:.3f}"),
        ("  … of which the ingest process", f"{figures['drain']['median_ingest_cpu_s_per_1000_events']:.3f}"),
        ("  … of which the responder process", f"{figures['drain']['median_respond_cpu_s_per_1000_events']:.3f}"),
    ]
    if both:
        other = figures["drain_other_layout"]
        rows += [
            (f"drain, the other layout ({'one' if split else 'split'}): events/s (median of {runs})",
             f"{other['median_events_per_s']:,.0f}"),
            ("  … CPU s per 1,000 events", f"{other['median_cpu_s_per_1000_events']:.3f}"),
            ("drain split ÷ one (medians)", f"{figures['drain_split_over_one']:.2f}×"),
        ]
    rows += [
        (f"baseline, same run: batch ingest + detect, events/s (median of {runs})",
         f"{figures['baseline_batch']['median_events_per_s']:,.0f}"),
        ("drain ÷ baseline (medians)", f"{figures['drain_over_baseline']:.2f}×"),
        (f"sustained {args.rate:,.0f}/s for {load_seconds:.0f} s: written/s (median)",
         f"{figures['sustained']['median_rate_written']:,.0f}"),
        ("sustained: backlog when writing stopped (median)", f"{figures['sustained']['median_backlog_at_end']:,.0f}"),
        ("line written → alert + incident committed, p50", _s(figures["sustained"]["median_latency_p50_s"])),
        ("line written → alert + incident committed, p99", _s(figures["sustained"]["median_latency_p99_s"])),
    ]
    if both:
        other = figures["sustained_other_layout"]
        rows += [
            (f"  the other layout at {args.rate:,.0f}/s: backlog when writing stopped",
             f"{other['median_backlog_at_end']:,.0f}"),
            ("  … line written → alert + incident, p50 / p99",
             f"{_s(other['median_latency_p50_s'])} / {_s(other['median_latency_p99_s'])}"),
        ]
    if kept is not loads:
        rows += [
            (f"at 80 % of the drain rate ({kept_rate:,.0f}/s): backlog when writing stopped",
             f"{figures['sustained_at_80pct_of_drain']['median_backlog_at_end']:,.0f}"),
            ("  … line written → alert + incident, p50",
             _s(figures["sustained_at_80pct_of_drain"]["median_latency_p50_s"])),
            ("  … line written → alert + incident, p99",
             _s(figures["sustained_at_80pct_of_drain"]["median_latency_p99_s"])),
        ]
    if soak is not None and "rss_end_mib" in soak:
        rows += [(f"soak {soak_seconds:.0f} s at {kept_rate:,.0f}/s: RSS after warm-up → end",
                  f"{soak['rss_after_warmup_mib']:.0f} → {soak['rss_end_mib']:.0f} MiB "
                  f"({soak['rss_growth_pct']:+.1f} %)"),
                 ("soak: latency p99", _s(soak["latency_p99_s"]))]
    report("agent", figures, rows, args.quick)


def add_figures(key: str, figures: dict[str, Any], flag: str) -> Path:
    """`figures` under `key` of the existing bench/results/agent.json, labelled as measured by a later run."""
    import json

    from common import RESULTS, machine

    path = RESULTS / "agent.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["figures"][key] = {
        **figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
        "load_average_at_end": os.getloadavg(),
        "note": f"measured in a later invocation ({flag}) than the other figures of this file"}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def add_low_rate(rate: float, runs: int, seconds: float, split: bool) -> None:
    loads = [sustained_run(rate, seconds, split=split) for _ in range(runs)]
    p50 = statistics.median(r["latency_p50_s"] for r in loads if r["latency_p50_s"] is not None)
    p99 = statistics.median(r["latency_p99_s"] for r in loads if r["latency_p99_s"] is not None)
    path = add_figures("sustained_low_rate", {"rate": rate, "seconds": seconds, "runs": loads,
                                              "median_latency_p50_s": p50, "median_latency_p99_s": p99},
                       "--add-low-rate")
    print(f"at {rate:,.0f} events/s for {seconds:.0f} s × {runs}: line written → alert + incident p50 {p50:.3f} s, "
          f"p99 {p99:.3f} s; added to {path}")


def soak_only(rate: float, seconds: float, split: bool, key: str = "soak") -> None:
    soak = sustained_run(rate, seconds, soak=True, split=split)
    path = add_figures(key, soak, "--soak-only" if key == "soak" else "--sustain-only")
    print(f"{key} {seconds:.0f} s at {rate:,.0f} events/s: RSS after warm-up {soak.get('rss_after_warmup_mib', 0):.0f}"
          f" → end {soak.get('rss_end_mib', 0):.0f} MiB ({soak.get('rss_growth_pct', 0):+.1f} %), backlog when "
          f"writing stopped {soak['backlog_at_end_of_writing']:,}, latency p99 {_s(soak['latency_p99_s'])}; "
          f"added to {path}")


def _s(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f} s"


if __name__ == "__main__":
    main()
