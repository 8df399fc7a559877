"""The scale-out roles: bus messages in, the shared stage objects (the same as the embedded agent's), effects
out. Each role takes a batch of messages, runs its stage on them and commits the effects with their
announcements to the next role in one transaction (the outbox, worker/outbox.py), so that what is stored and
what is announced never disagree; the loop (worker/loop.py) acks the batch after that commit.

- ingest: raw records (`<prefix>.raw.<format>`) → ingest/stage.IngestStage → events stored, announced on
  `<prefix>.events.p<k>.<format>` (`k` from `config.partition_key`), up to EVENTS_PER_MESSAGE of one batch to a
  message (JSON lines, bus/codec.py);
- detect: events → detect/stream_stage.DetectStage, the whole suite of the embedded agent
  (agent/runtime.build_detectors: Sigma packs, sensors, baselines, clinical analytics, privacy, models, the
  watchlist) → alerts stored exactly once (deterministic ids), announced on `<prefix>.alerts.p<k>`;
- correlate: alerts → detect/correlate_stage.CorrelateStage → incidents (one active correlator per
  deployment on PostgreSQL, the others hot standbys), the ids of those each batch wrote announced on
  `<prefix>.incidents`;
- respond: incident ids → what the embedded agent does after correlation: live risk (risk/live.py
  `annotate_incidents`) and playbooks by policy (agent/respond.py `PolicyResponder`); with `[swarm]`, the swarm
  node (agent/swarm.py `AgentSwarm`), whose accepted warnings are retro-hunted over the stored events and the
  finds announced on `<prefix>.alerts.p<k>` as the detect role's; one active responder.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import orjson
from sqlalchemy import Connection, select

from healthswarm.bus.base import Message
from healthswarm.bus.codec import event_to_bytes, events_from_bytes
from healthswarm.detect.correlate_stage import CorrelateStage, Lease
from healthswarm.detect.stream_stage import DetectStage
from healthswarm.ingest.stage import IngestStage
from healthswarm.model import Alert, Event
from healthswarm.model.incident import Incident
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import alerts
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import Role, WorkerConfig, partition_key

if TYPE_CHECKING:
    from healthswarm.agent.swarm import AgentSwarm
    from healthswarm.detect.watchlist import Watch
    from healthswarm.risk.live import LiveAnnotator

log = logging.getLogger("healthswarm.worker.roles")
# events announced in one message: the bus's work (publish, its ack, delivery, the consumer's ack: a few dozen
# µs of the client's event loop each) is paid per message, and a message an event cost more than detecting it
EVENTS_PER_MESSAGE = 100
MESSAGE_BYTES = 256 * 1024  # a quarter of NATS's default max_payload (1 MiB)
INCIDENTS_PER_MESSAGE = 1_000  # incident ids announced in one message (about 40 bytes each)
RETRO_HUNTED = "retro-hunted.json"  # in <workspace>/agent: the warned values the respond role has hunted for
RETRY_HUNT = 5.0  # seconds before a failed retro-hunt is tried again


Handoff = Callable[[list[outbox.Pending]], None]


def no_relay(_rows: list[outbox.Pending]) -> None:
    """Without a relay in this process (tests of a role alone) the rows wait in the outbox for any relay."""


class RoleWork(Protocol):
    def active(self) -> bool:
        """May this worker take messages now? (False: a standby correlator.) Called from the role's thread."""
        ...

    def handle(self, batch: Sequence[Message]) -> None:
        """Commit the batch's effects idempotently; raising leaves nothing committed (the loop gives the batch
        back, or finds the message that fails it)."""
        ...

    def flush(self) -> None:
        """Commit what only the passing of time completes (on a timer, and once at a graceful stop); raise to
        have it retried at the next call. Never called while `handle` runs."""
        ...

    def settled(self, batch: Sequence[Message]) -> None:
        """The bus confirmed these messages acked (or terminated): none of them comes back to this worker."""
        ...

    def close(self) -> None: ...


