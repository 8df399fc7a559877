"""The ingest role: raw records (`<prefix>.raw.<format>`) → parsed, enriched events stored exactly once, with
their announcements to the detect role written to the outbox in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from healthswarm.bus.codec import event_to_bytes
from healthswarm.ingest.formats import Format, get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.model import Event
from healthswarm.store import Store
from healthswarm.store.events import insert_events, insert_rejects
from healthswarm.worker import metrics, outbox
from healthswarm.worker.config import Role, WorkerConfig
from healthswarm.worker.delivery import Delivery

AUTO = "auto"


def partition_key(event: Event) -> str:
    """What keeps one organisation's (else one host's) stream on one detect partition."""
    f = event.fields
    return str(f.get("organization.id") or f.get("host.name") or f.get("source.ip") or "")


class OutboxPipeline(Pipeline):
    """The ingest pipeline (same parsing, keys, enrichment and quarantine as `healthswarm ingest nats://`), whose
    batch transaction queues newly stored events in the outbox instead of publishing them itself."""

    def __init__(self, store: Store, *, config: WorkerConfig, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.config = config
        self.born = 0.0

    def _commit(self, batch: Any, stats: Any, checkpoint: tuple[str, str, int] | None) -> None:
        with self.store.transaction() as conn:
            stored, keys = insert_events(conn, batch.events, want_keys=True)
            quarantined = insert_rejects(conn, batch.rejects, batch.reject_keys)
            outbox.add(conn, [self._announce(e) for e in batch.events if e.key in keys])
        metrics.EVENTS_IN.labels(Role.ingest.value).inc(len(batch.events))
        metrics.EVENTS_STORED.inc(stored)
        metrics.REJECTS.inc(len(batch.rejects))
        stats.stored += stored
        stats.quarantined += quarantined

    def _announce(self, event: Event) -> outbox.OutboxMessage:
        subject = self.config.event_subject(self.config.partition_of(partition_key(event)),
                                            str(event.fields.get("observer.type") or "unknown"))
        return outbox.OutboxMessage(event.key, subject, event_to_bytes(event), self.born)


class IngestStage:
    def __init__(self, store: Store, config: WorkerConfig) -> None:
        self.config = config
        self.pipeline = OutboxPipeline.for_store(store, config.organisation, config=config)
        self._formats: dict[str, Format | None] = {}

    def active(self) -> bool:
        return True

    def handle(self, batch: Sequence[Delivery]) -> None:
        by_format: dict[str, list[Delivery]] = defaultdict(list)
        for d in batch:
            by_format[d.subject.rsplit(".", 1)[-1]].append(d)
        for name, group in by_format.items():
            # latency is counted from the oldest record of the group: an upper bound for the others
            self.pipeline.born = min(d.born for d in group)
            # deliveries have no ack(): the runner acks them after the whole batch committed
            self.pipeline.run_messages(group, scheme="nats", fmt=self._format(name),  # type: ignore[arg-type]
                                       name=self.config.raw_subject(name), ack_all=_acked_by_runner)

    def _format(self, name: str) -> Format | None:
        if name not in self._formats:
            try:
                self._formats[name] = None if name == AUTO else get_format(name)
            except (KeyError, ModuleNotFoundError):
                # an unknown format token: sniff each message (what cannot be parsed goes to quarantine)
                self._formats[name] = None
        return self._formats[name]

    def flush(self) -> None:
        """Parsing completes with each record: nothing waits for time."""

    def close(self) -> None:
        self.pipeline.close()


def _acked_by_runner(_messages: Sequence[Any]) -> None:
    """The runner acks after the whole batch committed; the pipeline must not ack group by group."""

