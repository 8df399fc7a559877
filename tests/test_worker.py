"""Workers: configuration, the outbox, log redaction, the CLI's errors, and one worker process end to end
(health, readiness, metrics, JSON logs, graceful SIGTERM)."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from healthswarm.errors import ConfigError
from healthswarm.store import Store
from healthswarm.worker import outbox
from healthswarm.worker.config import Role, WorkerConfig, redact
from healthswarm.worker.logs import JsonFormatter
from test_worker_support import HEALTHSWARM, ROOT, SHARED_NATS, Deployment, deployment, free_port, tmp_db  # noqa: F401


def test_config_names_one_durable_per_role_and_partitions_events() -> None:
    config = WorkerConfig(Role.all, "sqlite://", prefix="hs.site1", partitions=4)
    assert [config.durable(r) for r in config.role.stages()] == ["hs_site1-ingest", "hs_site1-detect",
                                                                 "hs_site1-correlate"]
    assert config.filter_subject(Role.detect) == "hs.site1.events.*.>"
    assert {config.partition_of("org-a") for _ in range(3)} == {config.partition_of("org-a")}
    assert 0 <= config.partition_of("org-b") < 4
    pinned = WorkerConfig(Role.detect, "sqlite://", partitions=4, partition=2)
    assert pinned.durable(Role.detect).endswith("-detect-p2")
    assert pinned.filter_subject(Role.detect) == "healthswarm.events.p2.>"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nats": "http://x"}, "expected nats://host:port"),
    ({"nats": "nats://h:port"}, "not a number"),
    ({"prefix": "a.>"}, "--prefix"),
    ({"stream": "a.b"}, "--stream"),
    ({"partitions": 2, "partition": 2}, "--partition 2"),
])
def test_config_rejects_bad_values_with_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerConfig(Role.detect, "sqlite://", **kwargs)  # type: ignore[arg-type]


def test_urls_lose_their_passwords_in_logs() -> None:
    assert redact("postgresql://hs:s3cret@db:5432/x and nats://u:pw@n:4222") == \
        "postgresql://hs:***@db:5432/x and nats://u:***@n:4222"
    record = logging.LogRecord("t", logging.ERROR, "", 0, "cannot reach %s", ("nats://a:b@h:1",), None)
    record.db = "postgresql://x:y@h/d"
    try:
        raise RuntimeError("connection to postgresql://x:y@h/d failed\nsecond line")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    doc = orjson.loads(JsonFormatter({"role": "detect"}).format(record))
    assert doc["msg"] == "cannot reach nats://a:***@h:1"
    assert doc["db"] == "postgresql://x:***@h/d"
    assert doc["error"] == "RuntimeError: connection to postgresql://x:***@h/d failed"
    assert doc["role"] == "detect"


def test_outbox_is_idempotent_and_relays_each_row_once(store: Store) -> None:
    messages = [outbox.OutboxMessage(f"k{i}", "p.events.p0.x", b"{}", 1.0) for i in range(5)]
    with store.transaction() as conn:
        assert outbox.add(conn, messages + messages[:2]) == {f"k{i}" for i in range(5)}
    with store.transaction() as conn:
        assert outbox.add(conn, messages[3:]) == set()  # the effect was redelivered: nothing new to announce
        claimed = outbox.claim(conn, 3)
        assert [p.message.msg_id for p in claimed] == ["k0", "k1", "k2"]
        outbox.mark_sent(conn, [p.row_id for p in claimed])
    with store.transaction() as conn:
        assert [p.message.msg_id for p in outbox.claim(conn, 10)] == ["k3", "k4"]
        assert outbox.backlog(conn) == 2


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*HEALTHSWARM, *args], capture_output=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("args", "needle"), [
    (["--nats", "http://nowhere"], "expected nats://host:port"),
    (["--nats", f"nats://user:hunter2@127.0.0.1:{free_port()}"], "cannot connect"),
    (["--role", "correlate", "--partition", "0"], "--partition"),
    (["--db", "mysql://x/y"], "unsupported database"),
])
def test_cli_user_mistakes_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    argv = ["--workspace", str(tmp_path), "worker", *(["--role", "ingest"] if "--role" not in args else []), *args]
    result = _cli(*argv)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert needle in err
    assert "Traceback" not in err
    assert "hunter2" not in err


@pytest.fixture
def sqlite_deployment(tmp_path: Path, tmp_db: str) -> Iterator[Deployment]:  # noqa: F811
    yield from deployment(SHARED_NATS, tmp_db, tmp_path)


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.service
def test_worker_end_to_end_with_probes_metrics_and_graceful_stop(sqlite_deployment: Deployment) -> None:
    d = sqlite_deployment
    n = 1_000
    d.publish(0, n)
    port = free_port()
    proc = d.start("--role", "all", "--metrics-port", str(port), "--batch", "100")
    got = d.wait_done(n, 40)
    assert got["events"] == n, d.log_text()[-3000:]
    assert _get(port, "/healthz") == (200, b"ok\n")
    status, body = _get(port, "/readyz")
    assert status == 200, body
    assert orjson.loads(body) == {"ready": True, "checks": {"database": True, "nats": True, "consumers_bound": True},
                                  "active": {"ingest": True, "detect": True, "correlate": True}}
    _, metrics = _get(port, "/metrics")
    text = metrics.decode()
    assert f"healthswarm_worker_events_stored_total {n}.0" in text
    assert f"healthswarm_worker_alerts_total {n // 10}.0" in text
    assert 'healthswarm_worker_batch_seconds_count{role="detect"}' in text
    assert "healthswarm_worker_event_to_alert_seconds_bucket" in text
    time.sleep(5.5)  # one lag probe after the work is done
    assert 'healthswarm_worker_consumer_pending{role="ingest"} 0.0' in _get(port, "/metrics")[1].decode()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    d.assert_exactly_once(n)
    lines = [line for line in d.log_text().splitlines() if line.strip()]
    docs = [orjson.loads(line) for line in lines]  # every line one JSON object
    assert docs[-1]["msg"] == "worker stopped"
    assert all(doc["role"] == "all" for doc in docs)


DEMO = ROOT / "src" / "healthswarm" / "demo"


@pytest.mark.service
def test_workers_detect_what_the_batch_stage_detects(sqlite_deployment: Deployment) -> None:
    """The demo's logs, one message per file on `raw.auto`: the worker pipeline stores the same single-event
    Sigma and sensor alerts as the batch detection stage over the same records."""
    import io
    from collections import Counter

    from healthswarm.detect.sensor import SensorAlertDetector
    from healthswarm.detect.sigma import HEALTHCARE_RULES, SigmaDetector, load_rules
    from healthswarm.detect.stage import run_detectors
    from healthswarm.ingest.pipeline import detect
    from healthswarm.model import Event
    from healthswarm.store.alerts import load_alerts

    d = sqlite_deployment
    files = sorted((DEMO / "logs").iterdir())
    parsed: list[Event] = []
    for path in files:
        data = path.read_bytes()
        fmt = detect(data[:65536])
        assert fmt is not None, path
        parsed += [e for e in fmt.parse(io.BytesIO(data), str(path), 0) if isinstance(e, Event)]
    ruleset = load_rules([DEMO / "rules", HEALTHCARE_RULES])
    _, expected = run_detectors(sorted(parsed, key=lambda e: e.timestamp), [SigmaDetector(ruleset),
                                                                          SensorAlertDetector()])
    want = Counter((a.detector, a.rule_id) for a in expected if a.detector != "sigma-correlation")
    assert want, "the demo's logs should raise single-event alerts"

    bus = d.publisher()
    try:
        bus.publish_many([(f"{d.prefix}.raw.auto", path.read_bytes(), "") for path in files])
    finally:
        bus.close()
    proc = d.start("--role", "all", "--rules", str(DEMO / "rules"), "--rules", str(HEALTHCARE_RULES))
    d.wait_for(lambda c: c["events"] >= len(parsed) and c["unsent"] == 0 and c["alerts"] >= sum(want.values())
               and c["correlated"] == c["alerts"], 60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, d.log_text()[-2000:]
    store = Store.open(d.db)
    try:
        with store.read() as conn:
            stored = load_alerts(conn)
    finally:
        store.close()
    got = Counter((a["detector"], a["rule_id"]) for a in stored if a["detector"] != "sigma-correlation")
    assert got == want
