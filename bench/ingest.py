"""Benchmark of ingestion: parse+normalise and end-to-end (SQLite) rates per format, broker round
trips, and peak memory while streaming a large file.

    python bench/ingest.py [--quick] [--headline]

Headline, end to end: `healthswarm ingest FILE --format suricata` (a fresh workspace each run) over
200,000 real EVE lines (the josevnz/SuricataLog samples repeated to size; --quick: 50,000), medians of
5 runs of the CLI process, in wall seconds and in CPU seconds of the child (user + system, all its
threads and its writer process): events per CPU second is the one-core rate that load on the shared
machine does not dilute. Target: ≥ 50,000 events/s. The CLI parses in its process and commits in a
forked writer process, so on an idle 2-core machine its wall is about start-up + the busier side; the
in-process runs with the writer process measure the two sides apart (parsing: this process's CPU;
storing: the writer's), and start-up CPU + the busier side is reported as a prediction beside the
measured wall. The CLI's start-up (imports, opening the workspace's store) is measured apart, as the
same command over an empty file, and reported beside the figure without it.
PostgreSQL (target ≥ 50,000/s with COPY): the same command with `--db` into a fresh database per run,
and the pipeline in process, where the CPU seconds of the server's backends are read from /proc too
(the server runs on this machine). --headline: only the EVE figures (no other formats, brokers, memory).

Baselines, measured in the same run and alternated with what they bound: a bare `orjson.loads` loop
over the same EVE lines (the practical ceiling of any JSON-lines parser in Python; target: EVE
parse+normalise ≥ 0.5 × its rate, in CPU time), and a bare sqlite3 `executemany` of the very rows the
store writes for those events, in the same batches, into a fresh store (the floor SQLite itself sets
under the end-to-end figure). Every figure is the median of 5 runs (3 with --quick); the 1-minute load
average is recorded at the start and at the end.
Inputs are the real samples in ../shared/data
(Suricata EVE from josevnz/SuricataLog, Zeek TSV from SuperCowPowers/zat, EVTX from
sbousseaden/EVTX-ATTACK-SAMPLES, HL7 v2 from microsoft/FHIR-Converter), repeated to size.
Streaming memory: a 1 GB file (--quick: 100 MB).
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from common import RESULTS, report
from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file
from healthswarm.model import Event
from healthswarm.model.event import event_keyer
from healthswarm.store import Store
from healthswarm.store.db import _sqlite_pragmas
from healthswarm.store.events import _SQLITE_ROWS, CHUNK, _row_tuples, _sqlite_insert, count_events

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HEALTHSWARM_SHARED_DATA", ROOT.parent / "shared" / "data"))
POSTGRES_ADMIN = os.environ.get("HEALTHSWARM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _repeat_lines(lines: list[bytes], n: int) -> list[bytes]:
    return [lines[i % len(lines)] for i in range(n)]


def eve_lines(n: int) -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((SHARED / "suricata").glob("*.json")):
        lines += [line for line in path.read_bytes().splitlines() if line.strip()]
    return _repeat_lines(lines, n)


def zeek_tsv(n: int) -> bytes:
    text = (SHARED / "zeek" / "conn.log").read_bytes().splitlines()
    header = [line for line in text if line.startswith(b"#") and not line.startswith(b"#close")]
    body = [line for line in text if not line.startswith(b"#")]
    return b"\n".join(header + _repeat_lines(body, n)) + b"\n"


def hl7_stream(n: int) -> bytes:
    messages = [Path(p).read_bytes().lstrip(b"\xef\xbb\xbf").strip() + b"\r"
                for p in sorted(glob.glob(str(SHARED / "hl7v2" / "*.hl7")))]
    messages = [m for m in messages if m.startswith(b"MSH")]
    return b"".join(_repeat_lines(messages, n))


def evtx_files(quick: bool) -> list[Path]:
    files = sorted(Path(p) for p in glob.glob(str(SHARED / "windows" / "evtx-attack-samples" / "**" / "*.evtx"),
                                              recursive=True))
    return files[:60] if quick else files


def median_of(runs: int, fn: Callable[[], int]) -> tuple[int, float, float]:
    """(items, wall seconds, CPU seconds of this process), each the median of `runs` calls."""
    walls, cpus = [], []
    items = 0
    for _ in range(runs):
        cpu = time.process_time()
        start = time.perf_counter()
        items = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return items, statistics.median(walls), statistics.median(cpus)


def alternated(runs: int, first: Callable[[], int], second: Callable[[], int]
               ) -> tuple[tuple[int, float, float], tuple[int, float, float]]:
    """`median_of` for two functions called in turn, so load on the shared machine falls on both alike."""
    a: list[tuple[int, float, float]] = []
    b: list[tuple[int, float, float]] = []
    for _ in range(runs):
        a.append(median_of(1, first))
        b.append(median_of(1, second))
    return ((a[0][0], statistics.median(x[1] for x in a), statistics.median(x[2] for x in a)),
            (b[0][0], statistics.median(x[1] for x in b), statistics.median(x[2] for x in b)))


def cli_ingest(path: Path, tmp: Path, runs: int, db: Callable[[], AbstractContextManager[str]] | None = None
               ) -> dict[str, Any]:
    """`healthswarm ingest PATH --format suricata` into a fresh workspace, `runs` times: medians of the
    child's wall and CPU seconds (user + system, every thread), and what it stored. With `db`, a context
    giving the URL of a fresh database for each run (`--db`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    walls, cpus = [], []
    stored = 0
    for run in range(runs):
        workspace = tmp / f"ws-cli-{run}"
        with db() if db is not None else nullcontext(f"sqlite:///{workspace / 'healthswarm.db'}") as url:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "healthswarm", "--workspace", str(workspace), "--db", url,
                                   "ingest", str(path), "--format", "suricata"], capture_output=True, env=env,
                                  check=False)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
            if done.returncode != 0:
                raise SystemExit(f"healthswarm ingest failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
            store = Store.open(url)
            with store.read() as conn:
                stored = count_events(conn)
            store.close()
        shutil.rmtree(workspace, ignore_errors=True)  # none made when the store is a server
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"events": stored, "runs": runs, "wall_s_median": round(wall, 3), "cpu_s_median": round(cpu, 3),
            "wall_s_runs": [round(w, 3) for w in walls], "cpu_s_runs": [round(c, 3) for c in cpus],
            "per_s": round(stored / wall) if stored else 0, "per_cpu_second": round(stored / cpu) if stored else 0}


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on this machine, dropped on exit."""
    import psycopg

    name = f"hs_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backend_cpu_seconds(store: Store) -> float:
    """CPU seconds so far of the server processes serving `store`'s database (the server is local)."""
    with store.read() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()").scalars().all()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_in_process(path: Path, runs: int) -> dict[str, Any]:
    """The pipeline into a fresh PostgreSQL database, `runs` times: medians of wall, this process's CPU and
    the server backends' CPU seconds (opening the store and migrating it apart, not timed)."""
    walls, cpus, server = [], [], []
    stored = 0
    for _ in range(runs):
        with postgres_database() as url:
            store = Store.open(url)
            pipeline = Pipeline(store)
            server_before = _backend_cpu_seconds(store)
            cpu = time.process_time()
            start = time.perf_counter()
            ingest_file(pipeline, path, get_format("suricata"))
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            server.append(_backend_cpu_seconds(store) - server_before)
            stored = pipeline.stats.stored
            pipeline.close()
            store.close()
    wall, cpu, server_cpu = statistics.median(walls), statistics.median(cpus), statistics.median(server)
    return {"events": stored, "runs": runs, "wall_s_median": round(wall, 3), "client_cpu_s_median": round(cpu, 3),
            "server_cpu_s_median": round(server_cpu, 3), "per_s": round(stored / wall),
            "per_cpu_second_client_and_server": round(stored / (cpu + server_cpu))}


