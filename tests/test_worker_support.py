"""Helpers of the scale-out tests (no tests here): role processes (`healthswarm worker`, the alias of `agent run
--role`), a unique stream and database per test, the generated raw records and the exactly-once checks, and a
private nats-server that a test may kill."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, func, select, text

from conftest import POSTGRES_ADMIN_URL, postgres_database, service_unavailable
from healthswarm.bus import BusError, messages
from healthswarm.bus.nats import NatsBus
from healthswarm.store.tables import alerts, events
from healthswarm.store.worker_tables import outbox

ROOT = Path(__file__).resolve().parent.parent
SHARED_NATS = "nats://127.0.0.1:4222"
NATS_SERVER = "/usr/sbin/nats-server"
ALERT_EVERY = 10  # every tenth record is a Suricata alert: one healthswarm alert each
HEALTHSWARM = (sys.executable, "-m", "healthswarm")  # the real CLI, as installed
# the workers' workspace holds only the compiled Sigma rules (the database is --db): one for every test, so that
# the default packs are compiled once rather than by every worker (the cache is keyed by the rules' content)
WORKSPACE = Path(tempfile.gettempdir()) / "healthswarm-worker-tests-ws"


def record(i: int) -> bytes:
    """One Suricata EVE line; flow ids are the record numbers, so a stored event names its record."""
    base: dict[str, Any] = {"timestamp": f"2024-05-01T10:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:06d}+0000",
                            "flow_id": i, "src_ip": f"10.1.{i % 7}.{i % 200 + 1}", "src_port": 1024 + i % 60000,
                            "dest_ip": "10.2.0.10", "dest_port": 443, "proto": "TCP"}
    if i % ALERT_EVERY == 0:
        return orjson.dumps({**base, "event_type": "alert", "alert": {
            "action": "allowed", "signature_id": 2_100_000 + i % 5, "signature": f"ET POLICY test {i % 5}",
            "category": "Potential Corporate Privacy Violation", "severity": 2}})
    return orjson.dumps({**base, "event_type": "flow"})


def expected_alerts(n: int) -> int:
    return len(range(0, n, ALERT_EVERY))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """A unique prefix and stream on a NATS server, a database, and the worker processes started on them."""

    nats: str
    db: str
    tmp: Path
    prefix: str = field(default_factory=lambda: f"hswt{uuid.uuid4().hex[:10]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return self.prefix.upper()

    def publisher(self) -> NatsBus:
        return NatsBus(self.nats, stream=self.stream, subjects=(f"{self.prefix}.>",))

    def publish(self, start: int, stop: int, bus: NatsBus | None = None) -> None:
        own = bus is None
        bus = bus or self.publisher()
        try:
            for chunk in range(start, stop, 2_000):
                bus.publish_many([(f"{self.prefix}.raw.suricata", record(i), "")
                                  for i in range(chunk, min(chunk + 2_000, stop))])
        finally:
            if own:
                bus.close()

    def start(self, *args: str, limit_fsize: int | None = None, name: str = "") -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{name or len(self.procs)}.log"
        argv = [*HEALTHSWARM, "--workspace", str(WORKSPACE), "worker", "--db", self.db,
                "--nats", self.nats, "--prefix", self.prefix, "--stream", self.stream, "--ack-wait", "2", *args]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

        def limit() -> None:
            import resource

            if limit_fsize is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))

        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, env=env, preexec_fn=limit)
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def log_text(self) -> str:
        return "".join(p.log.read_text(errors="replace") for p in self.procs  # type: ignore[attr-defined]
                       if p.log.exists())  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    # --- what is stored ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        engine = create_engine(self.db)
        try:
            with engine.connect() as conn:
                return {
                    "events": conn.execute(select(func.count()).select_from(events)).scalar_one(),
                    "alerts": conn.execute(select(func.count()).select_from(alerts)).scalar_one(),
                    "correlated": conn.execute(select(func.count()).select_from(alerts)
                                               .where(alerts.c.incident_id.is_not(None))).scalar_one(),
                    "unsent": conn.execute(select(func.count()).select_from(outbox)).scalar_one(),
                }
        except Exception:  # the schema is not there yet
            return {"events": 0, "alerts": 0, "correlated": 0, "unsent": 0}
        finally:
            engine.dispose()

    def wait_for(self, condition: Callable[[dict[str, int]], bool], timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.counts()
            if condition(got) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def wait_done(self, n: int, timeout: float) -> dict[str, int]:
        want = expected_alerts(n)
        return self.wait_for(lambda c: c["events"] >= n and c["correlated"] >= want and c["unsent"] == 0, timeout)

    def assert_exactly_once(self, n: int, published_events: int = 0) -> None:
        """Every record stored once as an event, every expected alert stored once and placed in an incident,
        and the bus holding each event once (in the messages of many events the ingest role makes) and one
        message per alert (the relay's re-sends were deduplicated), besides `published_events` put on the events
        subjects by the test itself."""
        engine = create_engine(self.db)
        try:
            with engine.connect() as conn:
                flows = [f["suricata.flow_id"] if isinstance(f, dict) else orjson.loads(f)["suricata.flow_id"]
                         for f in conn.execute(select(events.c.fields)).scalars()]
                alert_rows = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
                correlated = conn.execute(select(func.count()).select_from(alerts)
                                          .where(alerts.c.incident_id.is_not(None))).scalar_one()
        finally:
            engine.dispose()
        assert len(flows) == n, f"{len(flows)} events stored for {n} records"
        assert sorted(flows) == list(range(n))
        assert alert_rows == expected_alerts(n)
        assert correlated == expected_alerts(n)
        bus = self.publisher()
        try:
            lines = bus_lines(bus, f"{self.prefix}.events.>")
            assert len(lines) == n + published_events
            assert len({orjson.loads(line)["key"] for line in lines if line.startswith(b"{")}) == n
            assert bus_count(bus, self.stream, f"{self.prefix}.alerts.>") == expected_alerts(n)
        finally:
            bus.close()


def bus_count(bus: NatsBus, stream: str, subject: str) -> int:
    async def count() -> int:
        info = await bus._js.stream_info(stream, subjects_filter=subject)
        return sum((info.state.subjects or {}).values())

    return bus._loop.run(count())


def bus_lines(bus: NatsBus, subject: str) -> list[bytes]:
    """The lines of every message on the subject so far (one event a line), read by a consumer group of its
    own."""
    sub = bus.subscribe(subject, f"check-{uuid.uuid4().hex[:8]}")
    try:
        return [line for m in messages(sub, idle=1.0, batch=500) for line in m.data.split(b"\n")]
    finally:
        sub.close()


def consumer_state(bus: NatsBus, stream: str, group: str, subject: str) -> tuple[int, int]:
    """(num_ack_pending, num_pending) of a consumer group's durable."""
    from healthswarm.bus.nats import durable_name

    async def info() -> tuple[int, int]:
        got = await bus._js.consumer_info(stream, durable_name(group, subject))
        return int(got.num_ack_pending or 0), int(got.num_pending or 0)

    return bus._loop.run(info())


@pytest.fixture
def tmp_db(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'ws' / 'healthswarm.db').resolve()}"


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A PostgreSQL database of this test alone, dropped after it."""
    with postgres_database("hsw_worker") as url:
        yield url


def terminate_backends(db: str) -> int:
    """Cut every connection to the test database (what a PostgreSQL failover does to clients)."""
    name = db.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name}).all())
    finally:
        admin.dispose()


def deployment(nats: str, db: str, tmp: Path) -> Iterator[Deployment]:
    """A deployment whose stream is deleted and whose workers are stopped afterwards."""
    d = Deployment(nats, db, tmp)
    try:
        bus = d.publisher()
    except BusError as exc:
        service_unavailable(str(exc))
    bus.close()
    try:
        yield d
    finally:
        for p in d.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        try:
            bus = NatsBus(nats, stream=None, connect_timeout=1)
            bus.delete_stream(d.stream)
            bus.close()
        except BusError:
            pass  # a private server already gone takes the stream with it


class NatsServer:
    """A nats-server of the test's own (JetStream, file store in a temporary folder), to kill and restart."""

    def __init__(self, store_dir: Path) -> None:
        if not Path(NATS_SERVER).exists():
            service_unavailable(f"{NATS_SERVER} not installed")
        self.port = free_port()
        self.store_dir = store_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([NATS_SERVER, "-js", "-p", str(self.port), "-sd", str(self.store_dir),
                                      "-a", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.store_dir, ignore_errors=True)
