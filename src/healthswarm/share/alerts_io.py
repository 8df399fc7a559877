"""Alerts read back from their JSON form (`Alert.as_dict`), until alerts have a table in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Alert


def read_alerts(path: Path) -> list[Alert]:
    """Alerts from a JSON array or NDJSON file; every bad line is reported (file:line: what)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read: {exc.strerror}")) from exc
    problems: list[Problem] = []
    out: list[Alert] = []
    stripped = text.lstrip()
    items: list[tuple[int, Any]]
    if stripped.startswith(b"["):
        try:
            items = [(0, item) for item in orjson.loads(text)]
        except orjson.JSONDecodeError as exc:
            raise InputError(Problem(Location(str(path)), f"not valid JSON: {exc}")) from exc
    else:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(Location(str(path), number), f"not valid JSON: {exc}"))
    for number, item in items:
        try:
            if not isinstance(item, dict):
                raise TypeError("not a JSON object")
            out.append(Alert.from_dict(item))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(Location(str(path), number or None),
                                    f"not an alert: {exc}", "detector, rule_id, level, timestamp"))
    if problems:
        raise InputError(problems)
    return out