def _chunks(encoded: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """Runs of up to EVENTS_PER_MESSAGE events and MESSAGE_BYTES (an event larger than that alone)."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for item in encoded:
        if chunk and (len(chunk) == EVENTS_PER_MESSAGE or size + len(item[1]) > MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1]) + 1
    if chunk:
        yield chunk


class IngestRole:
    def __init__(self, store: Store, config: WorkerConfig, handoff: Handoff = no_relay) -> None:
        self.config = config
        self.stage = IngestStage.for_store(store, config.organisation, announce=self._announce)
        self.handoff = handoff
        self._born = 0.0
        self._queued: list[outbox.Pending] = []  # by the transaction in progress

    def active(self) -> bool:
        return True

    def _announce(self, conn: Connection, stored: list[Event]) -> None:
        """The stored events as messages of up to EVENTS_PER_MESSAGE events of one subject (see the module). A
        message is named after its first event: each event is newly stored once, so no two messages share it."""
        c = self.config
        by_subject: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        announced: set[str] = set()
        for e in stored:
            # a message JetStream redelivered (its ack_wait ran out) can arrive in the same batch as its first
            # delivery: the store keeps its event once, and so must the announcement
            if e.key in announced:
                continue
            announced.add(e.key)
            subject = c.event_subject(c.partition_of(partition_key(e)), str(e.fields.get("observer.type") or ""))
            by_subject[subject].append((e.key, event_to_bytes(e)))
        messages = []
        for subject, encoded in by_subject.items():
            for chunk in _chunks(encoded):
                messages.append(outbox.OutboxMessage(chunk[0][0], subject, b"\n".join(d for _, d in chunk),
                                                     self._born))
        self._queued += outbox.add(conn, messages)

    def handle(self, batch: Sequence[Message]) -> None:
        by_format: dict[str, list[Message]] = defaultdict(list)
        for m in batch:
            by_format[m.subject.rsplit(".", 1)[-1]].append(m)
        stats = self.stage.stats
        before = (stats.events, stats.stored, sum(stats.rejects.values()))
        for name, group in by_format.items():
            # latency is counted from the oldest record of the group: an upper bound for the others
            self._born = min(m.born for m in group)
            self._queued = []
            self.stage.handle(group, name, self.config.raw_subject(name), scheme="nats")
            self.handoff(self._queued)  # committed: the group's transaction has ended
            self._queued = []
        metrics.EVENTS_IN.labels(Role.ingest.value).inc(stats.events - before[0])
        metrics.EVENTS_STORED.inc(stats.stored - before[1])
        metrics.REJECTS.inc(sum(stats.rejects.values()) - before[2])

    def flush(self) -> None:
        """Parsing completes with each record: nothing waits for time."""

    def settled(self, batch: Sequence[Message]) -> None:
        """Stateless per record: a redelivery is deduplicated by the events' keys in the store."""

    def close(self) -> None:
        self.stage.close()


class DetectRole:
    """Detection is stateful (Sigma correlation windows, baselines, the clinical analytics), so an event must
    reach the detectors once however often the bus delivers it: an event fed here stays recorded, with the
    alerts its feeding raised, until the bus confirms its message acked. A redelivery (the commit failed, or the
    ack was lost) is then not fed again; its alerts are committed again instead (idempotent: deterministic ids,
    outbox keys). A worker that restarts starts with empty windows, so a redelivery after a restart feeds them
    once."""

    def __init__(self, store: Store, config: WorkerConfig, workspace: Path, handoff: Handoff = no_relay) -> None:
        from healthswarm.agent.runtime import build_detectors

        self.store = store
        self.config = config
        self.handoff = handoff
        with store.read() as conn:
            assets = list(load_inventory(conn).assets)
        detectors, self.watchlist = build_detectors(config.agent, workspace, assets, extra_rules=config.rules,
                                                    placeholders=config.placeholders)
        self.stage = DetectStage(detectors)
        self._flushed: list[Alert] = []  # completed by a flush, not yet committed
        self._watch_due = 0.0
        # message id → the alerts its event raised, while the message is not confirmed acked; bounded (oldest
        # out first) for a message whose ack was lost and which the group then gave to another worker
        self._unsettled: OrderedDict[str, list[Alert]] = OrderedDict()
        self._unsettled_limit = max(4 * config.max_in_flight, 10_000)

    def active(self) -> bool:
        return True

    def handle(self, batch: Sequence[Message]) -> None:
        self._refresh_watchlist()
        events = [(e, m) for m in batch for e in events_from_bytes(m.data)]
        fresh = sorted(((e, m) for e, m in events if m.id not in self._unsettled),
                       key=lambda em: (em[0].timestamp, em[0].key))
        # in event time, as DetectStage.detect orders them, across messages; a message is recorded once every
        # event of it was fed (one that failed half-fed is fed again, whole, when it comes back)
        left = Counter(m.id for _, m in fresh)
        raised: dict[str, list[Alert]] = defaultdict(list)
        for event, m in fresh:
            raised[m.id] += self.stage.detect([event])
            left[m.id] -= 1
            if not left[m.id]:
                self._unsettled[m.id] = raised.pop(m.id)
        while len(self._unsettled) > self._unsettled_limit:
            self._unsettled.popitem(last=False)
        by_key = {e.key: m for e, m in events}
        oldest = min(m.born for m in batch)
        items = []
        for m in batch:
            for alert in self._unsettled.get(m.id, ()):
                # the alert's first event says where it came from (a correlation's events may span batches)
                first = next((by_key[r.key] for r in alert.events if r.key in by_key), None)
                items.append((alert, first.born if first is not None else oldest, self._partition(first or m)))
        new = self._commit(items)
        now = time.time()
        metrics.EVENTS_IN.labels(Role.detect.value).inc(len(events))
        metrics.REDELIVERED.labels(Role.detect.value).inc(len(batch) - len({m.id for _, m in fresh}))
        for alert, born, _ in items:
            if alert.id in new:
                metrics.EVENT_TO_ALERT.observe(max(now - born, 0.0))
                new.discard(alert.id)

    def settled(self, batch: Sequence[Message]) -> None:
        for m in batch:
            self._unsettled.pop(m.id, None)

    def _partition(self, m: Message) -> int:
        return int(m.subject.split(".")[-2].removeprefix("p") or 0)

    def flush(self) -> None:
        """Commit what the passing of stream time completes; alerts whose commit failed are kept for the next
        call (their windows are gone once judged)."""
        self._refresh_watchlist()
        self._flushed.extend(self.stage.flush())
        if not self._flushed:
            return
        # no message to take a partition from: the worker's own (the events of a pinned worker are all in it)
        partition = self.config.partition or 0
        born = time.time()  # not an event's latency: these alerts wait for time by design
        self._commit([(a, born, partition) for a in self._flushed])
        self._flushed = []

    def _refresh_watchlist(self) -> None:
        """Peers' indicators and the responders' watchlist, from the shared store, every [watchlist] refresh."""
        from healthswarm.agent.runtime import stored_watches

        if time.monotonic() < self._watch_due:
            return
        self._watch_due = time.monotonic() + self.config.agent.watchlist.refresh
        self.watchlist.replace(stored_watches(self.store, self.config.agent.watchlist.min_confidence))

    def _commit(self, found: list[tuple[Alert, float, int]]) -> set[str]:
        return commit_alerts(self.store, self.config, found, self.handoff)

    def close(self) -> None:
        if self._flushed:
            log.error("alerts completed by a flush were never stored", extra={"alerts": len(self._flushed)})


def commit_alerts(store: Store, config: WorkerConfig, found: list[tuple[Alert, float, int]],
                  handoff: Handoff) -> set[str]:
    """The alerts (with when their first record entered the bus, and their partition) not stored yet and their
    announcements to the correlate role, in one transaction; returns their ids. (An alert stored before was
    announced then: the outbox forgets a message once it is published.)"""
    if not found:
        return set()
    with store.transaction() as conn:
        known = set(conn.execute(select(alerts.c.id).where(alerts.c.id.in_({a.id for a, _, _ in found})))
                    .scalars())
        new = [(a, born, p) for a, born, p in found if a.id not in known]
        save_alerts(conn, [a for a, _, _ in new])
        queued = outbox.add(conn, [outbox.OutboxMessage(a.id, config.alert_subject(p),
                                                        orjson.dumps(a.as_dict()), born) for a, born, p in new])
    handoff(queued)
    metrics.ALERTS.inc(len(queued))
    return {q.message.msg_id for q in queued}


class CorrelateRole:
    def __init__(self, store: Store, config: WorkerConfig, handoff: Handoff = no_relay) -> None:
        self.config = config
        self.handoff = handoff
        self.stage = CorrelateStage(store, config.prefix, announce=self._announce)
        self._born = 0.0
        self._queued: list[outbox.Pending] = []  # by the transaction in progress

    def active(self) -> bool:
        return self.stage.active()

    def _announce(self, conn: Connection, written: list[Incident]) -> None:
        """The ids of the incidents the batch wrote, for the respond role, in the transaction that wrote them.
        Each message gets a fresh id: an incident changes many times, and JetStream drops a message whose id it
        has seen within its duplicate window (the relay re-sends a row under its own id, so that stays exact)."""
        ids = [i.id for i in written]
        self._queued = outbox.add(conn, [
            outbox.OutboxMessage(f"incidents:{uuid.uuid4().hex}", self.config.incident_subject(),
                                 orjson.dumps(ids[i:i + INCIDENTS_PER_MESSAGE]), self._born)
            for i in range(0, len(ids), INCIDENTS_PER_MESSAGE)])

    def handle(self, batch: Sequence[Message]) -> None:
        self._born = min(m.born for m in batch)
        self._queued = []  # a failed batch's rows were rolled back with it
        metrics.INCIDENTS.inc(self.stage.correlate([Alert.from_dict(orjson.loads(m.data)) for m in batch]))
        self.handoff(self._queued)  # committed: correlate returned
        self._queued = []
        now = time.time()
        for m in batch:
            metrics.EVENT_TO_INCIDENT.observe(max(now - m.born, 0.0))

    def flush(self) -> None:
        """Incidents change with each alert: nothing waits for time."""

    def settled(self, batch: Sequence[Message]) -> None:
        """A redelivered alert is skipped by the stage (placed in this run, or shown placed in the store)."""

    def close(self) -> None:
        self.stage.close()


class RetroHunter:
    """Retro-hunts for the respond role: the values of the peers' warnings its swarm node accepted, over the events
    already stored (swarm/retro.py `retro_alerts`, the embedded agent's alerts: `watchlist-retro:<type>:<value>` at
    the first event that showed the value, with that event's assets), stored and announced to the correlate role
    in one transaction (`commit_alerts`, as the detect role's).

    A hunt reads every stored event, so it runs in a thread of its own, beside the responses. It waits
    `[watchlist] refresh` seconds after the warning was stored as an indicator: by then the detect role's watchlist
    holds the value (it reloads at least that often), so every event is either stored before the hunt reads the
    store or judged by a watchlist that has the value — none falls between the two.

    Exactly once: a value is hunted once by a process, and the values hunted are remembered in
    `<workspace>/agent/retro-hunted.json`; a value accepted again after a restart (the warning gossiped again) is
    skipped if its retro-hunt alert is stored, and a hunt of it over the same events would give the same alert id,
    which is neither stored nor announced again."""

    def __init__(self, store: Store, config: WorkerConfig, workspace: Path, handoff: Handoff) -> None:
        from healthswarm.agent.swarm import agent_folder, read_json

        self.store = store
        self.config = config
        self.handoff = handoff
        self.delay = config.agent.watchlist.refresh
        self.path = agent_folder(workspace) / RETRO_HUNTED
        self._hunted: set[str] = set(read_json(self.path, []))
        self._pending: dict[str, tuple[float, Watch]] = {}  # type:value → (when due, monotonic; the warning)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, watches: list[Watch]) -> None:
        """Warnings just stored as indicators (any thread): each value not hunted yet is hunted once it is due."""
        due = time.monotonic() + self.delay
        with self._lock:
            for w in watches:
                key = f"{w.type}:{w.value}"
                if key not in self._hunted and key not in self._pending:
                    self._pending[key] = (due, w)
            if self._pending and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="respond-retro-hunt", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                due = {k: w for k, (at, w) in self._pending.items() if at <= now}
                nearest = min((at for at, _ in self._pending.values()), default=None)
            if not due:
                self._wake.wait(None if nearest is None else nearest - now)
                continue
            try:  # recording them too: a failure there would end the thread; a hunt again finds nothing new
                self.hunt(list(due.values()))
                self._done(due)
            except Exception as exc:
                log.warning("retro-hunt failed; tried again in %s s: %s: %s", RETRY_HUNT, type(exc).__name__, exc)
                with self._lock:
                    self._pending.update({k: (time.monotonic() + RETRY_HUNT, w) for k, w in due.items()})

    def _done(self, due: dict[str, Watch]) -> None:
        from healthswarm.agent.swarm import write_json

        with self._lock:
            for key in due:
                self._pending.pop(key, None)
            self._hunted.update(due)
            hunted = sorted(self._hunted)
        write_json(self.path, hunted)

    def hunt(self, watches: list[Watch]) -> set[str]:
        """One pass over the stored events for the values whose retro-hunt alert is not stored yet; the alerts
        found stored and announced; returns the ids newly stored."""
        from healthswarm.swarm.retro import retro_alerts, retro_rule

        with self.store.read() as conn:
            found = set(conn.execute(select(alerts.c.rule_id).where(
                alerts.c.rule_id.in_({retro_rule(w) for w in watches}))).scalars())
        todo = [w for w in watches if retro_rule(w) not in found]
        if not todo:
            return set()
        metrics.RETRO_HUNTS.inc(len(todo))
        born = time.time()  # not an event's latency: the warning came after the events
        partition = self.config.partition or 0
        new = commit_alerts(self.store, self.config, [(a, born, partition) for a in retro_alerts(self.store, todo)],
                            self.handoff)
        log.info("retro-hunt", extra={"values": len(todo), "alerts": len(new)})
        return new

    def close(self, timeout: float = 30.0) -> None:
        """Stop hunting (a hunt under way finishes and commits, within `timeout`); values not hunted yet are
        lost with the process, as the warnings the node holds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


class RespondRole:
    """What the embedded agent does with the incidents a step changed, for the incidents the correlate role
    announces: live risk re-annotates them (`[risk] live`), then the responder opens or grows their cases and
    starts the playbooks the `[respond]` policy calls for (its guardrails included: it is the embedded agent's
    PolicyResponder, called in this thread). The batch is acked once both returned; a failure gives it back.

    With `[swarm] enabled`, the active responder also runs the organisation's swarm node, as the embedded agent
    does: it publishes by policy through the egress gate (`AgentSwarm.publish_due`, from the stored incidents),
    and the peers' warnings it accepts are stored as indicators (source `swarm:<organisation>`), where the detect
    role's watchlist reads them (`stored_watches`, every `[watchlist] refresh`); with `[watchlist] retro_hunt`
    their values are retro-hunted over the events already stored (`RetroHunter`), the finds stored as alerts and
    announced to the correlate role.

    One responder is active per deployment (a PostgreSQL advisory lock, as the correlator's; the others are hot
    standbys): the policy opens a case after reading that the incident has none, and two responders handed two
    changes of one incident could both open one, and both start its playbooks' actions; and an organisation is
    one node of the swarm. A responder that loses the lock stops its node; the one that takes it over starts one.

    Exactly once: a redelivered id (a lost ack, a restart) finds the incident's case and the playbooks already
    started on it in the store (the case's audit chain), so it opens nothing and starts nothing again; live risk
    writes the same predictions again."""

    def __init__(self, store: Store, config: WorkerConfig, workspace: Path, handoff: Handoff = no_relay) -> None:
        from healthswarm.agent.respond import PolicyResponder
        from healthswarm.risk.live import LiveAnnotator

        self.store = store
        agent = config.agent
        self.floor = agent.watchlist.min_confidence
        self.retro = (RetroHunter(store, config, workspace, handoff)
                      if agent.swarm.enabled and agent.watchlist.retro_hunt else None)
        self.lease = Lease(store, f"healthswarm-responder:{config.prefix}") if store.backend == "postgresql" else None
        # the lock serialises the responder's commits in the embedded agent's one-writer store; here it has no
        # other writer in the process to wait for
        self.responder = (PolicyResponder(store, agent.respond, workspace, threading.Lock())
                          if agent.respond.enabled else None)
        self.live_risk: LiveAnnotator | None = LiveAnnotator(store) if agent.risk.live else None
        self.workspace = workspace
        self.organisation = agent.organisation or config.organisation
        self.swarm_config = agent.swarm if agent.swarm.enabled else None
        self.swarm: AgentSwarm | None = None  # running while this responder is the active one
        self._warnings_due = False  # accepted warnings whose storing failed: stored again at the next flush

    def active(self) -> bool:
        held = self.lease is None or self.lease.held()
        if held and self.swarm is None and self.swarm_config is not None:
            self._start_swarm()
        elif not held and self.swarm is not None:
            self.swarm.stop()
            self.swarm = None
        return held

    def _start_swarm(self) -> None:
        from healthswarm.agent.swarm import AgentSwarm

        assert self.swarm_config is not None
        self.swarm = AgentSwarm(self.swarm_config, self.workspace, self.organisation, self.store)
        self.swarm.on_accepted = self._store_warnings
        self.swarm.start()
        log.info("swarm node started", extra={"listen": self.swarm_config.listen, "node": self.swarm.name,
                                              "error": self.swarm.error})

    def _store_warnings(self) -> None:
        """The peers' warnings the node accepted, as indicators of the shared store (called on the node's loop,
        which reads the store to publish too)."""
        from datetime import UTC, datetime

        from healthswarm.model import Indicator
        from healthswarm.share.indicators import save_indicators

        if self.swarm is None:
            return
        now = datetime.now(UTC)
        received = self.swarm.received()
        items = [Indicator(w.value, w.type, now, now, w.confidence, source=w.origin, description=w.description,
                           techniques=w.techniques) for w in received]
        try:
            with self.store.transaction() as conn:
                save_indicators(conn, items)
        except Exception as exc:
            self._warnings_due = True
            log.warning("peers' warnings not stored; again at the next flush: %s: %s", type(exc).__name__, exc)
            return
        self._warnings_due = False
        log.info("peers' warnings stored for the watchlist", extra={"warnings": len(items)})
        if self.retro is not None:  # those the detect role's watchlist takes (its confidence floor)
            self.retro.add([w for w in received if w.confidence >= self.floor])

    def handle(self, batch: Sequence[Message]) -> None:
        ids = list(dict.fromkeys(i for m in batch for i in _incident_ids(m)))
        if self.live_risk is not None:
            self.live_risk.annotate(ids)
        if self.responder is not None:
            for response in self.responder.respond(ids):
                metrics.CASES_OPENED.inc(response.opened)
                metrics.PLAYBOOKS_STARTED.inc(len(response.runs))
        now = time.time()
        for m in batch:
            metrics.EVENT_TO_RESPONSE.observe(max(now - m.born, 0.0))

    def flush(self) -> None:
        """Responses follow each announcement; only peers' warnings whose storing failed wait for this."""
        if self._warnings_due:
            self._store_warnings()

    def settled(self, batch: Sequence[Message]) -> None:
        """A redelivered id is answered from the store (see the class)."""

    def close(self) -> None:
        if self.swarm is not None:  # leaves the swarm; what it published is in the workspace and the gate's audit
            self.swarm.stop()
            self.swarm = None
        if self.retro is not None:
            self.retro.close()
        if self.lease is not None:
            self.lease.release()


def _incident_ids(m: Message) -> list[str]:
    """An announcement of the correlate role; anything else fails its message (and ends as a dead letter)."""
    ids = orjson.loads(m.data)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("expected a JSON list of incident ids")
    return ids


def role_work(role: Role, store: Store, config: WorkerConfig, workspace: Path, handoff: Handoff) -> RoleWork:
    if role is Role.ingest:
        return IngestRole(store, config, handoff)
    if role is Role.detect:
        return DetectRole(store, config, workspace, handoff)
    if role is Role.respond:
        return RespondRole(store, config, workspace, handoff)
    return CorrelateRole(store, config, handoff)
