"""The correlate role: alerts → the Correlator → incidents stored.

The Correlator's state (open incidents, the entity index) spans every alert, so one correlator is active at a
time: on PostgreSQL it holds a session advisory lock and commits each batch on that same connection, so it
cannot write once the lock is gone (connection cut: the batch fails, is nak'ed, and the lock is taken again);
other correlate workers wait as hot standbys. SQLite allows one worker, so it needs no lock.

Exactly once: the Correlator skips an alert id it has placed; after a restart (or a failed batch) the state is
rebuilt from the store, from the alerts of open incidents, so redelivered alerts are recognised. Replaying in
time order may name an incident after a different first alert than the live run did: the stale row is then
recorded as merged into the rebuilt one and deleted with the next write.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, select, text

from healthswarm.detect.correlate import CLOSED_STATES, Correlator
from healthswarm.model.incident import Incident
from healthswarm.share.alerts_io import alert_from_dict
from healthswarm.store import Store
from healthswarm.store.alerts import save_incidents
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import alerts, incidents
from healthswarm.worker import metrics
from healthswarm.worker.config import WorkerConfig
from healthswarm.worker.delivery import Delivery

log = logging.getLogger("healthswarm.worker.correlate")


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


class CorrelateStage:
    def __init__(self, store: Store, config: WorkerConfig) -> None:
        self.store = store
        self.lease = Lease(store, f"healthswarm-correlator:{config.prefix}") if store.backend == "postgresql" else None
        self.correlator: Correlator | None = None

    def active(self) -> bool:
        if self.lease is not None and not self.lease.held():
            self.correlator = None  # whoever holds the lock now may have moved on: rebuild when ours again
            return False
        return True

    def _write(self, live: list[Incident]) -> None:
        if self.lease is None:
            with self.store.transaction() as conn:
                save_incidents(conn, live)
            return
        conn = self.lease.conn
        if conn is None:
            raise RuntimeError("correlator lease lost before the write")
        with conn.begin():  # on the lock's own connection: no lock, no write
            save_incidents(conn, live)

    def handle(self, batch: Sequence[Delivery]) -> None:
        try:
            self._handle(batch)
        except Exception:
            self.correlator = None
            if self.lease is not None:
                self.lease.release()
            raise

    def _handle(self, batch: Sequence[Delivery]) -> None:
        touched: dict[str, Incident] = {}
        if self.correlator is None:
            self.correlator, touched = self._rebuild()
        for alert in sorted((alert_from_dict(orjson.loads(d.data)) for d in batch), key=lambda a: a.timestamp):
            incident = self.correlator.add(alert)
            if incident is not None:
                touched[incident.id] = incident
        live = [i for i in touched.values() if i.id in self.correlator.incidents]
        if live:
            self._write(live)
            metrics.INCIDENTS.inc(len(live))

    def _rebuild(self) -> tuple[Correlator, dict[str, Incident]]:
        """The Correlator as the store says: every alert of an open incident, replayed in time order."""
        with self.store.read() as conn:
            correlator = Correlator(load_inventory(conn).assets)
            open_ids = select(incidents.c.id).where(incidents.c.state.not_in([str(s) for s in CLOSED_STATES]))
            rows = conn.execute(select(alerts.c.document, alerts.c.incident_id)
                                .where(alerts.c.incident_id.in_(open_ids))).all()
        stored_incident = {}
        for row in sorted(rows, key=lambda r: (r.document["timestamp"], r.document["id"])):
            alert = alert_from_dict(row.document)
            stored_incident[alert.id] = row.incident_id
            correlator.add(alert)
        touched: dict[str, Incident] = {}
        for incident in correlator.incidents.values():
            stale = {stored_incident[a] for a in incident.alert_ids if stored_incident.get(a)} - {incident.id}
            if stale:
                incident.merged_from.extend(sorted(stale - set(incident.merged_from)))
                touched[incident.id] = incident
        log.info("correlator state rebuilt", extra={"alerts": len(rows), "incidents": len(correlator.incidents)})
        return correlator, touched

    def close(self) -> None:
        if self.lease is not None:
            self.lease.release()