# The server's side of COPY, profiled: the same rows into the events table as migrated, into the same table with
# pglz (what it was before migration 0013), and into a bare table of the same columns without any index or key.
_COPY_TABLES = {
    "events": None,
    "events_pglz": ["CREATE TABLE t (LIKE events INCLUDING ALL)",
                    "ALTER TABLE t ALTER fields SET COMPRESSION pglz, ALTER original SET COMPRESSION pglz"],
    "bare_table_no_indexes": ["CREATE TABLE t (LIKE events INCLUDING DEFAULTS)"],
}


def postgres_copy_profile(data: bytes, runs: int) -> dict[str, Any]:
    """Server backend CPU seconds (and wall) of COPY of the same event rows into each of _COPY_TABLES, in fresh
    databases, medians of `runs` alternated; one transaction per 5,000 rows as the store commits them."""
    import psycopg

    from healthswarm.store.events import _PG_COLUMNS

    events = [e for e in get_format("suricata").parse(io.BytesIO(data), "/bench/eve.json") if type(e) is Event]
    key = event_keyer("bench")
    for i, e in enumerate(events):
        e.key = key(i)
    rows = _row_tuples(events, "+00")
    del events
    tick = os.sysconf("SC_CLK_TCK")
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in _COPY_TABLES}
    for _ in range(runs):
        for name, ddl in _COPY_TABLES.items():
            with postgres_database() as url:
                Store.open(url).close()  # the migrated schema
                with psycopg.connect(url) as conn:
                    for statement in ddl or ():
                        conn.execute(statement)
                    conn.commit()
                    stat = Path(f"/proc/{conn.info.backend_pid}/stat")

                    def backend_cpu(stat: Path = stat) -> float:
                        fields = stat.read_text().rsplit(")", 1)[1].split()
                        return (int(fields[11]) + int(fields[12])) / tick

                    cpu, start = backend_cpu(), time.perf_counter()
                    with conn.cursor() as cursor:
                        for first in range(0, len(rows), CHUNK):
                            with cursor.copy(f"COPY {'t' if ddl else 'events'} ({_PG_COLUMNS}) FROM STDIN") as copy:
                                for row in rows[first : first + CHUNK]:
                                    copy.write_row(row)
                            conn.commit()
                    measured[name].append((backend_cpu() - cpu, time.perf_counter() - start))
    out: dict[str, Any] = {"rows": len(rows), "runs": runs}
    for name, got in measured.items():
        out[name] = {"server_cpu_s_median": round(statistics.median(c for c, _ in got), 3),
                     "wall_s_median": round(statistics.median(w for _, w in got), 3)}
    return out


