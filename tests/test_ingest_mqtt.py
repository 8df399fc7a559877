"""MQTT ingestion against the real Mosquitto: acked only after commit, nothing lost or doubled when
the consumer is killed (-9) and restarted while messages keep coming."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select

from conftest import rows_in, service_unavailable
from healthswarm.ingest.sources.mqtt import MqttSource
from healthswarm.store.tables import events

HOST, PORT = "127.0.0.1", 1883
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.service


@pytest.fixture
def topic() -> str:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        service_unavailable(f"MQTT broker at {HOST}:{PORT}: {exc}")
    return f"healthswarm-test/{uuid.uuid4().hex[:12]}/eve"


def _publisher() -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()
    return client


def _forget_session(client_id: str) -> None:
    """Connecting with a clean session removes the persistent one from the broker."""
    cleanup = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleanup.connect(HOST, PORT)
    cleanup.disconnect()


def _line(i: int) -> bytes:
    return orjson.dumps({"timestamp": "2024-05-01T10:00:00.000000+0000", "event_type": "flow", "flow_id": i,
                         "src_ip": "10.0.0.1", "src_port": 1000 + i % 60000, "dest_ip": "10.0.0.2",
                         "dest_port": 53, "proto": "UDP"})


def _publish(client: mqtt.Client, topic: str, numbers: range, pace: float = 0.0) -> None:
    for i in numbers:
        client.publish(topic, _line(i), qos=1).wait_for_publish(5)
        if pace and i % 20 == 0:
            time.sleep(pace)


def test_unacked_messages_come_back_to_the_same_session(topic: str) -> None:
    client_id = f"hs-test-{uuid.uuid4().hex[:8]}"
    first = MqttSource(HOST, PORT, topic, client_id)
    pub = _publisher()
    try:
        _publish(pub, topic, range(5))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            got.extend(first.fetch(10, 0.5))
        assert len(got) == 5
        for m in got[:2]:
            m.ack()
        first.close()  # three never acked
        again = MqttSource(HOST, PORT, topic, client_id)
        back = []
        deadline = time.monotonic() + 10
        while len(back) < 3 and time.monotonic() < deadline:
            back.extend(again.fetch(10, 0.5))
        assert sorted(m.data for m in back) == sorted(m.data for m in got[2:])
        for m in back:
            m.ack()
        assert again.fetch(10, 0.5) == []
        again.close()
        _forget_session(client_id)
    finally:
        pub.loop_stop()
        pub.disconnect()




def _ingester(workspace: Path, url: str, follow: bool, group: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "healthswarm", "--workspace", str(workspace), "ingest", url,
            "--format", "suricata", "--group", group]
    args += ["--follow"] if follow else ["--idle", "3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def test_mqtt_ingest_survives_kill9(topic: str, tmp_path: Path) -> None:
    total = 800  # below Mosquitto's default queue of 1,000 per client, which would drop the excess
    workspace = tmp_path / "ws"
    db = f"sqlite:///{(workspace / 'healthswarm.db').resolve()}"
    url = f"mqtt://{HOST}:{PORT}/{topic}"
    group = f"hs-test-{uuid.uuid4().hex[:8]}"
    proc = _ingester(workspace, url, True, group)
    # the subscription must exist before publishing (MQTT keeps nothing for unknown sessions)
    deadline = time.monotonic() + 30
    while not (workspace / "healthswarm.db").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    pub = _publisher()
    sender = threading.Thread(target=_publish, args=(pub, topic, range(total), 0.05))
    sender.start()
    try:
        deadline = time.monotonic() + 60
        while rows_in(db) == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = rows_in(db)
        sender.join(60)
        assert 0 < at_kill < total, f"the kill should land mid-way ({at_kill} of {total})"
        again = _ingester(workspace, url, False, group)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()[-2000:]
    finally:
        pub.loop_stop()
        pub.disconnect()
        if proc.poll() is None:
            proc.kill()
    engine = create_engine(db)
    with engine.connect() as conn:
        flows = [fields["suricata.flow_id"] for fields in conn.execute(select(events.c.fields)).scalars()]
    engine.dispose()
    _forget_session(MqttSource.client_id_for(group, topic))
    assert len(flows) == total
    assert sorted(flows) == list(range(total))
