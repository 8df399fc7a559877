"""Tolerant reads of JSON values: advisories in the wild put strings where lists belong and the like,
and a parser must take what is usable and report the rest, not crash."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
