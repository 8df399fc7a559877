"""Secrets never reach a log: every log record is redacted as it is created, whoever logs it.

A record factory rather than a handler filter, because a filter on a logger misses its children's
records and one on a handler misses handlers added later (uvicorn configures its own). What is
redacted: API tokens (`hs_…`), Authorization header values, `access_token`/`password`/`secret`/`key`
parameters, the password in a URL's user info (database and broker URLs), PEM private key blocks.
Arguments are redacted one by one so that formatters which unpack them (uvicorn's access log) still work.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

MASK = "[REDACTED]"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.S),
     f"{MASK} private key"),
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {MASK}"),
    (re.compile(r"\bhs_[A-Za-z0-9_-]{8,}"), f"hs_{MASK}"),
    # scheme://user:password@host — keep the user and host, which are what an operator needs to debug
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/?#@\s]*):[^@/?#\s]*@", re.I), rf"\1:{MASK}@"),
    (re.compile(r"""(["']?\b(?:access_token|token|password|passwd|pwd|secret|api_key|apikey|private_key)"""
                r"""["']?\s*[=:]\s*["']?)[^"'&\s,;}]+""", re.I), rf"\1{MASK}"),
    (re.compile(r"(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+", re.I), rf"\1{MASK}"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(value: Any) -> Any:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned  # untouched values keep their type for %r, %x and friends


def redact_record(record: logging.LogRecord) -> None:
    """Redact `record` in place: its message, its arguments and any exception text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redact_arg(v) for k, v in record.args.items()}
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call; logging reports it itself when it formats
        message = ""
    if message and redact(message) != message:  # a secret split between the format and an argument
        record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))


_installed = False


def install() -> None:
    """Redact every record created from now on in this process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
