"""The correlate stage of both deployments: alerts → the Correlator → incidents stored. The embedded agent calls
`place` with the alerts of each detection step (agent/detect.py) and commits the `Changes` with them; the
scale-out correlate role (`agent run --role correlate`) calls `correlate` with the alerts of a bus batch.

The Correlator's state (open incidents, the entity index) spans every alert, so one correlator is active at a
time: on PostgreSQL it holds a session advisory lock and commits each batch on that same connection, so it
cannot write once the lock is gone (connection cut: the batch fails, is nak'ed, and the lock is taken again);
other correlate workers wait as hot standbys. SQLite allows one worker, so it needs no lock.

Exactly once: an alert the store already shows in an incident is skipped (a redelivery, even of an alert
whose incident the Correlator has evicted), and so is one the Correlator placed in this run. After a restart
(or a failed batch) the state is rebuilt from the store, from the alerts of open incidents that can still be
joined. Replaying in time order may name an incident after a different first alert than the live run did: the
stale row is then recorded as merged into the rebuilt one and deleted with the next write.

Memory: the Correlator evicts incidents that no alert at most LATENESS late can join any more (their last
alert older than the join window plus LATENESS, in alert time). Writes: an incident's row is rewritten when
the batch changed it, and only the batch's alerts (and those of incidents merged into it) are pointed at it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Connection, bindparam, delete, select, text, update

from healthswarm.detect.correlate import Correlator
from healthswarm.model import Alert
from healthswarm.model.incident import Incident
from healthswarm.store import Store
from healthswarm.store.alerts import latest_incident_seen, open_incident_alerts, write_incident_rows
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import alerts, incidents

log = logging.getLogger("healthswarm.detect.correlate_stage")
# how late (in alert time, behind the newest alert placed) an alert may arrive and still join exactly as if it
# had come in order: detect workers, redeliveries and timer-flushed Sigma correlations all arrive a little late
LATENESS = timedelta(hours=1)


class Lease:
    """A PostgreSQL session advisory lock on a connection of its own, named after the deployment's prefix."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        self.conn: Connection | None = None

    def held(self) -> bool:
        """True while the lock is held on a live connection; tries to take it when not."""
        try:
            if self.conn is not None:
                self.conn.execute(text("SELECT 1"))
                self.conn.commit()
                return True
            self.conn = self.store.engine.connect()
            got = bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            self.conn.commit()
        except Exception as exc:
            log.warning("correlator lease: database unreachable", exc_info=exc)
            self.release()
            return False
        if not got:
            self.release()
        return got

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()  # never hand a lock-holding connection back to the pool
                self.conn.close()
            finally:
                self.conn = None


class LeaseLost(RuntimeError):
    """The correlator's lock went with its connection: the batch is retried by whoever holds it next."""


# called in the transaction that writes a batch's incidents, with those written (the scale-out role queues their
# ids in its outbox for the respond role, so that a change and its announcement commit together)
Announce = Callable[[Connection, list[Incident]], None]


