"""Helpers (no tests) for the Sigma engine tests: events from evtx_dump JSON and from plain dicts.

The flattening here only stands in for the EVTX parser where it is absent (tests prefer the real
`healthswarm.ingest.formats.evtx`); it produces the flat Windows dict `base.py` documents.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from healthswarm.model import Event


def _leaf(value: Any) -> Any:
    if isinstance(value, dict):
        if "#text" in value:
            return value["#text"]
        return None
    return value


def _attrs(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for name, value in (node.get("#attributes") or {}).items():
            out[f"{prefix}_{name}"] = value


def flatten_evtx_json(record: dict[str, Any]) -> dict[str, Any]:
    """One evtx_dump JSON record → the flat Windows dict (System fields, EventData/UserData by name)."""
    event = record.get("Event", record)
    out: dict[str, Any] = {}
    for name, value in (event.get("System") or {}).items():
        if name in ("Provider", "TimeCreated", "Execution", "Security", "Correlation"):
            _attrs(name, value, out)
        else:
            out[name] = _leaf(value)
    data = event.get("EventData")
    if isinstance(data, dict):
        for name, value in data.items():
            if name == "#attributes":
                continue
            out[name] = _leaf(value)
    user = event.get("UserData")
    if isinstance(user, dict):
        for inner in user.values():
            if isinstance(inner, dict):
                for name, value in inner.items():
                    if name != "#attributes":
                        out[name] = _leaf(value)
    return out


def read_evtx_json(path: Path) -> Iterator[dict[str, Any]]:
    """The records of an evtx_dump JSON file: one object, a list, or objects one after another."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        if isinstance(obj, list):
            yield from obj
        else:
            yield obj


def windows_event(flat: dict[str, Any], source: str = "", record: int = 0) -> Event:
    stamp = flat.get("TimeCreated_SystemTime")
    try:
        timestamp = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else datetime.now(UTC)
    except ValueError:
        timestamp = datetime.now(UTC)
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return Event(timestamp=timestamp, fields={"observer.type": "windows-json"}, original=flat, source=source,
                 record=record)


def json_events(path: Path) -> list[Event]:
    return [windows_event(flatten_evtx_json(r), str(path), i) for i, r in enumerate(read_evtx_json(path), 1)]


def evtx_parser_available() -> bool:
    try:
        from healthswarm.ingest.formats import get_format

        get_format("evtx")
    except (ImportError, KeyError, AttributeError):
        return False
    return True


def evtx_events(path: Path) -> list[Event]:
    """Events of an EVTX file read by the real parser (only when `evtx_parser_available()`)."""
    from healthswarm.ingest.formats import get_format

    fmt = get_format("evtx")
    with path.open("rb") as fh:
        return [e for e in fmt.parse(fh, str(path)) if isinstance(e, Event)]


def ecs_event(fields: dict[str, Any], original: Any = None, when: datetime | None = None) -> Event:
    return Event(timestamp=when or datetime(2026, 1, 1, tzinfo=UTC), fields=fields, original=original)


#: two single-event rules over login events, for correlation tests to refer to by name
LOGIN_RULES = textwrap.dedent("""
    title: failed login
    id: 00000000-0000-0000-0000-00000000000a
    name: failed_login
    logsource: {product: test}
    detection:
        sel:
            event.action: login
            event.outcome: failure
        condition: sel
    level: low
    ---
    title: successful login
    id: 00000000-0000-0000-0000-00000000000b
    name: successful_login
    logsource: {product: test}
    detection:
        sel:
            event.action: login
            event.outcome: success
        condition: sel
    level: low
    """)
