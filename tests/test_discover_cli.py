"""`healthswarm inventory discover` and `inventory merge` through the real command line, on the demo workspace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from healthswarm.demo import ECOSYSTEM, LOGS


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthswarm", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    assert cli("-w", str(ws), "inventory", "load", str(ECOSYSTEM)).returncode == 0
    assert cli("-w", str(ws), "ingest", str(LOGS)).returncode == 0
    return ws


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Path:
    """A copy of the demo workspace (inventory loaded, logs ingested) for one test to change."""
    return Path(shutil.copytree(demo_workspace, tmp_path / "ws"))


def test_discover_json_patch_and_merge_on_the_demo(ws: Path, tmp_path: Path) -> None:
    patch = tmp_path / "patch.yaml"
    run = cli("-w", str(ws), "inventory", "discover", "--format", "json", "--patch", str(patch))
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout[: run.stdout.rindex("}") + 1])
    flows = {(f["source"], f["target"], f["protocol"]) for f in doc["undeclared_flows"]}
    assert ("sta-pump-02", "sta-fs-01", "smb") in flows
    assert doc["summary"]["undeclared_flows_high"] >= 1 and doc["summary"]["declared_flows_seen"] >= 5
    # the pump's SMB is held back in the patch (commented out); the RDP to the jump host is proposed
    text = patch.read_text()
    proposed = yaml.safe_load(text)
    assert {(f["from"], f["to"]) for f in proposed["flows"]} >= {("sta-ws-03", "sta-jump-01")}
    assert "# - from: sta-pump-02" in text
    merged = cli("-w", str(ws), "inventory", "merge", str(patch))
    assert merged.returncode == 0, merged.stderr
    again = cli("-w", str(ws), "inventory", "discover", "--format", "json", "--no-alerts")
    after = json.loads(again.stdout[: again.stdout.rindex("}") + 1])
    flows_after = {(f["source"], f["target"], f["protocol"]) for f in after["undeclared_flows"]}
    assert ("sta-ws-03", "sta-jump-01", "rdp") not in flows_after  # merged: now declared
    assert ("sta-pump-02", "sta-fs-01", "smb") in flows_after  # held back: still undeclared


def test_a_bad_patch_exits_2_with_lines_and_changes_nothing(ws: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("assets:\n- id: new-box\n  organisation: st-aurelia\n  zone: nowhere\n  kind: server\n"
                   "  name: A box\n  addresses: [10.10.1.101]\nflows:\n- from: new-box\n  to: sta-ehr-01\n"
                   "  protocol: carrier-pigeon\n")
    before = cli("-w", str(ws), "inventory", "show", "--format", "json").stdout
    result = cli("-w", str(ws), "inventory", "merge", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bad}:4: zone: unknown zone 'nowhere'" in result.stderr
    assert f"{bad}:11: protocol: unknown protocol 'carrier-pigeon'" in result.stderr
    assert "overlaps" in result.stderr  # 10.10.1.101 belongs to a declared workstation
    assert "(at the stored inventory)" in result.stderr and "healthswarm-merge-" not in result.stderr
    assert cli("-w", str(ws), "inventory", "show", "--format", "json").stdout == before


def test_since_must_be_a_time(ws: Path) -> None:
    result = cli("-w", str(ws), "inventory", "discover", "--since", "yesterday-ish")
    assert result.returncode == 2 and "--since" in result.stderr and "Traceback" not in result.stderr
    later = cli("-w", str(ws), "inventory", "discover", "--since", "2026-11-27T09:00", "--format", "json")
    doc = json.loads(later.stdout[: later.stdout.rindex("}") + 1])
    assert doc["window"]["first"] >= "2026-11-27T09:00"
