"""A file the user names that cannot be written — a folder, a path under a file, a read-only folder — is one error
line naming it and exit 2, never a traceback; and the hints of a wrong id name the command as the user's shell runs
it (the installation's healthswarm, the --workspace given)."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from api_support import demo_workspace  # noqa: F401

SCRIPT = Path(sys.executable).with_name("healthswarm")


def healthswarm(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "-w", str(workspace), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def workspace(demo_workspace: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    target.mkdir()
    shutil.copy(demo_workspace / "healthswarm.db", target / "healthswarm.db")
    return target


def test_unwritable_outputs_are_one_line_each(workspace: Path, tmp_path: Path) -> None:
    incident = orjson.loads(healthswarm(workspace, "incidents", "list", "--format", "json").stdout)[0]["id"]
    cases = orjson.loads(healthswarm(workspace, "case", "list", "--format", "json").stdout)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    commands = [("report", "incident", incident, "-o", str(folder)),
                ("report", "incident", incident, "-o", str(a_file / "report.html")),
                ("inventory", "graph", "-o", str(folder)),
                ("case", "notify-draft", cases[0]["id"], "--regime", "gdpr", "-o", str(folder)),
                ("share", "report", incident, "-o", str(a_file / "bundle.json"))]
    for args in commands:
        result = healthswarm(workspace, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "cannot write" in lines[0], (args, lines)
        assert str(Path(args[-1])) in lines[0], (args, lines)


def test_an_unknown_incident_hint_runs_as_printed(workspace: Path) -> None:
    for args in (("incidents", "show", "INC-none"), ("incidents", "state", "INC-none", "closed"),
                 ("report", "incident", "INC-none")):
        result = healthswarm(workspace, *args)
        assert result.returncode == 2 and "no such incident" in result.stderr, result.stderr
        # the hint is this installation's script with this --workspace, not a bare `healthswarm` from elsewhere
        # (`healthswarm` alone where that name on PATH is this installation)
        hint = rf"`(?:{re.escape(str(SCRIPT))}|healthswarm) -w {re.escape(str(workspace))} incidents list`"
        assert re.search(hint, result.stderr), result.stderr


def test_leak_check_of_an_unreadable_file_names_it_once(workspace: Path, tmp_path: Path) -> None:
    binary = tmp_path / "bundle.bin"
    binary.write_bytes(b"\xff\xfe not text")
    for target, said in ((tmp_path / "absent.json", "cannot read: No such file or directory"),
                         (binary, "not UTF-8 text (byte 0)")):
        result = healthswarm(workspace, "share", "leak-check", str(target))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        # one line, the path said once (not again inside Python's own wording of the error)
        assert result.stderr.strip() == f"error: {target}: {said}" + (
            " (expected a bundle or a JSON/text file)" if target == binary else ""), result.stderr


def test_federate_refuses_an_unwritable_report_path_before_training(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out in (tmp_path, a_file / "report.json"):
        result = healthswarm(tmp_path / "ws", "node", "federate", "--data", str(tmp_path / "flows.csv"),
                             "--out", str(out))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {out}: cannot write"), lines


def test_agent_init_config_to_an_unwritable_path_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args in (("agent", "init-config", str(a_file / "agent.toml")),
                 ("agent", "init-config", "--force", str(tmp_path))):  # --force over a folder
        result = healthswarm(tmp_path / "ws", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {args[-1]}: cannot write"), lines
