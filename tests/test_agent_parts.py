"""The agent's parts one by one: syslog framing and the receiver (UDP, TCP, TLS), the watchlist detector, the
agent's configuration, the publishing policy, followed folders with rotation, and the detection step's cursor."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import wait_until
from healthswarm.agent.config import DEFAULT_CONFIG, load_config, parse_config
from healthswarm.agent.detect import CURSOR, StreamDetector
from healthswarm.agent.sources import ROTATED, AgentPipeline, FileWatcher
from healthswarm.agent.swarm import PublishPolicy, extent
from healthswarm.detect.sensor import SensorAlertDetector
from healthswarm.detect.watchlist import Watch, WatchlistDetector
from healthswarm.errors import ConfigError
from healthswarm.ingest.sources.syslog import FramingError, SyslogReceiver, split_frames
from healthswarm.model import Event
from healthswarm.store import Store
from healthswarm.store.events import get_checkpoint

ROOT = Path(__file__).resolve().parent.parent
EVE = ROOT / "src" / "healthswarm" / "demo" / "logs" / "suricata-eve.json"
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'hs.db'}")


def _count(store: Store, sql: str) -> int:
    from sqlalchemy import text

    with store.read() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# --- syslog framing and the receiver ------------------------------------------------------------------------

def test_frames_octet_counting_newlines_and_partial_frames() -> None:
    buffer = bytearray(b"11 <13>hello a<13>line two\r\n\x0012 <13>partial")
    frames, cut = split_frames(buffer)
    assert frames == [b"<13>hello a", b"<13>line two"] and cut == 0
    assert buffer == b"12 <13>partial"  # waits for the rest of the counted frame
    buffer += b"!!\n"
    assert split_frames(buffer) == ([b"<13>partial!", b"!"], 0) and buffer == b""
    long = bytearray(b"x" * 100 + b"\n")
    assert split_frames(long, max_message=10) == ([b"x" * 10], 1)
    with pytest.raises(FramingError):
        split_frames(bytearray(b"99999999 <13>x"), max_message=1000)


@pytest.fixture
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from healthswarm.security.testca import make_test_ca

    ca, issued = make_test_ca(tmp_path / "ca")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(issued["server"].cert, issued["server"].key)
    client = ssl.create_default_context(cafile=str(ca))
    return server, client


def test_receiver_stores_udp_tcp_and_tls_messages_once_each(
        tmp_path: Path, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    store = _store(tmp_path)
    pipeline = AgentPipeline(store, write_lock=threading.Lock())
    plain = SyslogReceiver(pipeline, udp="127.0.0.1:0", tcp="127.0.0.1:0", latency=0.05).start()
    secure = SyslogReceiver(pipeline, tcp="127.0.0.1:0", tls=tls_contexts[0], latency=0.05, name="syslog-tls").start()
    try:
        line = b"<34>1 2026-12-06T10:00:00Z ehr-01 sshd 123 - - Failed password for root"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(line, plain.udp_address)
            udp.sendto(line, plain.udp_address)  # the same line twice is two messages: two events
        with socket.create_connection(plain.tcp_address) as tcp:
            tcp.sendall(b"<13>Dec  6 10:00:01 pacs-01 app[7]: newline framed\n"
                        + _counted(b"<13>Dec  6 10:00:02 pacs-01 app[7]: counted"))
        with socket.create_connection(secure.tcp_address) as raw, \
                tls_contexts[1].wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(_counted(b"<13>Dec  6 10:00:03 pacs-01 app[7]: over TLS!"))
        wait_until("five events", lambda: _count(store, "SELECT count(*) FROM events") == 5, 30)
    finally:
        plain.stop()
        secure.stop()
    sources = {row for row in _rows(store, "SELECT source FROM events")}
    assert sources == {"syslog://udp/127.0.0.1", "syslog://tcp/127.0.0.1"}
    messages = _rows(store, "SELECT json_extract(fields, '$.message') FROM events ORDER BY id")
    assert {"newline framed", "counted", "over TLS!"} <= set(messages)
    assert _count(store, "SELECT count(*) FROM quarantine") == 0


def _counted(message: bytes) -> bytes:
    return f"{len(message)} ".encode() + message


def _rows(store: Store, sql: str) -> list[str]:
    from sqlalchemy import text

    with store.read() as conn:
        return [r[0] for r in conn.execute(text(sql))]


# --- the watchlist detector ---------------------------------------------------------------------------------

def _event(fields: dict[str, object], record: int = 1) -> Event:
    return Event(T0, fields, None, source="test", record=record, position=record, key=f"k{record}")


def test_watchlist_matches_observables_subdomains_hashes_and_text() -> None:
    detector = WatchlistDetector([
        Watch("ipv4", "198.51.100.77", "peer:identity--x", 90, ("T1071",)),
        Watch("domain", "Evil.Example", "swarm:northfield", 60),
        Watch("sha256", "A" * 64, "case:CASE-1", 90),
        Watch("ipv4", "198.51.100.77", "peer:identity--y", 40),  # the stronger warning about a value wins
    ])
    assert len(detector) == 3
    assert detector.detect(_event({"source.ip": "10.0.0.1", "destination.ip": "10.0.0.2"})) == []
    [hit] = detector.detect(_event({"destination.ip": "198.51.100.77", "source.ip": "10.0.0.5"}))
    assert hit.detector == "watchlist" and hit.level == "high"
    assert hit.details["indicator"]["origin"] == "peer:identity--x"
    assert [t.id for t in hit.techniques] == ["T1071"] and "198.51.100.77" in hit.details["entities"]["ip"]
    [sub] = detector.detect(_event({"dns.question.name": "cdn.evil.example"}, 2))
    assert sub.rule_id == "watchlist:domain:evil.example" and sub.level == "medium"
    assert detector.detect(_event({"dns.question.name": "example"}, 3)) == []
    [sysmon] = detector.detect(_event({"process.hash.sha256": f"MD5=00,SHA256={'a' * 64}"}, 4))
    assert sysmon.details["matched"] == "a" * 64
    [text] = detector.detect(_event({"message": "connect to [198.51.100.77]:443 refused"}, 5))
    assert text.details["field"] == "message"
    detector.replace([])
    assert detector.detect(_event({"destination.ip": "198.51.100.77"}, 6)) == []


# --- configuration and the publishing policy ----------------------------------------------------------------

def test_the_default_config_parses_and_mistakes_name_where(tmp_path: Path) -> None:
    config = load_config(None)
    assert config.health == "127.0.0.1:9108" and not config.syslog.enabled and not config.swarm.enabled
    assert config.swarm.min_severity == 3 and config.swarm.hold == 300.0
    path = tmp_path / "agent.toml"
    path.write_text(DEFAULT_CONFIG.replace('udp = ""', 'udp = "127.0.0.1:0"'))
    assert load_config(path).syslog.udp == "127.0.0.1:0"
    for text, where in [('[detect]\nbatchh = 1\n', "detect.batchh"), ('[swarm]\nmin_severity = 7\n', "min_severity"),
                        ('[sources.kafka]\nurls = []\n', "sources.kafka"), ('[risk]\nlive = "yes"\n', "risk.live")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=where):
            load_config(path)
    one = parse_config({"sources": {"files": {"paths": ["logs"]}}}, "x", tmp_path)
    assert one.files[0].paths == ("logs",) and one.path("logs") == tmp_path / "logs"


def test_publish_policy_waits_for_the_hold_and_obeys_the_analyst() -> None:
    policy = PublishPolicy(min_severity=3, hold=60)
    docs = [{"id": "INC-a", "severity": 4, "state": "new"}, {"id": "INC-b", "severity": 2, "state": "new"},
            {"id": "INC-c", "severity": 3, "state": "closed"}, {"id": "INC-d", "severity": 3, "state": "triaged"},
            {"id": "INC-e", "severity": 4, "state": "new"}]
    assert policy.due(docs, {}, {}, now=1000.0) == []  # first seen now: held
    decisions = {"INC-d": "now", "INC-e": "veto"}
    assert policy.due(docs, decisions, {}, now=1001.0) == ["INC-d"]
    assert policy.due(docs, decisions, {}, now=1060.0) == ["INC-a", "INC-d"]
    published = {"INC-a": extent(docs[0]), "INC-d": extent(docs[3])}
    assert policy.due(docs, decisions, published, now=2000.0) == []
    # an incident that grew after its publication is due again, at once; a veto still holds it back
    docs[0] = {**docs[0], "alerts": 3, "last_seen": "2026-11-27T10:00:00+00:00"}
    assert policy.due(docs, decisions, published, now=2001.0) == ["INC-a"]
    assert policy.due(docs, {**decisions, "INC-a": "veto"}, published, now=2002.0) == []


def test_the_publisher_reads_the_extent_its_documents_give(store: Store) -> None:
    """The agent's publisher reads summaries (incident_summaries) instead of whole documents: an incident's extent
    read that way must be the document's, or a published incident would be due again at every turn."""
    from healthswarm.model.incident import Incident, IncidentState
    from healthswarm.store.alerts import incident_summaries, load_incidents, save_incidents

    made = [Incident(f"INC-{i}", "t", datetime(2026, 11, 27, 9, tzinfo=UTC),
                     datetime(2026, 11, 27, 10, 0, 0, micro, tzinfo=UTC), severity=3, alert_ids=["a"] * (i + 1))
            for i, micro in enumerate((0, 250_000, 1))]
    made.append(Incident("INC-closed", "t", made[0].first_seen, made[0].last_seen, state=IncidentState.CLOSED,
                         severity=4))
    with store.transaction() as conn:
        save_incidents(conn, made)
    with store.read() as conn:
        documents = {i.id: extent(i.as_dict()) for i in load_incidents(conn)}
        summaries, _ = incident_summaries(conn, min_severity=3, open_only=True)
    assert {s["id"]: extent(s) for s in summaries} == {k: v for k, v in documents.items() if k != "INC-closed"}


