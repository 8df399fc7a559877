"""What the CLI and the API call about stored events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from healthswarm.store.events import search_events


def find_events(conn: Connection, start: datetime | None, end: datetime | None, observer_type: str | None,
                asset: str | None, after_id: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page of events in arrival order after `after_id`, and the id to continue after (None on the last page)."""
    got = search_events(conn, start=start, end=end, observer_type=observer_type, asset_id=asset,
                        after_id=after_id, limit=limit + 1)
    more = len(got) > limit
    page = got[:limit]
    items = [{"id": s.id, "timestamp": s.event.timestamp.isoformat(), "source": s.event.source,
              "record": s.event.record, "key": s.event.key, "fields": s.event.fields} for s in page]
    return items, (page[-1].id if more and page else None)
