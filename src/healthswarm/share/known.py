"""The sensitive values of this organisation, read from the store: its inventory and its events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, select

from healthswarm.share.sensitive import Sensitive, from_event_fields, from_inventory
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import events


def _event_fields(conn: Connection) -> Iterator[dict[str, Any]]:
    result = conn.execution_options(yield_per=5000).execute(select(events.c.fields))
    for (fields,) in result:
        if isinstance(fields, str | bytes):
            fields = orjson.loads(fields)
        if isinstance(fields, dict):
            yield fields


def known_from_store(conn: Connection, organisation: str | None = None) -> Sensitive:
    """Inventory (the organisation's part when named, else all of it) plus users, hosts, internal addresses and
    patient values of every stored event."""
    known = from_inventory(load_inventory(conn), organisation or None)
    known.merge(from_event_fields(_event_fields(conn), base=known))
    return known
