"""Benchmark of the response stage.

    python bench/respond.py [--quick]

1. Playbook execution overhead per step: a generated linear CACAO playbook of manual steps (full: 5,000 steps;
   --quick: 1,000) run as a dry run. Baseline, same run: walking the same workflow dict by `on_completion`
   without the executor (ratio = executor / bare walk). Also per step for the shipped phishing playbook on
   the demo's phishing case (planning real actions: firewall rules generated and validated).
2. Audit-chain verification of 100,000 entries (--quick: 10,000): in memory, and loaded from SQLite.
   Baseline: SHA-256 of the same canonical entry bodies without linking or checks (ratio = verify / hash).
3. Time from incident to first containment action proposed, on the demo scenario: open a case from the
   stored phishing incident and dry-run the phishing playbook until its first containment proposal.
   Baseline: loading the incident document from the store alone.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from common import peak_rss_mib, report, timed
from healthswarm.respond.actions import ActionContext
from healthswarm.respond.audit import GENESIS, canonical, chain, verify
from healthswarm.respond.case_store import load_audit, open_from_incident
from healthswarm.respond.cases import Case
from healthswarm.respond.demo import CONTAINMENT_KINDS, DEMO_ASSET, DEMO_PLAYBOOK
from healthswarm.respond.playbooks import Library, run_playbook
from healthswarm.respond.playbooks.validate import parse_playbook
from healthswarm.respond.service import inventory_assets
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from healthswarm.store.respond_tables import respond_audit
from healthswarm.store.tables import incidents

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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


def best(fn: Any, repeat: int) -> float:
    return min(timed(fn)[1] for _ in range(repeat))


def bench_steps(steps: int, ctx: ActionContext) -> dict[str, Any]:
    doc = linear_playbook(steps)
    book = parse_playbook(doc, "linear.json")
    executed = best(lambda: run_playbook(book, ctx), 5)
    baseline = best(lambda: bare_walk(doc), 5)
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
    verdict, in_memory = timed(lambda: verify(built))
    assert verdict.ok and verdict.entries == entries
    bodies = [e.body() for e in built]
    baseline = best(lambda: [hashlib.sha256(canonical(b)).hexdigest() for b in bodies], 1)
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

    with_db = best(from_db, 1)
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
        start = time.perf_counter()
        with store.transaction() as conn:
            case = open_from_incident(conn, incident_id, "bench")
            assets = inventory_assets(conn)
            ctx = ActionContext(case=case, assets=assets, now=datetime.now(UTC))
            result = run_playbook(book, ctx, library)
            first = next(p for p in result.proposals if p.kind in CONTAINMENT_KINDS)
            times.append(time.perf_counter() - start)
            conn.rollback()  # leave no case behind, so the next round opens it again
        baselines.append(best(lambda: _load_incident(store, incident_id), 1))
    assert first is not None and ctx is not None
    phishing_run = best(lambda: run_playbook(book, ctx, library), 20)
    steps = len(run_playbook(book, ctx, library).steps)
    store.close()
    figures = {"incident": incident_id, "first_containment": f"{first.kind} {first.target}",
               "median_s": statistics.median(times), "max_s": max(times),
               "baseline_load_incident_s": statistics.median(baselines),
               "ratio": statistics.median(times) / statistics.median(baselines)}
    return figures, ctx, phishing_run / steps * 1e6


def _load_incident(store: Store, incident_id: str) -> None:
    with store.read() as conn:
        conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id)).one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    steps, entries, repeat = (1_000, 10_000, 3) if args.quick else (5_000, 100_000, 10)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        demo, ctx, phishing_us = bench_demo(workdir, repeat)
        simple = Case("CASE-bench", "bench", T0, T0)
        step_figures = bench_steps(steps, ActionContext(case=simple, assets=ctx.assets, now=T0))
        step_figures["phishing_playbook_us_per_step"] = phishing_us
        audit = bench_audit(entries, workdir)
    figures = {"playbook_steps": step_figures, "audit_chain": audit, "incident_to_containment": demo,
               "peak_rss_mib": peak_rss_mib()}
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
        ("peak RSS", f"{figures['peak_rss_mib']:.0f} MiB"),
    ]
    report("respond", figures, rows, args.quick)


if __name__ == "__main__":
    main()
