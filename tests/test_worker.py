"""Workers: configuration, the outbox, log redaction, the CLI's errors, and one worker process end to end
(health, readiness, metrics, JSON logs, graceful SIGTERM)."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select

from healthswarm.errors import ConfigError
from healthswarm.model import Alert
from healthswarm.store import Store
from healthswarm.store.tables import alerts
from healthswarm.worker import outbox
from healthswarm.worker.config import Role, WorkerConfig, redact
from healthswarm.worker.correlate import CorrelateStage
from healthswarm.worker.delivery import Delivery
from healthswarm.worker.detect import DetectStage
from healthswarm.worker.logs import JsonFormatter
from sigma_support import LOGIN_RULES
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
    ({"flush_interval": 0}, "--flush-interval"),
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


# --- the stages without a bus: timer flushes (detect), eviction and merges (correlate) ---------------------

TOO_FEW = """
    title: too few successes
    id: 00000000-0000-0000-0000-0000000000d1
    correlation:
        type: event_count
        rules: [successful_login]
        group-by: [user.name]
        timespan: 1h
        condition: {lt: 2}
    level: medium
    """


def _login_delivery(prefix: str, user: str, n: int) -> Delivery:
    from datetime import UTC, datetime, timedelta

    from healthswarm.bus.codec import event_to_bytes
    from healthswarm.model import Event

    event = Event(datetime(2026, 3, 1, 8, tzinfo=UTC) + timedelta(seconds=n),
                  {"observer.type": "test", "event.action": "login", "event.outcome": "success", "user.name": user},
                  None, source="t", record=n, key=f"k{n}")
    return Delivery(f"{prefix}.events.p0.test", event_to_bytes(event), f"m{n}", 0.0, 1)


def _detect_stage(store: Store, tmp_path: Path, prefix: str) -> DetectStage:
    import textwrap

    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "logins.yml").write_text(LOGIN_RULES, encoding="utf-8")
    (rules / "lone.yml").write_text(textwrap.dedent(TOO_FEW), encoding="utf-8")
    return DetectStage(store, WorkerConfig(Role.detect, "sqlite://", prefix=prefix, rules=(rules,)), None)


def _stored(store: Store) -> tuple[list[dict[str, object]], list[str]]:
    from healthswarm.store.alerts import load_alerts
    from healthswarm.store.worker_tables import outbox as outbox_table

    with store.read() as conn:
        return load_alerts(conn), list(conn.execute(select(outbox_table.c.subject)).scalars())


def test_detect_flush_stores_lt_correlations_once_and_keeps_them_when_the_commit_fails(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _detect_stage(store, tmp_path, "hsflush")
    stage.handle([_login_delivery("hsflush", "alice", 0), _login_delivery("hsflush", "bob", 1),
                  _login_delivery("hsflush", "bob", 2)])
    assert _stored(store) == ([], []), "an lt condition is judged when its window closes, not per event"
    stage.flush()
    assert _stored(store) == ([], []), "a flush closes no window whose hour has not passed in stream time"
    # carol's login 90 minutes later moves stream time past alice's and bob's windows (her own stays open)
    stage.handle([_login_delivery("hsflush", "carol", 5400)])

    def broken() -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(store, "transaction", broken)
        with pytest.raises(OSError):
            stage.flush()
    stage.flush()  # the alert the failed flush completed is committed now, though the windows are gone
    stored, subjects = _stored(store)
    assert [(a["rule_id"], a["details"]["group_by"]) for a in stored] == [  # type: ignore[index]
        ("00000000-0000-0000-0000-0000000000d1", {"user.name": "alice"})]
    assert subjects == ["hsflush.alerts.p0"]
    # another worker that saw the same events completes the same alert: same id, stored and announced once
    twin = _detect_stage(store, tmp_path, "hsflush")
    twin.handle([_login_delivery("hsflush", "alice", 0), _login_delivery("hsflush", "carol", 5400)])
    twin.flush()
    assert _stored(store) == (stored, subjects)


def _alert(minutes: int, ip: str, rule: str = "r") -> Alert:
    from datetime import UTC, datetime, timedelta

    from healthswarm.model import EventRef

    return Alert(detector="sigma", rule_id=rule, title=rule, level="medium",
                 timestamp=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minutes),
                 events=(EventRef("t", minutes, f"{rule}{minutes}{ip}"),), details={"entities": {"ip": [ip]}})


def _correlate(stage: CorrelateStage, store: Store, batch: list[Alert]) -> None:
    from healthswarm.store.alerts import save_alerts

    with store.transaction() as conn:  # what the detect role stores before announcing
        save_alerts(conn, batch)
    assert stage.active()
    stage.handle([Delivery("p.alerts.p0", orjson.dumps(a.as_dict()), a.id, 0.0, 1) for a in batch])


def _placements(store: Store) -> tuple[dict[str, str | None], set[str]]:
    from healthswarm.store.tables import alerts, incidents

    with store.read() as conn:
        return ({a: i for a, i in conn.execute(select(alerts.c.id, alerts.c.incident_id))},
                set(conn.execute(select(incidents.c.id)).scalars()))


def test_correlate_dedups_a_redelivery_of_an_evicted_incident_through_the_store(store: Store) -> None:
    stage = CorrelateStage(store, WorkerConfig(Role.correlate, "sqlite://", prefix=f"hsev{uuid.uuid4().hex[:8]}"))
    try:
        first = _alert(0, "10.0.0.1")
        _correlate(stage, store, [first])
        later = _alert(3 * 24 * 60, "10.0.0.1")  # three days on: the first incident can join nothing more
        _correlate(stage, store, [later])
        assert stage.correlator is not None and len(stage.correlator.incidents) == 1
        before = _placements(store)
        assert len(before[1]) == 2 and before[0][first.id] != before[0][later.id]
        _correlate(stage, store, [first])  # redelivered: the Correlator has forgotten it, the store has not
        assert _placements(store) == before
        stage.correlator = None  # a restart rebuilds from the joinable incidents only
        _correlate(stage, store, [first, later])
        assert _placements(store) == before and stage.correlator is not None
        assert set(stage.correlator.incidents) == {before[0][later.id]}
    finally:
        stage.close()


def test_correlate_writes_a_chain_of_merges_in_one_batch_as_one_incident(store: Store) -> None:
    stage = CorrelateStage(store, WorkerConfig(Role.correlate, "sqlite://", prefix=f"hsmg{uuid.uuid4().hex[:8]}"))
    try:
        z, y, x = _alert(0, "10.0.0.3"), _alert(1, "10.0.0.2"), _alert(2, "10.0.0.1")
        _correlate(stage, store, [z, y, x])
        assert len(_placements(store)[1]) == 3
        # x's incident merges into y's (the older), then y's into z's: both rows go, every alert points at z's
        bridge_xy = _alert(3, "10.0.0.1", "xy")
        bridge_xy.details["entities"]["ip"].append("10.0.0.2")
        bridge_yz = _alert(4, "10.0.0.2", "yz")
        bridge_yz.details["entities"]["ip"].append("10.0.0.3")
        _correlate(stage, store, [bridge_xy, bridge_yz])
        placed, rows = _placements(store)
        assert len(rows) == 1 and set(placed.values()) == rows
    finally:
        stage.close()


@pytest.mark.service
def test_a_detect_worker_flushes_lt_correlations_on_its_timer(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    """An lt condition completes with time alone: no later event closes the windows; stream time, advanced by
    the idle wall-clock time, passes their 2-second timespan and the timer judges them."""
    import textwrap

    d = sqlite_deployment
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "lone.yml").write_text(textwrap.dedent("""
        title: policy alert
        id: 00000000-0000-0000-0000-0000000000e1
        name: policy_alert
        logsource: {product: suricata}
        detection:
            sel:
                event.kind: alert
            condition: sel
        level: low
        ---
        title: lone policy alert from one source
        id: 00000000-0000-0000-0000-0000000000e2
        correlation:
            type: event_count
            rules: [policy_alert]
            group-by: [source.ip]
            timespan: 2s
            condition: {lt: 2}
        level: medium
        """), encoding="utf-8")
    n = 200  # 20 Suricata alerts, each from a source address of its own
    d.publish(0, n)
    proc = d.start("--role", "all", "--rules", str(rules), "--flush-interval", "1")
    lone = "00000000-0000-0000-0000-0000000000e2"

    def counts() -> dict[str, int]:
        engine = create_engine(d.db)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(alerts.c.rule_id, alerts.c.incident_id)).all()
        finally:
            engine.dispose()
        return {"lone": sum(r.rule_id == lone for r in rows),
                "lone_correlated": sum(r.rule_id == lone and r.incident_id is not None for r in rows)}

    assert d.wait_for(lambda c: c["events"] >= n, 40)["events"] == n, d.log_text()[-3000:]
    deadline = time.monotonic() + 20
    while (got := counts())["lone_correlated"] < n // 10 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert proc.poll() is None, "fired while running, not only at the stop"
    assert got == {"lone": n // 10, "lone_correlated": n // 10}, d.log_text()[-3000:]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert counts() == got  # the final flush found nothing left to add
    assert d.wait_for(lambda c: c["unsent"] == 0, 5)["unsent"] == 0
