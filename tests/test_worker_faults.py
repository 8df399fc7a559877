"""Faults against real worker processes, the real PostgreSQL and NATS (a private nats-server where the test
kills it): after each, every record is stored once as an event, every expected alert exists once and sits in an
incident, and the bus holds one message per event and per alert."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_worker_support import (  # noqa: F401 - fixtures
    SHARED_NATS,
    Deployment,
    NatsServer,
    consumer_state,
    deployment,
    pg_db,
    terminate_backends,
    tmp_db,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]


@pytest.fixture
def pg(tmp_path: Path, pg_db: str) -> Iterator[Deployment]:  # noqa: F811
    yield from deployment(SHARED_NATS, pg_db, tmp_path)


@pytest.fixture
def lite(tmp_path: Path, tmp_db: str) -> Iterator[Deployment]:  # noqa: F811
    yield from deployment(SHARED_NATS, tmp_db, tmp_path)


def _finish(d: Deployment, n: int, timeout: float = 40) -> None:
    got = d.wait_done(n, timeout)
    assert got["events"] == n and got["unsent"] == 0, (got, d.log_text()[-3000:])
    d.stop_all()
    assert all(p.returncode in (0, -signal.SIGKILL) for p in d.procs), d.log_text()[-3000:]
    d.assert_exactly_once(n)


def test_kill9_a_worker_mid_batch_and_restart_it(pg: Deployment) -> None:
    """Two workers share each role's durable on PostgreSQL; one dies with -9 mid-way and comes back."""
    n = 6_000
    pg.publish(0, n)
    victim = pg.start("--role", "all", "--batch", "200", name="victim")
    pg.start("--role", "all", "--batch", "200", name="peer")
    got = pg.wait_for(lambda c: c["events"] > 0, 30)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert 0 < got["events"] < n, "the kill should land mid-way"
    pg.start("--role", "all", "--batch", "200", name="victim-again")
    _finish(pg, n)


def test_nats_restart(tmp_path: Path, tmp_db: str) -> None:  # noqa: F811
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        for d in deployment(server.url, tmp_db, tmp_path):
            n = 4_000
            d.publish(0, n // 2)
            d.start("--role", "all", "--batch", "100")
            d.wait_for(lambda c: c["events"] > 0, 30)
            server.kill(signal.SIGKILL)
            time.sleep(2)  # the worker is cut off: fetches, acks and the relay's publishes fail meanwhile
            server.start()
            d.publish(n // 2, n)
            _finish(d, n)
    finally:
        server.close()


def test_postgresql_connections_cut(pg: Deployment) -> None:
    n = 5_000
    pg.publish(0, n)
    pg.start("--role", "all", "--batch", "100")
    pg.wait_for(lambda c: c["events"] > 0, 30)
    cut = 0
    for k in range(1, 4):  # three failovers in a row, each while work is in flight: records just published
        pg.publish(k * n, (k + 1) * n)
        cut += terminate_backends(pg.db)
        time.sleep(1.0)
    assert cut > 0
    _finish(pg, 4 * n, timeout=120)
    log = pg.log_text()
    assert "batch failed" in log or "will retry" in log or "correlator lease: database unreachable" in log


def test_sqlite_disk_full_then_space_again(lite: Deployment) -> None:
    """The workspace's file system fills up (RLIMIT_FSIZE: no file may grow past 3 MB): batches fail and are
    nak'ed, the worker stays up and stops cleanly; with space again it finishes, nothing lost or doubled."""
    n = 8_000
    lite.publish(0, n)
    full = lite.start("--role", "all", "--batch", "200", limit_fsize=3 * 1024 * 1024, name="full")
    deadline = time.monotonic() + 40
    while "batch failed" not in lite.log_text() and time.monotonic() < deadline:
        assert full.poll() is None, lite.log_text()[-3000:]
        time.sleep(0.2)
    # SQLite reports EFBIG as an I/O error, ENOSPC as "database or disk is full"
    assert "disk I/O error" in lite.log_text() or "database or disk is full" in lite.log_text()
    assert lite.counts()["events"] < n
    full.send_signal(signal.SIGTERM)
    assert full.wait(20) == 0
    lite.start("--role", "all", "--batch", "200", name="roomy")
    _finish(lite, n)


def test_consumer_100x_slower_than_the_producer(pg: Deployment) -> None:
    """The producer bursts; the worker runs 1 % of the time (SIGSTOP/SIGCONT: the 100x slow-down is produced
    by the throttle, not measured). JetStream holds the backlog, the role's durable never has more than
    --max-in-flight out, held batches time out and come back (ack_wait), and once the worker runs freely
    everything is stored exactly once."""
    n = 3_000
    pg.publish(0, n)
    worker = pg.start("--role", "all", "--batch", "50", "--max-in-flight", "100")
    pg.wait_for(lambda c: c["events"] > 0, 30)
    throttled = threading.Event()
    throttled.set()
    cycles = 0

    def throttle() -> None:
        nonlocal cycles
        while throttled.is_set() and worker.poll() is None:
            os.kill(worker.pid, signal.SIGSTOP)
            time.sleep(0.099)
            os.kill(worker.pid, signal.SIGCONT)
            time.sleep(0.001)
            cycles += 1

    thread = threading.Thread(target=throttle, daemon=True)
    thread.start()
    bus = pg.publisher()
    try:
        peak = 0
        for _ in range(50):  # about 10 s of throttled running, sampled 50 times
            ack_pending, _ = consumer_state(bus, pg.stream, f"{pg.prefix}-ingest", f"{pg.prefix}.raw.>")
            peak = max(peak, ack_pending)
            time.sleep(0.2)
        _, backlog = consumer_state(bus, pg.stream, f"{pg.prefix}-ingest", f"{pg.prefix}.raw.>")
        stored_while_throttled = pg.counts()["events"]
    finally:
        bus.close()
        throttled.clear()
        thread.join(5)
        os.kill(worker.pid, signal.SIGCONT)
    assert cycles > 0, "the throttle never stopped the worker"
    assert peak <= 100, f"{peak} messages out un-acked for --max-in-flight 100"
    assert backlog > 0, "the throttled worker should have left a backlog with JetStream"
    assert stored_while_throttled < n, "the throttled worker cannot have stored the whole burst"
    _finish(pg, n, 50)
