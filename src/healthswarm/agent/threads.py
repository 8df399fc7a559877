"""The agent's worker threads (its own and its ingest process's): a thread that dies reports why instead of
vanishing, so readiness can go false and the operator reads the reason."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("healthswarm.agent")


def start_guarded(target: Callable[..., Any], name: str, args: tuple[Any, ...],
                  on_error: Callable[[str], None]) -> threading.Thread:
    """Run `target(*args)` in a daemon thread called `name`; an exception is logged and handed to `on_error`
    as one line: "<name>: <type>: <message>"."""

    def guarded() -> None:
        try:
            target(*args)
        except Exception as exc:
            log.exception("%s stopped", name)
            on_error(f"{name}: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread
