"""THE kill -9 test: a real `healthswarm ingest` process is SIGKILLed mid-way through a large EVE file,
restarted, and every event must then be stored exactly once (count and set of keys vs the file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, func, select

from conftest import rows_in
from healthswarm.ingest.sources.file import IDENTITY_BYTES, new_identity, source_name
from healthswarm.model import event_key
from healthswarm.store import Store
from healthswarm.store.tables import events, quarantine

LINES = 200_000
BAD_EVERY = 20_011  # a few malformed lines: quarantine must be exactly-once too
ROOT = Path(__file__).resolve().parent.parent


def _write_eve(path: Path) -> tuple[list[int], int]:
    """A generated Suricata EVE file; (end offsets of the good lines, number of bad lines)."""
    ends: list[int] = []
    bad = 0
    position = 0
    with path.open("wb") as out:
        for i in range(LINES):
            if i % BAD_EVERY == BAD_EVERY - 1:
                line = b'{"timestamp":"2024-05-01T10:00:00.000000+0000","event_type":"flow","src_ip":"10.0.'
                bad += 1
            else:
                line = orjson.dumps({
                    "timestamp": f"2024-05-01T10:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:06d}+0000",
                    "flow_id": 1_000_000 + i, "event_type": "flow", "src_ip": f"10.1.{i % 250}.{i % 199 + 1}",
                    "src_port": 40000 + i % 20000, "dest_ip": "10.2.8.8", "dest_port": 53, "proto": "UDP",
                    "flow": {"pkts_toserver": 1, "pkts_toclient": 1, "bytes_toserver": 80, "bytes_toclient": 120},
                })
            out.write(line + b"\n")
            position += len(line) + 1
            if not line.endswith(b'"10.0.'):
                ends.append(position)
    return ends, bad




def _start(workspace: Path, db: str | None, eve: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "healthswarm", "--workspace", str(workspace)]
    if db:
        args += ["--db", db]
    args += ["ingest", str(eve), "--format", "suricata", "--batch-size", "2000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _kill_when_some_stored(proc: subprocess.Popen[bytes], url: str, total: int) -> int:
    """Poll the store until the ingester has committed something, then SIGKILL it; events at the kill."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ingest ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            stored = rows_in(url)
        except Exception:  # the database or its tables are not created yet
            stored = 0
        if stored > 0:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            after = rows_in(url)
            assert 0 < after < total, f"the kill should land mid-way (stored {after} of {total})"
            return after
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no events committed within 120 s")


def _crash_and_resume(tmp_path: Path, url: str, db: str | None) -> None:
    eve = tmp_path / "eve-big.json"
    ends, bad = _write_eve(eve)
    workspace = tmp_path / "ws"
    # killed twice: a second crash after a resume must be just as harmless
    first = _kill_when_some_stored(_start(workspace, db, eve), url, len(ends))
    second = _kill_when_some_stored(_start(workspace, db, eve), url, len(ends))
    assert second >= first
    proc = _start(workspace, db, eve)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]

    identity = new_identity(source_name(eve), eve.read_bytes()[:IDENTITY_BYTES])
    expected = {event_key(identity, end) for end in ends}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            keys = list(conn.execute(select(events.c.key)).scalars())
            rejects = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
    finally:
        engine.dispose()
    assert len(keys) == len(ends), f"stored {len(keys)} events for {len(ends)} lines"
    assert set(keys) == expected
    assert rejects == bad


@pytest.mark.slow
def test_kill9_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'ws' / 'healthswarm.db').resolve()}"
    _crash_and_resume(tmp_path, url, None)


@pytest.mark.slow
@pytest.mark.service
def test_kill9_postgresql(tmp_path: Path, postgres_url: str) -> None:
    store = Store.open(postgres_url)
    store.clear()
    store.close()
    try:
        _crash_and_resume(tmp_path, postgres_url, postgres_url)
    finally:
        store = Store.open(postgres_url)
        store.clear()
        store.close()
