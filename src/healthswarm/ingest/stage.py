"""The ingest stage of both deployments: records → parsed, enriched events (the Pipeline: formats, keys,
enrichment, quarantine) → stored, each commit announcing the events it newly stored in the same transaction.

Embedded, the agent's sources feed it (files, syslog, MQTT, NATS, stdin; agent/sources.AgentPipeline adds the
agent's write lock and claim checks). Scaled out, the ingest role (`agent run --role ingest`) hands it batches
of raw records taken from the bus (`handle`), and `announce` queues the stored events in the outbox, whose
relay publishes them for the detect role. The stage knows neither: it is told what to call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from healthswarm.ingest.formats import Format, get_format
from healthswarm.ingest.pipeline import Message, Pipeline
from healthswarm.model import Event

#: the format name that sniffs each record's format
AUTO = "auto"
Announce = Callable[[Connection, list[Event]], None]


class IngestStage(Pipeline):
    def __init__(self, store: Any, *, announce: Announce | None = None, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.announce = announce
        self.announces = announce is not None
        self._formats: dict[str, Format | None] = {}

    def _announce(self, conn: Connection, stored: list[Event]) -> None:
        if self.announce is not None:
            self.announce(conn, stored)
        else:
            super()._announce(conn, stored)

    def handle(self, messages: Sequence[Message], fmt: str, name: str, scheme: str) -> None:
        """Raw records of one format (`auto` or an unknown name: sniffed per record) stored in one transaction.
        The caller acks them once this returns; raising leaves nothing stored."""
        self.run_messages(messages, scheme=scheme, fmt=self.format(fmt), name=name, ack_all=_acked_by_caller)

    def format(self, name: str) -> Format | None:
        if name not in self._formats:
            try:
                self._formats[name] = None if name == AUTO else get_format(name)
            except (KeyError, ModuleNotFoundError):
                # an unknown format token: sniff each record (what cannot be parsed goes to quarantine)
                self._formats[name] = None
        return self._formats[name]


def _acked_by_caller(_messages: Sequence[Any]) -> None:
    """The caller acks after the whole batch committed (several formats may share one bus batch)."""