class CorrelateStage:
    def __init__(self, store: Store, deployment: str = "healthswarm", announce: Announce | None = None) -> None:
        """`deployment` names the lock that makes one correlator active among the workers of one deployment."""
        self.store = store
        self.announce = announce
        self.lease = Lease(store, f"healthswarm-correlator:{deployment}") if store.backend == "postgresql" else None
        self.correlator: Correlator | None = None

    def active(self) -> bool:
        if self.lease is not None and not self.lease.held():
            self.correlator = None  # whoever holds the lock now may have moved on: rebuild when ours again
            return False
        return True

    def _write(self, changes: Changes) -> None:
        if self.lease is None:
            with self.store.transaction() as conn:
                self._save(conn, changes)
            return
        conn = self.lease.conn
        if conn is None:
            raise LeaseLost("correlator lease lost before the write")
        with conn.begin():  # on the lock's own connection: no lock, no write
            self._save(conn, changes)

    def _save(self, conn: Connection, changes: Changes) -> None:
        changes.save(conn)
        if self.announce is not None:
            self.announce(conn, changes.write)

    def correlate(self, found: Sequence[Alert]) -> int:
        """Place the alerts and write what changed in a transaction of its own (under the lease on PostgreSQL);
        returns how many incidents were written. Raising leaves nothing written, and the state is rebuilt."""
        try:
            changes = self.place(found)
            if changes.write:
                self._write(changes)
            return len(changes.write)
        except Exception:
            self.correlator = None
            if self.lease is not None:
                self.lease.release()
            raise

    def place(self, found: Sequence[Alert]) -> Changes:
        """Place alerts (in time order) in the Correlator; returns the rows to write, for the caller to save in
        its transaction (`Changes.save`). If that transaction fails, set `correlator = None`: the next call
        rebuilds the state from the store. The embedded agent calls this with the alerts of one detection step."""
        changes = Changes()
        if self.correlator is None:
            self.correlator, changes.touched = self._rebuild()
        with self.store.read() as conn:
            placed = set(conn.execute(select(alerts.c.id).where(alerts.c.id.in_([a.id for a in found]),
                                                                alerts.c.incident_id.is_not(None))).scalars())
        for alert in sorted((a for a in found if a.id not in placed), key=lambda a: a.timestamp):
            incident = self.correlator.add(alert)
            if incident is not None:
                changes.touched[incident.id] = incident
                changes.placed.append((alert.id, incident.id))
        changes.resolve(self.correlator.incidents)
        return changes

    def _rebuild(self) -> tuple[Correlator, dict[str, Incident]]:
        """The Correlator as the store says: every alert of an open incident that can still be joined, replayed in
        time order."""
        with self.store.read() as conn:
            correlator = Correlator(load_inventory(conn).assets, lateness=LATENESS)
            newest = latest_incident_seen(conn, open_only=True)
            # what the live Correlator had not evicted: the rest can be joined by no alert to come
            stored = [] if newest is None else open_incident_alerts(conn, newest - correlator.window - LATENESS)
        stored_incident = {}
        for s in stored:  # oldest first
            stored_incident[s.alert.id] = s.incident_id
            correlator.add(s.alert)
        touched: dict[str, Incident] = {}
        for incident in correlator.incidents.values():
            stale = {stored_incident[a] for a in incident.alert_ids if stored_incident.get(a)} - {incident.id}
            if stale:
                incident.merged_from.extend(sorted(stale - set(incident.merged_from)))
                touched[incident.id] = incident
        log.info("correlator state rebuilt", extra={"alerts": len(stored), "incidents": len(correlator.incidents)})
        return correlator, touched

    def close(self) -> None:
        if self.lease is not None:
            self.lease.release()


class Changes:
    """What one batch did to the incidents, and the rows that makes: every incident it touched that still
    exists (in the Correlator, or evicted from it) is rewritten; one merged into another is deleted."""

    def __init__(self) -> None:
        self.touched: dict[str, Incident] = {}
        self.placed: list[tuple[str, str]] = []  # (alert id, the incident it joined at the time)
        self.write: list[Incident] = []
        self.into: dict[str, str] = {}  # a merged incident → the incident written that now holds its alerts

    def resolve(self, live: dict[str, Incident]) -> int:
        """Decide the rows; returns how many incidents will be written."""
        # a merge target is touched by the alert that merged, so every merge of the batch is in here (with the
        # merges of earlier batches, whose rows are already gone)
        parent = {m: t.id for t in self.touched.values() for m in t.merged_from}
        self.write = [t for t in self.touched.values() if t.id in live or t.id not in parent]
        written = {t.id for t in self.write}
        for merged in parent:
            if merged not in written:
                target = parent[merged]
                while target not in written:  # merged, then merged again within the batch
                    target = parent[target]
                self.into[merged] = target
        return len(self.write)

    def save(self, conn: Connection) -> None:
        write_incident_rows(conn, self.write)
        if self.placed:
            # one statement executed for each alert, which the driver sends together (psycopg: one pipeline):
            # a statement per incident was a round trip each, most of a batch's wall time on a busy machine
            conn.execute(update(alerts).where(alerts.c.id == bindparam("alert_id"))
                         .values(incident_id=bindparam("target")),
                         [{"alert_id": a, "target": self.into.get(i, i)} for a, i in self.placed])
        merged_into: dict[str, list[str]] = {}
        for merged, target in self.into.items():
            merged_into.setdefault(target, []).append(merged)
        for target, merged_ids in merged_into.items():
            conn.execute(update(alerts).where(alerts.c.incident_id.in_(merged_ids)).values(incident_id=target))
            conn.execute(delete(incidents).where(incidents.c.id.in_(merged_ids)))
