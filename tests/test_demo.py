"""`healthswarm demo` runs end to end on embedded defaults, in a fresh workspace, twice in a row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_demo(workspace: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(workspace), "demo", "--format", "json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_summary_and_rerun(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "ws")
    eco = first["Load the reference ecosystem"]
    assert eco["assets"] >= 150 and eco["organisations"] >= 4
    vulns = first["Match medical-device advisories"]
    assert vulns["advisories"] >= 30 and vulns["advisory_problems"] == []
    assert vulns["affected_assets"] > 0 and vulns["possibly_affected_assets"] > 0
    assert (tmp_path / "ws" / "healthswarm.db").exists()
    # a second run starts from a clean store and gives the same figures
    assert run_demo(tmp_path / "ws") == first
