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


STEPS = """
import gc, sys
from healthswarm.api.heap import freeze_startup_heap
if sys.argv[1] == "long-running":
    freeze_startup_heap()
else:  # CPython's collector as it comes, the same heap frozen
    gc.collect()
    gc.freeze()
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
kept = []
for step in range(300):
    batch = [{"fields": {"n": i}, "refs": [i]} for i in range(2_000)]  # a step's events, alive for a moment
    kept.extend(batch[:20])  # what the detectors keep of them
    del batch
print(len(full))
"""


def test_a_long_running_process_does_not_collect_its_whole_heap_at_every_step() -> None:
    """Steps that hold thousands of new objects for a moment set off full collections (each stops every thread
    for a walk of the whole heap) unless young collections are rare enough to find them gone."""
    def full_collections(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, timeout=120,
                              check=True)
        return int(done.stdout)

    assert full_collections("as-it-comes") >= 10
    assert full_collections("long-running") <= 1
