"""A long-running process's heap: what is alive once it is built lives as long as the process (the API server,
the agent and its ingest process), and what it frees goes back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any

TRIM_SECONDS = 60  # between two return_free_heap calls of a long-running process
YOUNG_COLLECTION = 20_000  # new container objects between two young collections (CPython: 700)


def freeze_startup_heap() -> None:
    """Put every object alive now (the app, its routes and models, the libraries: ~160,000 of them) out of the
    cyclic garbage collector's reach, once, in a server process, after the app is built.

    A large answer (the ecosystem view with 10,000 open incidents) keeps tens of thousands of rows alive while it
    is built; they survive young collections, and every few such requests the collector runs a full collection
    that walks the whole heap: measured ~100 ms each, every 5-6 requests, which set the view's p99 (median CPU
    per call 18 ms, mean 31 ms; frozen: 19 ms and 19 ms). Frozen objects are never collected, so this is for a
    process that builds one app and serves it, not for one that builds many (tests).

    And young collections come after YOUNG_COLLECTION new objects, not CPython's 700: a step of the agent holds
    thousands of events for a moment; at 700 they were collected young again and again, outlived it into the old
    generation, and that set off full collections: 50 in a 33 s drain of the agent, up to 0.5 s each with every
    thread stopped (5 s of its 30); at 20,000, one."""
    gc.collect()  # no garbage frozen with the rest
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def return_free_heap() -> None:
    """Give the pages the C heap holds free back to the system (glibc's malloc_trim; nothing elsewhere).

    glibc keeps what a thread frees in that thread's arena for reuse, and a busy agent's threads (sources, detection,
    the responder) free tens of MiB of batches a minute in scattered chunks that are rarely reused whole: in a drain
    of 20,000 events of the mixed stream the agent's RSS fell from 387 to 312 MiB on one call, and over a 30-minute
    soak this reserve was much of the growth the bench reported. Cheap enough to run every minute (a walk of the
    free lists)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
