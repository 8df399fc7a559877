"""Opaque cursors for paging: the client hands back what it was given, and nothing else is accepted."""

from __future__ import annotations

import base64
import binascii

from healthswarm.api.problems import Problem

MAX_PAGE = 500
DEFAULT_PAGE = 100


def encode(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str | None) -> int:
    """The position a cursor of `kind` points at (0 without a cursor); a 400 problem for anything else."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got, _, number = text.partition(":")
        value = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "cursor: not a cursor this API gave out", title="Invalid cursor") from None
    if got != kind or not 0 <= value < 2**62:
        raise Problem(400, "cursor: not a cursor of this list", title="Invalid cursor")
    return value

