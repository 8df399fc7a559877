"""Benchmark of the response stage.

    python bench/respond.py [--quick]

Every figure is CPU seconds of this process (the machine is shared: wall-clock figures say more about the
neighbours), the median of the runs (5 unless said).

1. Playbook execution overhead per step: a generated linear CACAO playbook of manual steps (full: 5,000 steps;
   --quick: 1,000) run as a dry run. Baseline, same run: walking the same workflow dict by `on_completion`
   without the executor (ratio = executor / bare walk). Also per step for the shipped phishing playbook on
   the demo's phishing case (planning real actions: firewall rules generated and validated).
2. Audit-chain verification of 100,000 entries (--quick: 10,000): in memory, and loaded from SQLite.
   Baseline: SHA-256 of the same canonical entry bodies without linking or checks (ratio = verify / hash).
3. Time from incident to first containment action proposed, on the demo scenario: open a case from the
   stored phishing incident and dry-run the phishing playbook until its first containment proposal (full: 10
   rounds). Baseline: loading the incident document from the store alone.
4. Playbooks by policy (what the agent's responder does: `respond_by_policy`, default policy), CPU seconds per
   case opened, on the mixed stream of bench/agent.py (the demo's logs, 20 copies each two days later; --quick:
   5) ingested and judged by the agent's detection suite the batch way (set-up, reported apart), each run on a
   copy of that store: the look-back over every stored incident (each covered one gets its case and its
   playbooks), the CPU time the write lock is held meanwhile (what detection would wait for), the same look-back
   again with nothing left to start (a restart), and the detection thread's CPU per step to hand a step's
   incidents to the agent's responder (`PolicyResponder`, which queues them for its own thread). Median of 5
   runs after one warm-up run. Baseline, same run: opening the same cases alone (`open_from_incident`, one
   transaction each, no playbook). The figure before this work, 31 ms per case opened in the detection thread,
   is recorded (a profile of the agent draining the mixed stream, 2026-12-06, issue #15), not measured here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from common import cpu_timed, peak_rss_mib, report
from healthswarm.respond.actions import ActionContext
from healthswarm.respond.audit import GENESIS, canonical, chain, verify
from healthswarm.respond.case_store import load_audit, open_from_incident
from healthswarm.respond.cases import Case
from healthswarm.respond.demo import CONTAINMENT_KINDS, DEMO_ASSET, DEMO_PLAYBOOK
from healthswarm.respond.playbooks import Library, run_playbook
from healthswarm.respond.playbooks.validate import parse_playbook
from healthswarm.respond.policy import ResponsePolicy
from healthswarm.respond.service import inventory_assets, respond_by_policy
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from healthswarm.store.respond_tables import respond_audit
from healthswarm.store.tables import incidents

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: recorded, not measured here: playbooks by policy per case opened in a profile of the agent draining the mixed
#: stream (bench/agent.py), 2026-12-06, before the responder left the detection thread (issue #15)
RECORDED_MS_PER_CASE = 31.0


def _sid(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n, version=4)}"


def linear_playbook(steps: int) -> dict[str, Any]:
    workflow: dict[str, Any] = {_sid("start", 0): {"type": "start", "on_completion": _sid("action", 1)}}
    for i in range(1, steps + 1):
        workflow[_sid("action", i)] = {"type": "action", "name": f"step {i}",
                                       "commands": [{"type": "manual", "command": f"do thing {i}"}],
                                       "on_completion": _sid("action", i + 1) if i < steps else _sid("end", 0)}
    workflow[_sid("end", 0)] = {"type": "end"}
    return {"type": "playbook", "spec_version": "cacao-2.0", "id": _sid("playbook", 1), "name": "linear",
            "created_by": _sid("identity", 1), "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z", "workflow_start": _sid("start", 0), "workflow": workflow}


def bare_walk(doc: dict[str, Any]) -> int:
    step_id, count, workflow = doc["workflow_start"], 0, doc["workflow"]
    while step_id is not None:
        count += 1
        step_id = workflow[step_id].get("on_completion")
    return count


def median_cpu(fn: Any, repeat: int) -> float:
    """The median CPU seconds of `repeat` calls (CPU, not wall: the machine is shared)."""
    return statistics.median(cpu_timed(fn)[1] for _ in range(repeat))


def bench_steps(steps: int, ctx: ActionContext) -> dict[str, Any]:
    doc = linear_playbook(steps)
    book = parse_playbook(doc, "linear.json")
    executed = median_cpu(lambda: run_playbook(book, ctx), 5)
    baseline = median_cpu(lambda: bare_walk(doc), 5)
    total = steps + 2
    return {"steps": total, "executor_us_per_step": executed / total * 1e6,
            "baseline_us_per_step": baseline / total * 1e6, "ratio": executed / baseline}


def bench_audit(entries: int, workdir: Path) -> dict[str, Any]:
    built, prev = [], GENESIS
    for i in range(1, entries + 1):
        entry = chain("CASE-bench", i, T0 + timedelta(seconds=i), "analyst", "note",
                      {"text": f"note {i}", "version": i + 1}, prev)
        built.append(entry)
        prev = entry.hash
    verdict = verify(built)
    assert verdict.ok and verdict.entries == entries
    in_memory = median_cpu(lambda: verify(built), 5)
    bodies = [e.body() for e in built]
    baseline = median_cpu(lambda: [hashlib.sha256(canonical(b)).hexdigest() for b in bodies], 5)
    store = Store.open(f"sqlite:///{workdir / 'audit.db'}")
    with store.transaction() as conn:
        rows = [{"case_id": e.case_id, "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                 "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash} for e in built]
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(respond_audit), rows[start:start + 10_000])

    def from_db() -> None:
        with store.read() as conn:
            result = verify(load_audit(conn, "CASE-bench"))
        assert result.ok, result

    with_db = median_cpu(from_db, 5)
    store.close()
    return {"entries": entries, "verify_s": in_memory, "verify_from_sqlite_s": with_db,
            "entries_per_s": entries / in_memory, "baseline_hash_only_s": baseline, "ratio": in_memory / baseline}


def bench_demo(workdir: Path, repeat: int) -> tuple[dict[str, Any], ActionContext, float]:
    from healthswarm.demo.run import DemoRun, detect_and_correlate, ingest_logs, load_ecosystem

    store = Store.open(f"sqlite:///{workdir / 'demo.db'}")
    run = DemoRun(store=store, workspace=workdir)
    for step in (load_ecosystem, ingest_logs, detect_and_correlate):
        step(run)
    library = Library.load()
    book = library.find(DEMO_PLAYBOOK)
    with store.read() as conn:
        incident_id = next(i.id for i in load_incidents(conn) if DEMO_ASSET in i.assets)
    times, baselines, first = [], [], None
    ctx = None
    for _ in range(repeat):
        start = time.process_time()
        with store.transaction() as conn:
            case = open_from_incident(conn, incident_id, "bench")
            assets = inventory_assets(conn)
            ctx = ActionContext(case=case, assets=assets, now=datetime.now(UTC))
            result = run_playbook(book, ctx, library)
            first = next(p for p in result.proposals if p.kind in CONTAINMENT_KINDS)
            times.append(time.process_time() - start)
            conn.rollback()  # leave no case behind, so the next round opens it again
        baselines.append(median_cpu(lambda: _load_incident(store, incident_id), 1))
    assert first is not None and ctx is not None
    phishing_run = median_cpu(lambda: run_playbook(book, ctx, library), 20)
    steps = len(run_playbook(book, ctx, library).steps)
    store.close()
    figures = {"incident": incident_id, "first_containment": f"{first.kind} {first.target}",
               "median_s": statistics.median(times), "max_s": max(times),
               "baseline_load_incident_s": statistics.median(baselines),
               "ratio": statistics.median(times) / statistics.median(baselines)}
    return figures, ctx, phishing_run / steps * 1e6


class HeldLock:
    """The write lock, adding up the CPU time it is held (what the agent's detection would wait for)."""

    def __init__(self) -> None:
        self.lock, self.held, self._at = threading.Lock(), 0.0, 0.0

    def __enter__(self) -> None:
        self.lock.acquire()
        self._at = time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.held += time.process_time() - self._at
        self.lock.release()


def stream_store(workdir: Path, copies: int) -> float:
    """`workdir/stream.db`: the demo inventory and `copies` copies of bench/agent.py's mixed stream, ingested and
    judged by the agent's detection suite (the batch commands' way); the CPU seconds that took."""
    from agent import FILES, Corpus, agent_config, workspace
    from healthswarm.agent.runtime import build_detectors
    from healthswarm.detect.stage import detect_stored
    from healthswarm.ingest.pipeline import Pipeline
    from healthswarm.ingest.sources.file import ingest_file

    started = time.process_time()
    base = workdir / "stream"
    settings, corpus = workspace(base), Corpus()
    for name in FILES:
        (base / "logs" / name).write_text("".join("\n".join(corpus.copy(k)[name]) + "\n" for k in range(copies)),
                                          encoding="utf-8")
    store = Store.open(settings.db_url)
    with store.read() as conn:
        assets = list(inventory_assets(conn).values())
    detectors, _ = build_detectors(agent_config(base), settings.workspace, assets)
    pipeline = Pipeline.for_store(store, "st-aurelia")
    for name in FILES:
        ingest_file(pipeline, base / "logs" / name)
    pipeline.close()
    detect_stored(store, detectors)
    store.close()
    shutil.copyfile(settings.workspace / "healthswarm.db", workdir / "stream.db")
    return time.process_time() - started


def bench_policy(workdir: Path, runs: int, copies: int) -> dict[str, Any]:
    """Section 4 on copies of the store `stream_store` builds."""
    setup = stream_store(workdir, copies)
    library, policy = Library.load(), ResponsePolicy()
    measured = [_policy_run(workdir, n, library, policy) for n in range(runs + 1)][1:]  # run 0 warms up
    median = {key: statistics.median(m[key] / m["opened"] for m in measured) * 1e3
              for key in ("cpu", "held", "alone")}
    return {"copies": copies, "setup_cpu_s": setup, "cases_opened": measured[0]["opened"], "runs": runs,
            "cpu_ms_per_case": median["cpu"], "cpu_ms_per_case_runs": [m["cpu"] / m["opened"] * 1e3 for m in measured],
            "write_lock_cpu_ms_per_case": median["held"],
            "lookback_again_cpu_ms_per_incident": statistics.median(m["again"] / m["covered"] for m in measured) * 1e3,
            "detection_thread_cpu_us_per_step": statistics.median(m["queue"] / m["steps"] for m in measured) * 1e6,
            "baseline_open_case_alone_cpu_ms": median["alone"], "ratio": median["cpu"] / median["alone"],
            "recorded_ms_per_case_2026_12_06": RECORDED_MS_PER_CASE}


def _policy_run(workdir: Path, n: int, library: Library, policy: ResponsePolicy) -> dict[str, float]:
    """One run of section 4: CPU seconds of the look-back, of the lock held, of the look-back again, of opening
    the same cases alone, and of the detection thread handing each incident to the agent's responder."""
    store = _copy(workdir, f"policy-{n}")
    with store.read() as conn:  # the agent's responder loads the inventory once
        assets = inventory_assets(conn)
    lock = HeldLock()

    def respond(held: HeldLock | None) -> list[Any]:
        return respond_by_policy(store, policy, None, library=library, assets=assets, workspace=workdir / f"ws-{n}",
                                 lock=held)

    responses, spent = cpu_timed(lambda: respond(lock))
    opened = sum(r.opened for r in responses)
    assert opened == len(responses) > 0
    redone, again = cpu_timed(lambda: respond(None))
    assert not any(r.opened or r.runs for r in redone)
    store.close()
    bare = _copy(workdir, f"bare-{n}")
    _, alone = cpu_timed(lambda: _open_alone(bare, [r.incident for r in responses]))
    bare.close()
    queue = _queue_steps(workdir, n, library, [r.incident for r in responses])
    return {"opened": opened, "covered": len(redone), "cpu": spent, "held": lock.held, "again": again,
            "alone": alone, "queue": queue, "steps": len(responses)}


def _queue_steps(workdir: Path, n: int, library: Library, incidents: list[str]) -> float:
    """The detection thread's CPU seconds (its own clock) for one step a covered incident, handed to the agent's
    responder; the responder's thread does the work (its look-back, here), waited for apart."""
    from healthswarm.agent.config import RespondConfig
    from healthswarm.agent.detect import StepResult
    from healthswarm.agent.respond import PolicyResponder

    store = _copy(workdir, f"agent-{n}")
    responder = PolicyResponder(store, RespondConfig(), workdir / f"ws-agent-{n}", threading.Lock(), library)
    steps = [StepResult(incidents=[incident]) for incident in incidents]
    start = time.thread_time()
    for step in steps:
        responder(step)
    spent = time.thread_time() - start
    assert responder.close(600)
    store.close()
    return spent


def _copy(workdir: Path, name: str) -> Store:
    shutil.copyfile(workdir / "stream.db", workdir / f"{name}.db")
    return Store.open(f"sqlite:///{workdir / name}.db")


def _open_alone(store: Store, incident_ids: list[str]) -> None:
    for incident_id in incident_ids:
        with store.transaction() as conn:
            open_from_incident(conn, incident_id, "bench")


def _load_incident(store: Store, incident_id: str) -> None:
    with store.read() as conn:
        conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id)).one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    steps, entries, repeat = (1_000, 10_000, 5) if args.quick else (5_000, 100_000, 10)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        demo, ctx, phishing_us = bench_demo(workdir, repeat)
        simple = Case("CASE-bench", "bench", T0, T0)
        step_figures = bench_steps(steps, ActionContext(case=simple, assets=ctx.assets, now=T0))
        step_figures["phishing_playbook_us_per_step"] = phishing_us
        audit = bench_audit(entries, workdir)
        policy = bench_policy(workdir, 5, 5 if args.quick else 20)
    figures = {"playbook_steps": step_figures, "audit_chain": audit, "incident_to_containment": demo,
               "policy": policy, "peak_rss_mib": peak_rss_mib(),
               "load_average_at_start_and_end": [load, os.getloadavg()]}  # the shared machine's load
    rows = [
        (f"executor overhead per step ({step_figures['steps']:,} manual steps)",
         f"{step_figures['executor_us_per_step']:.1f} µs"),
        ("baseline: bare dict walk per step", f"{step_figures['baseline_us_per_step']:.2f} µs"),
        ("ratio executor / bare walk", f"{step_figures['ratio']:.0f}x"),
        ("phishing playbook, per step (real action planning)", f"{phishing_us:.0f} µs"),
        (f"audit chain verify ({entries:,} entries, in memory)", f"{audit['verify_s']:.3f} s"),
        ("audit chain verify incl. loading from SQLite", f"{audit['verify_from_sqlite_s']:.3f} s"),
        ("baseline: SHA-256 of the bodies only", f"{audit['baseline_hash_only_s']:.3f} s"),
        ("ratio verify / hash only", f"{audit['ratio']:.2f}x"),
        ("incident → first containment proposed (median)", f"{demo['median_s'] * 1000:.1f} ms"),
        ("first containment action", demo["first_containment"]),
        ("baseline: load the incident only", f"{demo['baseline_load_incident_s'] * 1000:.2f} ms"),
        (f"mixed stream, {policy['copies']} copies: ingest + detect (set-up, CPU)", f"{policy['setup_cpu_s']:.1f} s"),
        (f"playbooks by policy per case opened ({policy['cases_opened']} cases, median of 5, CPU)",
         f"{policy['cpu_ms_per_case']:.1f} ms"),
        ("  of which the write lock is held (CPU)", f"{policy['write_lock_cpu_ms_per_case']:.1f} ms"),
        ("  look-back again, nothing to start, per incident (CPU)",
         f"{policy['lookback_again_cpu_ms_per_incident']:.2f} ms"),
        ("agent: detection thread per step, handing it to the responder (CPU)",
         f"{policy['detection_thread_cpu_us_per_step']:.0f} µs"),
        ("baseline: open the same case alone (CPU)", f"{policy['baseline_open_case_alone_cpu_ms']:.1f} ms"),
        ("ratio policy / case alone", f"{policy['ratio']:.1f}x"),
        ("recorded 2026-12-06 (agent profile, in the detection thread, before)", f"{RECORDED_MS_PER_CASE:.0f} ms"),
        ("peak RSS", f"{figures['peak_rss_mib']:.0f} MiB"),
        ("load average (1 min) at start, end", f"{load[0]:.1f}, {os.getloadavg()[0]:.1f}"),
    ]
    report("respond", figures, rows, args.quick)


if __name__ == "__main__":
    main()
