"""What every benchmark shares: timing, peak memory, machine facts, the results table and JSON file."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, seconds) of one call, by the monotonic high-resolution clock."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def cpu_timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, CPU seconds of this process) of one call: what the work costs, whatever the neighbours do."""
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def report(capability: str, figures: dict[str, Any], rows: list[tuple[str, str]], quick: bool) -> Path:
    """Print the figures as a table and write bench/results/<capability>.json."""
    table = Table(title=f"bench/{capability}.py" + (" --quick" if quick else ""))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{capability}.json"
    document = {
        "capability": capability,
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": figures,
    }
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    Console().print(f"wrote {out}")
    return out
