"""`healthswarm inventory …` end to end through the real command line entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
from typer.testing import CliRunner

from healthswarm.cli.main import app

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo" / "ecosystem.yaml"
runner = CliRunner()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthswarm", *args], capture_output=True, text=True, timeout=120)


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    assert runner.invoke(app, ["inventory", "validate", str(DEMO)]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text().replace("kind: infusion-pump", "kind: toaster", 1))
    result = cli("inventory", "validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "unknown kind 'toaster'" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_bad_input_exits_2_without_traceback_and_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert cli("-w", str(ws), "inventory", "load", str(DEMO)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("assets: [}\n")
    result = cli("-w", str(ws), "inventory", "load", str(bad))
    assert result.returncode == 2 and "malformed YAML" in result.stderr and "Traceback" not in result.stderr
    shown = cli("-w", str(ws), "inventory", "show", "--format", "json")
    assert len(json.loads(shown.stdout)) == 187


def test_show_filters_and_graph_exports(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["-w", ws, "inventory", "load", str(DEMO)]).exit_code == 0
    result = runner.invoke(app, ["-w", ws, "inventory", "show", "--kind", "infusion-pump", "--format", "ndjson"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["kind"] == "infusion-pump" and r["medical_device"] for r in rows)
    graphml = tmp_path / "g.graphml"
    assert runner.invoke(app, ["-w", ws, "inventory", "graph", "-o", str(graphml)]).exit_code == 0
    g = nx.read_graphml(graphml)
    assert g.number_of_nodes() == 187
    assert g.nodes["sta-pump-01"]["kind"] == "infusion-pump"
    out = tmp_path / "g.json"
    assert runner.invoke(app, ["-w", ws, "inventory", "graph", "-o", str(out), "--format", "json"]).exit_code == 0
    data = json.loads(out.read_text())
    assert len(data["nodes"]) == 187 and any(e["relation"] == "dependency" for e in data["edges"])


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = cli("--db", "postgresql://nobody@127.0.0.1:1/none", "inventory", "show")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot open the database" in result.stderr
