"""Structured logs: one JSON object per line on stderr, with every URL password masked."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Any `scheme://user:password@` in `text` with the password replaced: logs must hold no secrets."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)

# attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict[str, Any]) -> None:
        super().__init__()
        self.static = static

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
            **self.static,
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                doc[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # the error in one line: a traceback would span lines and may quote connection strings
            doc["error"] = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return orjson.dumps(doc, default=str).decode()


def setup(static: dict[str, Any], level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(static))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # nats-py logs reconnect noise itself; our callbacks already say it once, structured
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "running upgrade" lines on every start