def parse_count(fmt_name: str, data: bytes) -> int:
    fmt = get_format(fmt_name)
    return sum(1 for item in fmt.parse(io.BytesIO(data), "bench") if type(item) is Event)


def parse_files(fmt_name: str, files: list[Path]) -> int:
    fmt = get_format(fmt_name)
    n = 0
    for path in files:
        with path.open("rb") as f:
            n += sum(1 for item in fmt.parse(f, str(path)) if type(item) is Event)
    return n


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(fmt_name: str, files: list[Path], tmp: Path, overlap: bool = False,
               cpu: list[float] | None = None, writer_process: bool = False,
               writer_cpu: list[float] | None = None) -> tuple[int, float]:
    """(events stored, seconds) into a fresh SQLite store: file reading, parsing, keys, commits.

    The default pipeline runs on one thread; `overlap` adds its writer thread (commits while the
    next batch is parsed); `writer_process` commits in a forked writer process, as the CLI does.
    `cpu` receives the CPU seconds of this process (with `writer_process`: the parsing side), `writer_cpu`
    those of the writer process (the storing side; read once it has ended)."""
    db = tmp / f"e2e-{fmt_name}-{uuid.uuid4().hex[:6]}.db"
    store = Store.open(f"sqlite:///{db}")
    children = _children_cpu()
    pipeline = Pipeline(store, overlap=overlap, writer_process=writer_process)
    fmt = get_format(fmt_name)
    cpu_start = time.process_time()
    start = time.perf_counter()
    for path in files:
        ingest_file(pipeline, path, fmt)
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append(time.process_time() - cpu_start)
    pipeline.close()
    if writer_cpu is not None:
        writer_cpu.append(_children_cpu() - children)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return pipeline.stats.stored, seconds


