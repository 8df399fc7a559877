"""`healthswarm detect`: every detector over the stored events, idempotent, bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthswarm.cli.main import app
from healthswarm.demo import ECOSYSTEM, LOGS, RULES, STAFF

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("detect")
    assert runner.invoke(app, ["-w", str(ws), "inventory", "load", str(ECOSYSTEM)]).exit_code == 0
    assert runner.invoke(app, ["-w", str(ws), "ingest", str(LOGS)]).exit_code == 0
    return ws


def detect(ws: Path, *args: str) -> dict:
    result = runner.invoke(app, ["-w", str(ws), "detect", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]


def test_every_detector_raises_and_a_rerun_stores_nothing_twice(workspace: Path) -> None:
    first = detect(workspace, "-r", str(RULES), "--staff", str(STAFF), "--warmup-events", "8", "--warmup-hours", "0.75")
    assert set(first["by_detector"]) >= {"sigma", "suricata", "asset-baseline", "hl7-analytics", "dicom-analytics",
                                         "fhir-analytics", "privacy"}
    assert first["new_alerts"] == first["alerts"] > 0 and first["incidents"]
    again = detect(workspace, "-r", str(RULES), "--staff", str(STAFF), "--warmup-events", "8", "--warmup-hours", "0.75")
    assert again["alerts"] == first["alerts"] and again["new_alerts"] == 0


def test_switches_and_time_filter(workspace: Path) -> None:
    late = detect(workspace, "--no-baseline", "--no-clinical", "--since", "2026-11-27T22:00:00")
    assert "asset-baseline" not in late["by_detector"] and "hl7-analytics" not in late["by_detector"]
    assert 0 < late["events"] < 200  # the night shift's reads only


def test_bad_staff_directory_is_one_line_naming_the_file(workspace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "staff.yaml"
    bad.write_text("staff:\n  - login: x\n    role: [not, a, role]\n")
    result = runner.invoke(app, ["-w", str(workspace), "detect", "--staff", str(bad)])
    assert result.exit_code == 2 and str(bad) in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["-w", str(workspace), "detect", "-r", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
