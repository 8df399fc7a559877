"""The terminal views and the report over the demo workspace: `incidents list|show`, `status`, `report incident`,
`token create|list|revoke`."""

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
    return target


def run(workspace: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-w", str(workspace), *args], env={"COLUMNS": "160"})
    return result.exit_code, result.output


def test_incidents_list_show_and_status(workspace: Path) -> None:
    code, out = run(workspace, "incidents", "list", "--format", "json")
    assert code == 0, out
    listed = orjson.loads(out)
    assert listed and all(i["id"].startswith("INC-") for i in listed)
    code, out = run(workspace, "incidents", "show", listed[0]["id"], "--format", "json")
    assert code == 0 and orjson.loads(out)["timeline"]
    code, out = run(workspace, "incidents", "show", listed[0]["id"])
    assert code == 0 and "Timeline" in out and listed[0]["id"] in out
    code, out = run(workspace, "incidents", "state", listed[0]["id"], "contained", "--note", "isolated")
    assert code == 0 and "new → contained" in out
    code, out = run(workspace, "incidents", "show", listed[0]["id"], "--format", "json")
    history = orjson.loads(out)["history"]
    assert history[0]["actor"] == "cli" and history[0]["note"] == "isolated"
    code, out = run(workspace, "incidents", "state", listed[0]["id"], "melted")
    assert code == 2
    code, out = run(workspace, "incidents", "show", "INC-none")
    assert code == 2 and "no such incident" in out
    code, out = run(workspace, "status")
    assert code == 0 and "Open incidents by stage" in out and "Most exposed assets" in out
    code, out = run(workspace, "status", "--format", "json")
    assert orjson.loads(out)["open_incidents"] == len(listed)


def test_report_incident_html(workspace: Path, tmp_path: Path) -> None:
    _, out = run(workspace, "incidents", "list", "--format", "json")
    incident = orjson.loads(out)[0]
    target = tmp_path / "report.html"
    code, out = run(workspace, "report", "incident", incident["id"], "--format", "html", "-o", str(target))
    assert code == 0, out
    html = target.read_text()
    assert incident["id"] in html and "data:image/png;base64," in html
    for section in ("Timeline", "Affected assets", "ATT&amp;CK mapping", "Evidence"):
        assert section in html
    assert "<script" not in html


def test_token_create_list_revoke(workspace: Path) -> None:
    code, out = run(workspace, "token", "create", "--role", "analyst", "--name", "ward-7")
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("hs_")
    code, out = run(workspace, "token", "list", "--format", "json")
    listed = orjson.loads(out)
    mine = next(t for t in listed if t["name"] == "ward-7")
    assert mine["role"] == "analyst" and token not in out
    code, out = run(workspace, "token", "revoke", str(mine["id"]))
    assert code == 0
    code, out = run(workspace, "token", "create", "--role", "root", "--name", "x")
    assert code == 2