# --- followed folders: rotation, new files, rotated names left out --------------------------------------------

def test_rotated_names_are_recognised() -> None:
    for name in ("app.log.1", "eve.json.2.gz", "messages-20261201", "app.log.gz", "x_20261201120000"):
        assert ROTATED.search(name), name
    for name in ("eve.json", "app.log", "hl7-adt.hl7", "sysmon.json"):
        assert not ROTATED.search(name), name


def test_a_followed_folder_survives_rotation_without_storing_a_line_twice(tmp_path: Path) -> None:
    store = _store(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    config = parse_config({"sources": {"files": [{"paths": ["logs"], "rescan": 0.1}]}}, "x", tmp_path)
    watcher = FileWatcher(AgentPipeline.for_store(store, write_lock=threading.Lock()), config)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    lines = EVE.read_text().splitlines()
    try:
        live = logs / "eve.json"
        live.write_text("\n".join(lines[:50]) + "\n")
        wait_until("the first 50 lines", lambda: _count(store, "SELECT count(*) FROM events") == 50, 30)
        with live.open("a") as out:
            out.write("\n".join(lines[50:60]) + "\n")
        live.rename(logs / "eve.json.1")  # rotated: the old file's tail is still read, the new one from its start
        live.write_text("\n".join(lines[60:100]) + "\n")
        (logs / "other.json").write_text(lines[100] + "\n")  # a new file in the folder
        wait_until("every line once", lambda: _count(store, "SELECT count(*) FROM events") == 101, 30)
    finally:
        stop.set()
        thread.join(10)
    assert _count(store, "SELECT count(DISTINCT original) FROM events") == _count(
        store, "SELECT count(*) FROM (SELECT DISTINCT original FROM events)")
    assert not any("eve.json.1" in row for row in _rows(store, "SELECT DISTINCT source FROM events"))


# --- the detection step: a cursor, committed with its alerts ---------------------------------------------------

def test_detection_steps_read_only_new_events_and_resume_from_the_cursor(tmp_path: Path) -> None:
    from healthswarm.ingest.sources.file import ingest_file

    store = _store(tmp_path)
    lock = threading.Lock()
    eve = tmp_path / "eve.json"
    eve.write_text(EVE.read_text())
    ingest_file(AgentPipeline.for_store(store, write_lock=lock), eve)
    stored = _count(store, "SELECT count(*) FROM events")
    alert_lines = sum('"event_type": "alert"' in line for line in EVE.read_text().splitlines())
    first = StreamDetector(store, [SensorAlertDetector()], lock, batch=40)
    result = first.step()
    assert result.events == 40 and first.cursor > 0
    with store.read() as conn:
        cursor = get_checkpoint(conn, CURSOR)
    assert cursor is not None and cursor.position == first.cursor
    # a new detector (a restarted agent) resumes after the cursor: together they judge every event once
    second = StreamDetector(store, [SensorAlertDetector()], lock, batch=1000)
    rest = second.step()
    assert rest.events == stored - 40 and second.step().events == 0
    assert _count(store, "SELECT count(*) FROM alerts") == alert_lines
    assert _count(store, "SELECT count(*) FROM alerts WHERE incident_id IS NULL") == 0


def test_events_handed_over_in_memory_are_judged_once_and_the_store_fills_the_gaps(tmp_path: Path) -> None:
    from healthswarm.agent.sources import Handoff
    from healthswarm.ingest.sources.file import ingest_file

    store = _store(tmp_path)
    lock = threading.Lock()
    handoff = Handoff(limit=250)  # room for some batches only: the others are read back from the store
    pipeline = AgentPipeline.for_store(store, write_lock=lock, handoff=handoff, batch_size=100)
    eve = tmp_path / "eve.json"
    eve.write_text(EVE.read_text() * 3)
    ingest_file(pipeline, eve)
    stored = _count(store, "SELECT count(*) FROM events")
    assert 0 < handoff._held <= 250
    detector = StreamDetector(store, [SensorAlertDetector()], lock, batch=70, handed=handoff.take)
    judged = 0
    while (step := detector.step()).events:
        judged += step.events
    assert judged == stored and detector.cursor == stored and handoff._held == 0
    alert_lines = 3 * sum('"event_type": "alert"' in line for line in EVE.read_text().splitlines())
    assert _count(store, "SELECT count(*) FROM alerts") == alert_lines


def test_a_source_that_can_wait_waits_for_detection_to_make_room_in_the_handoff() -> None:
    from healthswarm.agent.sources import Handoff

    handoff = Handoff(limit=10)
    assert handoff.put(0, 8, list(range(8)))
    stop = threading.Event()
    order: list[str] = []

    def source() -> None:
        handoff.wait_for_room(5, stop, timeout=120)  # 8 held + 5 > 10: waits until detection takes
        order.append("stored")

    waiting = threading.Thread(target=source)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and order == []
    order.append("taken")
    assert handoff.take(0) == (list(range(8)), 8)
    waiting.join(120)
    assert order == ["taken", "stored"]
    # a stop ends a wait (the source commits what it holds and stops); a batch larger than the limit fits alone
    assert handoff.put(8, 16, list(range(8)))
    stop.set()
    handoff.wait_for_room(5, stop, timeout=120)
    assert handoff.take(8) is not None
    handoff.wait_for_room(50, None, timeout=120)


def test_cli_init_config_writes_the_defaults_and_share_records_the_decision(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from healthswarm.cli.main import app

    runner = CliRunner()
    out = tmp_path / "agent.toml"
    assert runner.invoke(app, ["agent", "init-config", str(out)]).exit_code == 0
    assert out.read_text() == DEFAULT_CONFIG and load_config(out).detect.batch == 2000
    again = runner.invoke(app, ["agent", "init-config", str(out)])  # never overwritten silently
    assert isinstance(again.exception, ConfigError) and "--force" in str(again.exception)
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["-w", str(ws), "agent", "share", "INC-1", "--decision", "veto"]).exit_code == 0
    assert json.loads((ws / "agent" / "share-decisions.json").read_text()) == {"INC-1": "veto"}
    assert runner.invoke(app, ["-w", str(ws), "agent", "share", "INC-1", "--decision", "hold"]).exit_code == 0
    assert json.loads((ws / "agent" / "share-decisions.json").read_text()) == {}
    missing = runner.invoke(app, ["-w", str(ws), "agent", "status"])
    assert isinstance(missing.exception, ConfigError) and "no status" in str(missing.exception)
    # the times it was started and last written read as UTC times; JSON keeps the epoch numbers
    (ws / "agent" / "status.json").write_text(json.dumps({"pid": 7, "started": 1796606640.5, "written": 1796610300.0}))
    table = runner.invoke(app, ["-w", str(ws), "agent", "status"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "2026-12-07 01:24 UTC" in table.output and "2026-12-07 02:25 UTC" in table.output
    assert "1796606640" not in table.output
    raw = runner.invoke(app, ["-w", str(ws), "agent", "status", "--format", "json"])
    assert json.loads(raw.stdout)[0]["started"] == 1796606640.5


def test_a_stop_ends_a_long_read_at_a_record_boundary_and_the_next_start_resumes(tmp_path: Path) -> None:
    from healthswarm.ingest.sources.file import ingest_file

    store = _store(tmp_path)
    stop = threading.Event()
    pipeline = AgentPipeline.for_store(store, write_lock=threading.Lock(), batch_size=500)
    pipeline.stop = stop
    pipeline.on_stored = lambda _n: stop.set()  # asked to stop once the first batch is stored
    eve = tmp_path / "eve.json"
    lines = EVE.read_text().splitlines() * 20
    eve.write_text("\n".join(lines) + "\n")
    ingest_file(pipeline, eve)
    first = _count(store, "SELECT count(*) FROM events")
    assert 0 < first < len(lines)
    stop.clear()
    pipeline.on_stored = None
    ingest_file(pipeline, eve)
    assert _count(store, "SELECT count(*) FROM events") == len(lines) == _count(
        store, "SELECT count(DISTINCT key) FROM events")
