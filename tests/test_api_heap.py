"""`healthswarm serve` freezes the heap it starts with: the full collections that a large answer's rows trigger
then walk only what requests made, not the app and its libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVER_START = """
import gc, json, sys
from healthswarm.api import create_app
from healthswarm.api.heap import freeze_startup_heap
from healthswarm.config import Settings
create_app(Settings(db=sys.argv[1]))
before = len(gc.get_objects())
freeze_startup_heap()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "collected": len(gc.get_objects())}))
"""


def test_the_app_built_at_start_is_out_of_the_collectors_reach(tmp_path: Path) -> None:
    # a process of its own: frozen objects are never collected, which a test process must not suffer
    done = subprocess.run([sys.executable, "-c", SERVER_START, f"sqlite:///{tmp_path / 'db.sqlite'}"],
                          capture_output=True, text=True, timeout=120, check=True)
    heap = json.loads(done.stdout)
    assert heap["frozen"] >= 0.9 * heap["before"] > 50_000
    assert heap["collected"] < heap["before"] / 100
