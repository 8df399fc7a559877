"""Scale-out roles: configuration, the outbox, log redaction, the CLI's errors, the roles on the shared stages,
one worker process end to end (health, readiness, metrics, JSON logs, graceful SIGTERM), the whole detection
suite in the detect role, and dead letters."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select

from healthswarm.agent.logs import JsonFormatter, redact
from healthswarm.bus.memory import MemoryMessage
from healthswarm.detect.correlate_stage import CorrelateStage
from healthswarm.detect.sigma import CACHE_SUBDIR
from healthswarm.errors import ConfigError
from healthswarm.model import Alert
from healthswarm.store import Store
from healthswarm.store.tables import alerts
from healthswarm.worker import outbox
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.roles import DetectRole
from sigma_support import LOGIN_RULES
from test_worker_support import (  # noqa: F401 - fixtures
    HEALTHSWARM,
    ROOT,
    SHARED_NATS,
    WORKSPACE,
    Deployment,
    deployment,
    free_port,
    pg_db,
    tmp_db,
)


def test_config_names_one_group_per_role_and_partitions_events() -> None:
    config = WorkerConfig(Role.all, "sqlite://", prefix="hs.site1", partitions=4)
    assert [config.group(r) for r in config.role.stages()] == ["hs_site1-ingest", "hs_site1-detect",
                                                               "hs_site1-correlate"]
    assert config.filter_subject(Role.detect) == "hs.site1.events.*.>"
    assert {config.partition_of("org-a") for _ in range(3)} == {config.partition_of("org-a")}
    assert 0 <= config.partition_of("org-b") < 4
    pinned = WorkerConfig(Role.detect, "sqlite://", partitions=4, partition=2)
    assert pinned.group(Role.detect).endswith("-detect-p2")
    assert pinned.filter_subject(Role.detect) == "healthswarm.events.p2.>"


def test_partition_key_keeps_a_clinical_feed_together_and_spreads_assets() -> None:
    from datetime import UTC, datetime

    from healthswarm.model import Event
    from healthswarm.worker.config import partition_key

    def event(**fields: object) -> Event:
        return Event(datetime(2026, 3, 1, tzinfo=UTC), {"organization.id": "org-a", **fields}, None)

    # the privacy monitor joins FHIR reads to HL7 ADT care relationships: one organisation's feed, one key
    clinical = {partition_key(event(**{"observer.type": kind, "source.ip": ip, "user.name": user}))
                for kind, ip, user in (("hl7", "10.0.0.1", ""), ("fhir", "10.0.0.2", "c.braun"), ("dicom", "", ""))}
    assert clinical == {"clinical:org-a"}
    # other events follow their asset: the host whose log it is, else the source asset or address
    assert partition_key(event(**{"observer.type": "sysmon", "host.name": "ws-12", "source.ip": "10.0.0.9"})) == \
        partition_key(event(**{"observer.type": "sysmon", "host.name": "ws-12"}))
    assert partition_key(event(**{"observer.type": "suricata", "source.ip": "10.0.0.9"})) != \
        partition_key(event(**{"observer.type": "suricata", "source.ip": "10.0.0.10"}))
    assert partition_key(event(**{"observer.type": "suricata"})) == "organisation:org-a"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nats": "http://x"}, "expected nats://host:port"),
    ({"nats": "nats://h:port"}, "not a number"),
    ({"prefix": "a.>"}, "--prefix"),
    ({"stream": "a.b"}, "--stream"),
    ({"partitions": 2, "partition": 2}, "--partition 2"),
    ({"flush_interval": 0}, "--flush-interval"),
    ({"max_deliveries": 0}, "--max-deliveries"),
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
        added = outbox.add(conn, messages + messages[:2])
        assert [p.message.msg_id for p in added] == [f"k{i}" for i in range(5)]
    with store.transaction() as conn:
        assert outbox.add(conn, messages[3:]) == []  # still queued: nothing new to announce
        assert outbox.claim(conn, 3, timedelta(minutes=1)) == [], "younger rows are their own relay's"
        claimed = outbox.claim(conn, 3)
        assert claimed == added[:3]
        outbox.remove(conn, [p.row_id for p in claimed])
    with store.transaction() as conn:
        assert [p.message.msg_id for p in outbox.claim(conn, 10)] == ["k3", "k4"]
        assert outbox.backlog(conn) == 2


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def test_migration_0012_drops_the_sent_column_and_keeps_the_queued_rows(backend: str, tmp_path: Path) -> None:
    from contextlib import nullcontext

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, text

    from conftest import postgres_database
    from healthswarm.store.db import MIGRATIONS, create_store_engine
    from healthswarm.store.tables import metadata

    with (nullcontext(f"sqlite:///{tmp_path / 'old.db'}") if backend == "sqlite"
          else postgres_database("healthswarm_migration")) as url:
        engine = create_store_engine(url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = engine
        command.upgrade(config, "0011")
        with engine.begin() as conn:  # a row queued by a worker of revision 0011
            conn.execute(text("INSERT INTO outbox (msg_id, subject, payload, born, created) "
                              "VALUES ('k1', 'p.events.p0.x', :p, 1.5, CURRENT_TIMESTAMP)"), {"p": b"{}"})
        command.upgrade(config, "0012")
        with engine.connect() as conn:
            assert "sent" not in {c["name"] for c in inspect(conn).get_columns("outbox")}
            assert [p.message for p in outbox.claim(conn, 10)] == [outbox.OutboxMessage("k1", "p.events.p0.x",
                                                                                         b"{}", 1.5)]
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert not [d for d in diff if "outbox" in repr(d)], diff
        command.downgrade(config, "0011")
        with engine.connect() as conn:
            assert "sent" in {c["name"] for c in inspect(conn).get_columns("outbox")}
        engine.dispose()


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


@pytest.mark.parametrize(("args", "needle"), [
    (["--role", "detect", "--nats", "http://nowhere"], "expected nats://host:port"),  # the same flags as `worker`
    (["--db", "postgresql://h/d"], "--db: only with --role"),
    (["--role", "ingest", "--api", "127.0.0.1:0"], "--api: the embedded agent's"),
])
def test_agent_run_role_mistakes_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    result = _cli("--workspace", str(tmp_path), "agent", "run", *args)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert needle in err and "Traceback" not in err


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
                                  "active": {"ingest": True, "detect": True, "correlate": True},
                                  "dead_letters": {"ingest": 0, "detect": 0, "correlate": 0}}
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
    """The demo's logs, one message per file on `raw.auto`: the worker pipeline (the whole suite, with the
    default packs and the demo's rules) stores the same single-event Sigma and sensor alerts as the batch
    detection stage over the same records."""
    import io
    from collections import Counter

    from healthswarm.detect.sensor import SensorAlertDetector
    from healthswarm.detect.sigma import SigmaDetector, load_rules
    from healthswarm.detect.sigma.packs import DEFAULT_PACKS, pack_paths
    from healthswarm.detect.stage import run_detectors
    from healthswarm.ingest.pipeline import detect
    from healthswarm.model import Event

    d = sqlite_deployment
    files = sorted((DEMO / "logs").iterdir())
    parsed: list[Event] = []
    for path in files:
        data = path.read_bytes()
        fmt = detect(data[:65536])
        assert fmt is not None, path
        parsed += [e for e in fmt.parse(io.BytesIO(data), str(path), 0) if isinstance(e, Event)]
    ruleset = load_rules([DEMO / "rules", *pack_paths(DEFAULT_PACKS)], cache_dir=WORKSPACE / CACHE_SUBDIR)
    _, expected = run_detectors(sorted(parsed, key=lambda e: e.timestamp), [SigmaDetector(ruleset),
                                                                          SensorAlertDetector()])
    want = Counter((a.detector, a.rule_id) for a in expected if a.detector != "sigma-correlation")
    assert want, "the demo's logs should raise single-event alerts"

    bus = d.publisher()
    try:
        bus.publish_many([(f"{d.prefix}.raw.auto", path.read_bytes(), "") for path in files])
    finally:
        bus.close()
    proc = d.start("--role", "all", "--rules", str(DEMO / "rules"))
    d.wait_for(lambda c: c["events"] >= len(parsed) and c["unsent"] == 0 and c["alerts"] >= sum(want.values())
               and c["correlated"] == c["alerts"], 60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, d.log_text()[-2000:]
    store = Store.open(d.db)
    try:
        with store.read() as conn:
            stored = list(conn.execute(select(alerts.c.document)).scalars())
    finally:
        store.close()
    single_event = {detector for detector, _ in want} | {"sigma"}  # Sigma and the sensors' own detectors
    got = Counter((a["detector"], a["rule_id"]) for a in stored if a["detector"] in single_event)
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


def _login_delivery(prefix: str, user: str, n: int) -> MemoryMessage:
    from datetime import UTC, datetime, timedelta

    from healthswarm.bus.codec import event_to_bytes
    from healthswarm.model import Event

    event = Event(datetime(2026, 3, 1, 8, tzinfo=UTC) + timedelta(seconds=n),
                  {"observer.type": "test", "event.action": "login", "event.outcome": "success", "user.name": user},
                  None, source="t", record=n, key=f"k{n}")
    return MemoryMessage(f"{prefix}.events.p0.test", event_to_bytes(event), event.key, f"m{n}", 1, 0.0)


def _detect_stage(store: Store, tmp_path: Path, prefix: str) -> DetectRole:
    import textwrap

    from healthswarm.agent.config import parse_config

    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "logins.yml").write_text(LOGIN_RULES, encoding="utf-8")
    (rules / "lone.yml").write_text(textwrap.dedent(TOO_FEW), encoding="utf-8")
    sigma_only = parse_config({"detect": {"packs": ["healthcare"], "baselines": False, "clinical": False}})
    return DetectRole(store, WorkerConfig(Role.detect, "sqlite://", prefix=prefix, rules=(rules,), agent=sigma_only),
                      tmp_path)


def _stored(store: Store) -> tuple[list[dict[str, object]], list[str]]:
    from healthswarm.store.worker_tables import outbox as outbox_table

    with store.read() as conn:
        return (list(conn.execute(select(alerts.c.document).order_by(alerts.c.id)).scalars()),
                list(conn.execute(select(outbox_table.c.subject)).scalars()))


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


def test_detect_feeds_the_events_of_a_message_once_however_often_it_comes(store: Store, tmp_path: Path) -> None:
    from healthswarm.bus.codec import events_from_bytes, events_to_bytes

    logins = [_login_delivery("hsmulti", user, n) for user, n in (("bob", 1), ("alice", 0), ("bob", 2))]
    # as the ingest role announces them: several events in one message
    three = MemoryMessage("hsmulti.events.p0.test", events_to_bytes([e for m in logins for e in
                                                                     events_from_bytes(m.data)]), "k1", "m-three",
                          1, 0.0)
    stage = _detect_stage(store, tmp_path, "hsmulti")
    stage.handle([three])
    stage.handle([three])  # its ack was lost: delivered again, its events are not fed again
    stage.handle([_login_delivery("hsmulti", "carol", 5400)])
    stage.flush()
    stored, subjects = _stored(store)
    # alice logged in once (fed twice she would have two logins, and the lt-2 rule would not fire); bob twice
    assert [(a["rule_id"], a["details"]["group_by"]) for a in stored] == [  # type: ignore[index]
        ("00000000-0000-0000-0000-0000000000d1", {"user.name": "alice"})]
    assert subjects == ["hsmulti.alerts.p0"]


def test_ingest_announces_the_events_of_a_batch_in_messages_of_many(store: Store) -> None:
    from healthswarm.bus.codec import events_from_bytes
    from healthswarm.store.worker_tables import outbox as outbox_table
    from healthswarm.worker.roles import EVENTS_PER_MESSAGE, IngestRole
    from test_worker_support import record

    n = 2 * EVENTS_PER_MESSAGE + 50
    role = IngestRole(store, WorkerConfig(Role.ingest, "sqlite://", prefix="hsin"))
    role.handle([MemoryMessage("hsin.raw.suricata", record(i), "", f"r{i}", 1, 0.0) for i in range(n)])
    with store.read() as conn:
        rows = conn.execute(select(outbox_table.c.msg_id, outbox_table.c.subject, outbox_table.c.payload)
                            .order_by(outbox_table.c.id)).all()
    announced = [events_from_bytes(r.payload) for r in rows]
    assert [len(m) for m in announced] == [EVENTS_PER_MESSAGE, EVENTS_PER_MESSAGE, 50]
    assert {r.subject for r in rows} == {"hsin.events.p0.suricata"}
    assert [r.msg_id for r in rows] == [m[0].key for m in announced], "a message is named after its first event"
    assert sorted(e.fields["suricata.flow_id"] for m in announced for e in m) == list(range(n))
    role.handle([MemoryMessage("hsin.raw.suricata", record(i), "", f"r{i}", 2, 0.0) for i in range(n)])
    with store.read() as conn:
        assert outbox.backlog(conn) == 3, "a redelivered batch stores nothing new, so announces nothing"
    role.close()


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
    stage.correlate(batch)


def _placements(store: Store) -> tuple[dict[str, str | None], set[str]]:
    from healthswarm.store.tables import alerts, incidents

    with store.read() as conn:
        return ({a: i for a, i in conn.execute(select(alerts.c.id, alerts.c.incident_id))},
                set(conn.execute(select(incidents.c.id)).scalars()))


def test_correlate_dedups_a_redelivery_of_an_evicted_incident_through_the_store(store: Store) -> None:
    stage = CorrelateStage(store, f"hsev{uuid.uuid4().hex[:8]}")
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
    stage = CorrelateStage(store, f"hsmg{uuid.uuid4().hex[:8]}")
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


# --- dead letters, and the whole suite in the detect role ------------------------------------------------------


@pytest.mark.service
def test_a_poison_message_ends_in_the_dead_letter_subject_while_the_rest_flows(sqlite_deployment: Deployment) -> None:
    """An event message no detector can read (not JSON) sits among good records: the batches it falls in are
    split, the rest is stored and correlated exactly once, and after --max-deliveries failures the bad one is
    published to <prefix>.dead.detect with the reason, terminated, counted and shown in /readyz."""
    d = sqlite_deployment
    n = 600
    bus = d.publisher()
    try:
        d.publish(0, n // 2, bus)
        bus.publish(f"{d.prefix}.events.p0.suricata", b"\x00 not an event", "poison")
        d.publish(n // 2, n, bus)
        port = free_port()
        proc = d.start("--role", "all", "--batch", "50", "--max-deliveries", "3", "--metrics-port", str(port))
        dead = bus.subscribe(f"{d.prefix}.dead.>", "test-dead")
        letters = []
        deadline = time.monotonic() + 60
        while not letters and time.monotonic() < deadline:
            letters = dead.fetch(10, 1.0)
        assert len(letters) == 1, d.log_text()[-3000:]
        letter = orjson.loads(letters[0].data)
        assert letters[0].subject == f"{d.prefix}.dead.detect"
        assert letter["subject"] == f"{d.prefix}.events.p0.suricata" and letter["deliveries"] == 3
        assert letter["reason"].startswith("JSONDecodeError")
        assert letter["data_base64"] == "ACBub3QgYW4gZXZlbnQ="
        letters[0].ack()
        dead.close()
        assert d.wait_done(n, 40)["events"] == n
        _, body = _get(port, "/readyz")
        assert orjson.loads(body)["dead_letters"] == {"ingest": 0, "detect": 1, "correlate": 0}
        assert 'healthswarm_worker_dead_letters_total{role="detect"} 1.0' in _get(port, "/metrics")[1].decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        d.assert_exactly_once(n, published_events=1)
        assert "message given up on" in d.log_text()
    finally:
        bus.close()


@pytest.fixture
def pg_deployment(tmp_path: Path, pg_db: str) -> Iterator[Deployment]:  # noqa: F811
    yield from deployment(SHARED_NATS, pg_db, tmp_path)


@pytest.mark.service
def test_partitioned_detect_workers_run_the_clinical_analytics_and_privacy_monitoring(
        pg_deployment: Deployment, tmp_path: Path) -> None:
    """HL7 ADT and FHIR audit records through separate ingest, detect (two partitions, one worker each) and
    correlate processes on PostgreSQL: the detect role runs the whole suite, so the HL7 analytics and the
    privacy monitor (the staff directory from agent.toml, the care relationships from the ADT feed) raise
    their alerts, which end in incidents. One organisation's clinical feed is on one partition."""
    d = pg_deployment
    config = tmp_path / "agent.toml"
    config.write_text(f'[detect]\nstaff = "{DEMO / "staff.yaml"}"\n', encoding="utf-8")
    bus = d.publisher()
    try:
        bus.publish_many([(f"{d.prefix}.raw.auto", (DEMO / "logs" / name).read_bytes(), "")
                          for name in ("hl7-adt.hl7", "ehr-audit.ndjson")])
    finally:
        bus.close()
    split = ("--partitions", "2")
    d.start("--role", "ingest", *split, name="ingest")
    d.start("--role", "correlate", *split, name="correlate")
    for k in (0, 1):
        d.start("--role", "detect", *split, "--partition", str(k), "--config", str(config), name=f"detect-p{k}")

    def by_detector() -> dict[str, tuple[int, int]]:
        engine = create_engine(d.db)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(alerts.c.detector, alerts.c.incident_id)).all()
        except Exception:  # the schema is not there yet
            return {}
        finally:
            engine.dispose()
        return {det: (sum(r.detector == det for r in rows), sum(r.detector == det and r.incident_id is not None
                                                                for r in rows)) for det in {r.detector for r in rows}}

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = by_detector()
        if all(got.get(det, (0, 0))[1] > 0 for det in ("privacy", "hl7-analytics", "fhir-analytics")):
            break
        time.sleep(0.5)
    assert got.get("privacy", (0, 0))[1] > 0, (got, d.log_text()[-3000:])
    assert got["hl7-analytics"][1] > 0 and got["fhir-analytics"][1] > 0, got
    d.stop_all()
    assert all(p.returncode == 0 for p in d.procs), d.log_text()[-3000:]
    bus = d.publisher()
    try:
        from test_worker_support import bus_lines

        # every clinical event on one partition: the monitor saw the ADT feed and the reads together
        assert sorted(len(bus_lines(bus, f"{d.prefix}.events.p{k}.>")) for k in (0, 1)) == [0, 361]
    finally:
        bus.close()