def bare_sqlite(data: bytes, tmp: Path, runs: int, multirow: bool = False) -> tuple[int, float, float]:
    """(rows, wall s, CPU s) of the SQLite floor, medians of `runs`: the rows the store builds for these
    EVE events, inserted by the driver's executemany of the one-row statement (or, `multirow`, as the
    store does: multi-row INSERTs of _SQLITE_ROWS rows), with the store's PRAGMAs and batch size into a
    fresh store; parsing and row building are done beforehand and not timed."""
    events = [e for e in get_format("suricata").parse(io.BytesIO(data), str(tmp / "eve.json"))
              if type(e) is Event]
    key = event_keyer("bench")
    for i, e in enumerate(events):
        e.key = key(i)
    rows = _row_tuples(events)
    del events
    walls, cpus = [], []
    for run in range(runs):
        db = tmp / f"bare-{run}.db"
        Store.open(f"sqlite:///{db}").close()  # the schema, indexes and page size of a real store
        conn = sqlite3.connect(db, isolation_level=None)
        _sqlite_pragmas(conn, None)
        cpu = time.process_time()
        start = time.perf_counter()
        for first in range(0, len(rows), CHUNK):
            conn.execute("BEGIN")
            if multirow:
                for part in range(first, min(first + CHUNK, len(rows)), _SQLITE_ROWS):
                    chunk = rows[part : min(part + _SQLITE_ROWS, first + CHUNK)]
                    conn.execute(_sqlite_insert(len(chunk), False), tuple(chain.from_iterable(chunk)))
            else:
                conn.executemany(_sqlite_insert(1, False), rows[first : first + CHUNK])
            conn.execute("COMMIT")
        conn.close()  # the checkpoint at close is part of the cost, as it is for the CLI
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    return len(rows), statistics.median(walls), statistics.median(cpus)


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def mqtt_round_trip(n: int, payload: bytes) -> dict[str, Any] | None:
    """Messages/s published at QoS 1 and received (and acked, as ingestion does) through Mosquitto."""
    if not _reachable(1883):
        return None
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from healthswarm.ingest.sources.mqtt import MqttSource

    topic = f"healthswarm-bench/{uuid.uuid4().hex[:10]}"
    client_id = f"hs-bench-{uuid.uuid4().hex[:8]}"
    source = MqttSource("127.0.0.1", 1883, topic, client_id)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hs-bench-pub-{uuid.uuid4().hex[:6]}")
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    seen: set[bytes] = set()
    start = time.perf_counter()
    # paced so the broker's per-client queue (max_queued_messages, 1,000 by default) never overflows:
    # beyond it Mosquitto drops QoS 1 messages for a connected, slow subscriber too
    sent = 0
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        while sent < n and sent - len(seen) < 300:
            pub.publish(topic, b"%d " % sent + payload, qos=1)
            sent += 1
        for m in source.fetch(1000, 0.5):
            m.ack()
            seen.add(m.data.split(b" ", 1)[0])
    got = len(seen)
    seconds = time.perf_counter() - start
    pub.loop_stop()
    pub.disconnect()
    source.close()
    cleanup = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleanup.connect("127.0.0.1", 1883)
    cleanup.disconnect()
    return {"messages": n, "received": got, "per_s": round(got / seconds)}


def nats_round_trip(n: int, payload: bytes) -> dict[str, Any] | None:
    """Messages/s published to JetStream (acked by the server) and fetched + acked by a durable consumer."""
    if not _reachable(4222):
        return None
    from healthswarm.bus.nats import NatsBus

    prefix = f"hsbench{uuid.uuid4().hex[:8]}"
    bus = NatsBus("nats://127.0.0.1:4222", stream=prefix.upper(), subjects=(f"{prefix}.>",))
    try:
        sub = bus.subscribe(f"{prefix}.events", "bench")
        start = time.perf_counter()
        for i in range(0, n, 5000):
            bus.publish_many([(f"{prefix}.events", payload, "") for _ in range(min(5000, n - i))])
        got = 0
        deadline = time.monotonic() + 60
        while got < n and time.monotonic() < deadline:
            batch = sub.fetch(1000, 1.0)
            sub.ack_all(batch)
            got += len(batch)
        seconds = time.perf_counter() - start
        sub.close()
        return {"messages": n, "received": got, "per_s": round(got / seconds)}
    finally:
        bus.delete_stream(prefix.upper())
        bus.close()


def streaming_memory(size: int, lines: list[bytes], tmp: Path) -> dict[str, Any]:
    """Peak RSS of a real `healthswarm ingest` process over a generated EVE file of `size` bytes."""
    big = tmp / "big-eve.json"
    block = b"\n".join(lines[:20_000]) + b"\n"
    written = 0
    with big.open("wb") as out:
        while written < size:
            out.write(block)
            written += len(block)
    workspace = tmp / "ws-memory"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    log = tmp / "ingest-stderr.txt"
    with log.open("wb") as err_out:
        proc = subprocess.Popen([sys.executable, "-m", "healthswarm", "--workspace", str(workspace), "ingest",
                                 str(big), "--format", "suricata"], stdout=subprocess.DEVNULL, stderr=err_out, env=env)
    # VmHWM of the running process, not the rusage of the child: Linux counts in a child's maxrss the
    # parent's pages it shared before exec (this benchmark holds its inputs in memory)
    peak_kib = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    err = log.read_text(encoding="utf-8", errors="replace")
    big.unlink()
    events = 0
    for line in err.splitlines():
        if "events read" in line:
            events = int(line.split(" events read")[0].replace(",", "").split()[-1])
    for path in workspace.glob("*"):
        path.unlink()
    return {"input_mb": round(written / 2**20), "peak_rss_mib": round(peak_kib / 1024, 1),
            "seconds": round(seconds, 1), "events": events, "exit": proc.returncode}


