"""NATS JetStream ingestion against the real server: acked after commit, nothing lost or doubled when
the consumer is killed (-9) and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select

from conftest import rows_in, service_unavailable
from healthswarm.bus import BusError
from healthswarm.bus.nats import NatsBus, stream_name_for
from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.nats import NatsSource
from healthswarm.store import Store
from healthswarm.store.events import count_events
from healthswarm.store.tables import events

SERVER = "nats://127.0.0.1:4222"
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.service


@pytest.fixture
def subject() -> Iterator[tuple[NatsBus, str]]:
    """A publisher connected to NATS and a subject (with its own stream) unique to the test."""
    name = f"hstest.{uuid.uuid4().hex[:12]}.eve"
    try:
        bus = NatsBus(SERVER, stream=stream_name_for(name), subjects=(name,))
    except BusError as exc:
        service_unavailable(str(exc))
    yield bus, name
    bus.delete_stream(stream_name_for(name))
    bus.close()


def _line(i: int) -> bytes:
    return orjson.dumps({"timestamp": "2024-05-01T10:00:00.000000+0000", "event_type": "flow", "flow_id": i,
                         "src_ip": "10.0.0.1", "src_port": 1000 + i % 60000, "dest_ip": "10.0.0.2",
                         "dest_port": 53, "proto": "UDP"})




def test_in_process_consume_then_redelivery_is_stored_once(subject: tuple[NatsBus, str], store: Store) -> None:
    bus, name = subject
    bus.publish_many([(name, _line(i), "") for i in range(50)])
    with NatsSource(SERVER, name, group="g1", ack_wait=1.0) as source:
        held = source.fetch(10, 2.0)  # taken but never acked, as by a consumer that died
        assert len(held) == 10
        time.sleep(1.2)  # past ack_wait: the server delivers them again
        pipeline = Pipeline(store)
        pipeline.consume(source, scheme="nats", fmt=get_format("suricata"), name=name, should_stop=lambda: False,
                         idle=1.0)
        for m in held:
            m.ack()  # too late: the redelivered copies were stored and acked already
    with store.read() as conn:
        assert count_events(conn) == 50  # each message's stream sequence gives it one key
    assert pipeline.stats.messages == 50  # 40 never taken + the 10 redelivered


def _ingester(workspace: Path, url: str, follow: bool) -> subprocess.Popen[bytes]:
    # what the killed consumer held comes back after ack_wait: the restarted one must wait longer than that
    args = [sys.executable, "-m", "healthswarm", "--workspace", str(workspace), "ingest", url,
            "--format", "suricata", "--batch-size", "200", "--ack-wait", "2"]
    args += ["--follow"] if follow else ["--idle", "5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def test_nats_ingest_survives_kill9(subject: tuple[NatsBus, str], tmp_path: Path) -> None:
    bus, name = subject
    total = 20_000
    bus.publish_many([(name, _line(i), "") for i in range(total)])
    workspace = tmp_path / "ws"
    db = f"sqlite:///{(workspace / 'healthswarm.db').resolve()}"
    url = f"{SERVER}/{name}"
    proc = _ingester(workspace, url, True)
    try:
        deadline = time.monotonic() + 60
        while rows_in(db) == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = rows_in(db)
    assert 0 < at_kill < total, f"the kill should land mid-way ({at_kill} of {total})"
    again = _ingester(workspace, url, False)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err.decode()[-2000:]
    engine = create_engine(db)
    with engine.connect() as conn:
        flows = [fields["suricata.flow_id"] for fields in conn.execute(select(events.c.fields)).scalars()]
    engine.dispose()
    assert len(flows) == total
    assert sorted(flows) == list(range(total))
