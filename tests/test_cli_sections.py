"""The case and node views over the demo workspace, read as a person reads them: deadlines headed as the demo and
the dashboard head them (the due time says it is UTC), and a section with nothing in it is one line saying so,
not an empty table frame."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api_support import demo_workspace  # noqa: F401
from healthswarm.cli.main import app


@pytest.fixture
def workspace(demo_workspace: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    target.mkdir()
    shutil.copy(demo_workspace / "healthswarm.db", target / "healthswarm.db")
    shutil.copytree(demo_workspace / "swarm", target / "swarm")  # the demo's nodes' status files
    return target


def run(workspace: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-w", str(workspace), *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_deadlines_are_headed_as_the_demo_heads_them(workspace: Path) -> None:
    case = orjson.loads(run(workspace, "case", "list", "--format", "json")[1])[0]["id"]
    code, out = run(workspace, "case", "deadlines", case)
    assert code == 0, out
    header = next(line for line in out.splitlines() if "article" in line)
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == ["article", "obligation", "to", "due (UTC)",
                                                               "time left", "status"]
    assert "without undue delay" in out and "—" in out  # GDPR Art. 34 has no date
    # the data keep their own names
    code, out = run(workspace, "case", "deadlines", case, "--format", "json")
    assert {"recipient", "due", "left"} <= set(orjson.loads(out)[0])


def test_empty_sections_are_one_line(workspace: Path) -> None:
    case = orjson.loads(run(workspace, "case", "list", "--format", "json")[1])[0]
    assert case["owners"] == []  # the demo's case: no task, note or owner yet
    code, out = run(workspace, "case", "show", case["id"])
    assert code == 0, out
    assert "tasks: none" in out and "notes: none" in out
    assert "Evidence (" in out and "Observables" in out  # the sections that hold something stay tables
    code, out = run(workspace, "node", "status", "--config", str(workspace / "swarm" / "northfield.toml"))
    assert code == 0, out
    assert "dropped: none" in out and "reason" not in out
