"""What the CLI and the API call about events: stored ones, and the events of files read without storing them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from healthswarm.ingest import containers
from healthswarm.model import Event
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


#: how a file in no known format is reported (the `hunt` command lists a few and counts the rest)
UNRECOGNISED = ": format not recognised (skipped)"
# the container layer's words for a stream that stops being readable (rather than one bad record)
_BROKEN_STREAM = "truncated or corrupt"


def events_in_files(files: Iterable[Path], problems: list[str],
                    done: Callable[[Path], None] = lambda _path: None) -> Iterator[Event]:
    """The events of files in any ingest format, whatever container they come in (gzip, bzip2, xz, zip, tar,
    nested), read by the same container layer as `ingest`, without storing anything. A file that cannot be
    read, or is in no known format, or breaks off, is one line in `problems`; a record that does not parse is
    skipped (a hunt reads, it does not quarantine). `done(path)` is called after each file."""
    for path in files:
        try:
            with path.open("rb") as raw:
                opened = containers.Opened(raw, str(path), name=path.name)  # type: ignore[arg-type]
                if not opened.recognised:
                    problems.append(f"{path}{UNRECOGNISED}")
                    continue
                for item in opened.records():
                    if isinstance(item, Event):
                        yield item
                    elif _BROKEN_STREAM in item.reason:
                        problems.append(f"{path}: cannot read: {item.reason}")
                if opened.kind == "broken":
                    problems.append(f"{path}: cannot read: {opened.stopped}")
                elif opened.stopped:  # a limit reached
                    problems.append(f"{path}: {opened.stopped}")
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        finally:
            done(path)