def _recorded(quick: bool, measured: set[str]) -> dict[str, Any]:
    """The sections of the last results file that this run did not measure, with when they were measured."""
    path = RESULTS / "ingest.json"
    if not path.exists():
        return {}
    last = json.loads(path.read_text(encoding="utf-8"))
    if last.get("quick") != quick:
        return {}
    sections = {k: v for k, v in last["figures"].items() if k not in measured and k != "recorded"}
    sections.update(last["figures"].get("recorded", {}).get("sections", {}))
    when = last["figures"].get("recorded", {}).get("measured_at", last["measured_at"])
    return {"measured_at": when, "sections": sections} if sections else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (CI, development)")
    parser.add_argument("--headline", action="store_true",
                        help="only the EVE figures: no other formats, brokers or streaming memory")
    args = parser.parse_args()
    quick = args.quick
    n_eve = 50_000 if quick else 200_000
    runs = 3 if quick else 5
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="hs-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        load_start = round(os.getloadavg()[0], 2)
        lines = eve_lines(n_eve)
        eve_data = b"\n".join(lines) + b"\n"
        (n, base_s, base_cpu), (_, parse_s, parse_cpu) = alternated(
            runs, lambda: sum(1 for line in lines if orjson.loads(line) is not None),
            lambda: parse_count("suricata", eve_data))
        baseline, baseline_cpu = n / base_s, n / base_cpu
        eve_parse, eve_parse_cpu = n / parse_s, n / parse_cpu
        eve_file = tmp / "eve.json"
        eve_file.write_bytes(eve_data)
        cli = cli_ingest(eve_file, tmp, runs)
        empty = tmp / "empty.json"
        empty.write_bytes(b"")
        startup = cli_ingest(empty, tmp, runs)  # imports, settings, a new store: what any one command pays
        work_cpu = cli["cpu_s_median"] - startup["cpu_s_median"]
        cli["startup_cpu_s_median"], cli["startup_wall_s_median"] = startup["cpu_s_median"], startup["wall_s_median"]
        cli["per_cpu_second_without_startup"] = round(cli["events"] / work_cpu)
        postgres = None
        if _reachable(5432):
            postgres = {"cli": cli_ingest(eve_file, tmp, runs, postgres_database),
                        "in_process": postgres_in_process(eve_file, runs),
                        "copy_profile": postgres_copy_profile(eve_data, runs)}

        cpu: list[float] = []  # of the one-thread runs (opening the store apart)
        parse_side: list[float] = []  # of the writer-process runs: this process, and the writer process
        store_side: list[float] = []
        one, two, split = [], [], []
        for _ in range(runs):  # alternated, as above
            one.append(end_to_end("suricata", [eve_file], tmp, cpu=cpu))
            two.append(end_to_end("suricata", [eve_file], tmp, overlap=True))
            split.append(end_to_end("suricata", [eve_file], tmp, cpu=parse_side, writer_process=True,
                                    writer_cpu=store_side))
        stored1, one_s = one[0][0], statistics.median(s for _, s in one)
        stored, e2e_s = two[0][0], statistics.median(s for _, s in two)
        stored_split, split_s = split[0][0], statistics.median(s for _, s in split)
        eve_one, eve_one_cpu = stored1 / one_s, stored1 / statistics.median(cpu)
        eve_e2e = stored / e2e_s
        parse_cpu_s, store_cpu_s = statistics.median(parse_side), statistics.median(store_side)
        # on an otherwise idle 2-core machine each side has a core: wall ≈ the busier side (a prediction)
        cli["predicted_idle_wall_s"] = round(cli["startup_cpu_s_median"] + max(parse_cpu_s, store_cpu_s), 3)
        bare_n, bare_s, bare_cpu = bare_sqlite(eve_data, tmp, runs)
        bare, bare_per_cpu = bare_n / bare_s, bare_n / bare_cpu
        _, multi_s, multi_cpu = bare_sqlite(eve_data, tmp, runs, multirow=True)
        figures["runs"] = runs
        figures["cli_ingest"] = {"command": f"healthswarm ingest <{n_eve:,} EVE lines> --format suricata", **cli}
        figures["postgresql_copy"] = postgres or {"skipped": "PostgreSQL unreachable at 127.0.0.1:5432"}
        figures["baseline_orjson_loads_per_s"] = round(baseline)
        figures["baseline_orjson_loads_per_cpu_second"] = round(baseline_cpu)
        figures["baseline_sqlite_executemany_per_s"] = round(bare)
        figures["baseline_sqlite_executemany_per_cpu_second"] = round(bare_per_cpu)
        figures["bare_sqlite_multirow_per_cpu_second"] = round(bare_n / multi_cpu)
        figures["suricata"] = {"events": n, "parse_per_s": round(eve_parse),
                               "parse_per_cpu_second": round(eve_parse_cpu),
                               "sqlite_per_s": round(eve_one), "sqlite_per_cpu_second": round(eve_one_cpu),
                               "sqlite_writer_thread_per_s": round(eve_e2e),
                               "sqlite_writer_process_per_s": round(stored_split / split_s),
                               "writer_process_parse_side_cpu_s_median": round(parse_cpu_s, 3),
                               "writer_process_store_side_cpu_s_median": round(store_cpu_s, 3)}
        figures["ratio_parse_to_baseline"] = round(eve_parse / baseline, 3)
        figures["ratio_parse_to_baseline_cpu"] = round(eve_parse_cpu / baseline_cpu, 3)
        figures["ratio_cli_to_target"] = round(cli["per_s"] / 50_000, 3)
        figures["ratio_cli_per_cpu_second_to_target"] = round(cli["per_cpu_second"] / 50_000, 3)
        figures["ratio_sqlite_to_bare_executemany_cpu"] = round(eve_one_cpu / bare_per_cpu, 3)
        figures["load_average_1min"] = {"start": load_start, "after_eve": round(os.getloadavg()[0], 2)}
        figures["targets"] = {"ratio_parse_to_baseline_cpu": 0.5, "cli_ingest_eve_per_s": 50_000,
                              "postgresql_copy_per_s": 50_000}
        figures["data"] = ("josevnz/SuricataLog (EVE), SuperCowPowers/zat (Zeek), sbousseaden/EVTX-ATTACK-SAMPLES "
                           "(EVTX), microsoft/FHIR-Converter (HL7 v2), via ../shared/data")
        rows += [(f"`healthswarm ingest`, {cli['events']:,} EVE lines → SQLite (target ≥ 50,000/s)",
                  f"{cli['per_s']:,} /s ({cli['per_cpu_second']:,} per CPU s)"),
                 ("  median wall / CPU seconds of the process",
                  f"{cli['wall_s_median']:.2f} s / {cli['cpu_s_median']:.2f} s"),
                 ("  of which start-up (same command, empty file), CPU",
                  f"{startup['cpu_s_median']:.2f} s; without it {cli['per_cpu_second_without_startup']:,} per CPU s"),
                 ("baseline: orjson.loads over EVE lines", f"{baseline:,.0f} /s ({baseline_cpu:,.0f} per CPU s)"),
                 ("Suricata EVE parse+normalise", f"{eve_parse:,.0f} /s ({eve_parse_cpu:,.0f} per CPU s)"),
                 ("  ratio to baseline (target ≥ 0.5, CPU)",
                  f"{eve_parse_cpu / baseline_cpu:.2f} (wall: {eve_parse / baseline:.2f})"),
                 ("Suricata EVE → SQLite in process, one thread", f"{eve_one:,.0f} /s ({eve_one_cpu:,.0f} per CPU s)"),
                 ("  with the writer thread (overlap=True)", f"{eve_e2e:,.0f} /s"),
                 ("  with the writer process (as the CLI): wall", f"{stored_split / split_s:,.0f} /s"),
                 ("  its CPU s: parsing side / storing side", f"{parse_cpu_s:.2f} s / {store_cpu_s:.2f} s"),
                 ("  CLI wall predicted on an idle machine: start-up + the busier side",
                  f"{cli['predicted_idle_wall_s']:.2f} s ({cli['events'] / cli['predicted_idle_wall_s']:,.0f} /s; "
                  "a prediction, not a measurement)"),
                 ("baseline: bare sqlite3 executemany of the same rows",
                  f"{bare:,.0f} /s ({bare_per_cpu:,.0f} per CPU s)"),
                 ("  the same rows as the store's multi-row INSERTs",
                  f"{bare_n / multi_s:,.0f} /s ({bare_n / multi_cpu:,.0f} per CPU s)")]
        if postgres is not None:
            pg_cli, pg_in = postgres["cli"], postgres["in_process"]
            rows += [(f"`healthswarm --db postgresql://… ingest`, {pg_cli['events']:,} EVE lines, COPY "
                      "(target ≥ 50,000/s)", f"{pg_cli['per_s']:,} /s ({pg_cli['per_cpu_second']:,} per client CPU s)"),
                     ("  in process: wall / client CPU / server backends' CPU",
                      f"{pg_in['wall_s_median']:.2f} s / {pg_in['client_cpu_s_median']:.2f} s / "
                      f"{pg_in['server_cpu_s_median']:.2f} s: {pg_in['per_cpu_second_client_and_server']:,} "
                      "per CPU s of both")]
            profile = postgres["copy_profile"]
            rows += [(f"  server CPU of COPY of the same {profile['rows']:,} rows into: {name}",
                      f"{profile[name]['server_cpu_s_median']:.2f} s (wall {profile[name]['wall_s_median']:.2f} s)")
                     for name in _COPY_TABLES]
        rows.append(("load average (1 min, shared machine)", f"{load_start} at start, "
                                                             f"{figures['load_average_1min']['after_eve']} after EVE"))
        if args.headline:
            figures["recorded"] = _recorded(quick, set(figures))
            report("ingest", figures, rows, quick)
            return

        others: list[tuple[str, str, Callable[[], Any]]] = [
            ("zeek", "Zeek TSV (conn)", lambda: zeek_tsv(n_eve)),
            ("hl7", "HL7 v2", lambda: hl7_stream(n_eve // 20)),
        ]
        for name, label, make in others:
            try:
                data = make()
            except (OSError, ModuleNotFoundError) as exc:
                figures[name] = {"skipped": str(exc)}
                continue
            n, s, _ = median_of(runs, lambda data=data, name=name: parse_count(name, data))
            path = tmp / f"{name}.input"
            path.write_bytes(data)
            stored, e2e_s = end_to_end(name, [path], tmp)
            figures[name] = {"events": n, "parse_per_s": round(n / s), "sqlite_per_s": round(stored / e2e_s)}
            rows += [(f"{label} parse+normalise", f"{n / s:,.0f} /s"),
                     (f"{label} → SQLite", f"{stored / e2e_s:,.0f} /s")]
        files = evtx_files(quick)
        if files:
            n, s, _ = median_of(runs, lambda: parse_files("evtx", files))
            stored, e2e_s = end_to_end("evtx", files, tmp)
            figures["evtx"] = {"files": len(files), "events": n, "parse_per_s": round(n / s),
                               "sqlite_per_s": round(stored / e2e_s)}
            rows += [("EVTX parse+normalise", f"{n / s:,.0f} /s"), ("EVTX → SQLite", f"{stored / e2e_s:,.0f} /s")]

        n_msgs = 20_000 if quick else 100_000
        for name, label, measure in (("mqtt", "MQTT QoS 1 round trip (Mosquitto)", mqtt_round_trip),
                                     ("nats", "NATS JetStream round trip", nats_round_trip)):
            result = measure(n_msgs, lines[0])
            figures[f"{name}_round_trip"] = result
            if result is None:
                rows.append((label, "broker unreachable"))
            else:
                lost = result["messages"] - result["received"]
                rows.append((label, f"{result['per_s']:,} msg/s" + (f" ({lost:,} not received)" if lost else "")))

        memory = streaming_memory((100 if quick else 1024) * 2**20, lines, tmp)
        figures["streaming"] = memory
        rows += [(f"peak RSS, `healthswarm ingest` of {memory['input_mb']} MB EVE", f"{memory['peak_rss_mib']} MiB"),
                 ("  its events / seconds", f"{memory['events']:,} / {memory['seconds']} s")]
    report("ingest", figures, rows, quick)


if __name__ == "__main__":
    main()
