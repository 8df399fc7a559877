"""`healthswarm hunt`: real rules over real EVTX samples, every output format, exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from sigma_support import evtx_parser_available

RULE = textwrap.dedent("""
    title: Certutil Execution
    id: 22222222-2222-2222-2222-222222222222
    logsource: {product: windows, category: process_creation}
    detection:
        sel:
            Image|endswith: '\\certutil.exe'
        condition: sel
    level: medium
    tags: [attack.command-and-control, attack.t1105]
    """)


@pytest.fixture
def sample() -> Path:
    if not evtx_parser_available():
        pytest.skip("the EVTX parser (healthswarm.ingest.formats.evtx) is not there yet")
    base = shared("sigma", "regression_data", "rules", "windows", "process_creation")
    folders = sorted(p.parent for p in base.rglob("*.evtx"))
    assert folders
    return base / "**" / "*.evtx"


def hunt(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(app, ["--workspace", str(tmp_path / "ws"), "hunt", *args])
    return result.exit_code, result.stdout, result.stderr


def test_hunt_ndjson_names_rule_attack_and_event_source(tmp_path: Path, sample: Path) -> None:
    rules = shared("sigma", "rules", "windows", "process_creation")
    code, out, err = hunt(tmp_path, "--rules", str(rules), "--format", "ndjson", str(sample))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) >= 50
    for row in rows:
        assert row["rule_id"] and row["title"] and row["level"] in ("informational", "low", "medium", "high",
                                                                     "critical")
        assert row["source"].endswith(".evtx") and row["record"] >= 1
        assert isinstance(row["techniques"], list) and isinstance(row["tactics"], list)
    assert any(row["techniques"] and row["technique_names"][0] for row in rows), "ATT&CK names resolved"


def test_hunt_json_and_cache(tmp_path: Path, sample: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "whoami.yml").write_text(RULE, encoding="utf-8")
    code, out, err = hunt(tmp_path, "--rules", str(rules_dir), "--format", "json", str(sample))
    assert code == 0, err
    first = json.loads(out)
    assert first, "the regression samples contain certutil executions"
    assert {r["rule_id"] for r in first} == {"22222222-2222-2222-2222-222222222222"}
    assert first[0]["techniques"] == ["T1105"] and first[0]["tactics"] == ["TA0011"]
    assert list((tmp_path / "ws" / "cache" / "sigma").glob("*.pickle")), "compiled rules cached in the workspace"
    code, again, _ = hunt(tmp_path, "--rules", str(rules_dir), "--format", "json", str(sample))
    assert code == 0 and json.loads(again) == first


def test_hunt_table_has_rule_summary_and_tactics(tmp_path: Path, sample: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "whoami.yml").write_text(RULE, encoding="utf-8")
    code, out, err = hunt(tmp_path, "--rules", str(rules_dir), str(sample))
    assert code == 0, err
    assert "Detections per rule" in out and "ATT&CK tactics" in out
    assert "Certutil Execution" in out and "TA0011" in out


@pytest.mark.parametrize("what", ["rules", "events"])
def test_hunt_bad_paths_exit_2(tmp_path: Path, what: str) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "whoami.yml").write_text(RULE, encoding="utf-8")
    events = tmp_path / "events.log"
    events.write_text("", encoding="utf-8")
    rules_arg = str(tmp_path / "missing") if what == "rules" else str(rules_dir)
    events_arg = str(tmp_path / "missing.evtx") if what == "events" else str(events)
    code, _, err = hunt(tmp_path, "--rules", rules_arg, events_arg)
    assert code == 2
    assert "missing" in err


def test_hunt_bad_level_exit_2(tmp_path: Path) -> None:
    code, _, err = hunt(tmp_path, "--rules", str(tmp_path), "--min-level", "urgent", str(tmp_path))
    assert code == 2 and "urgent" in err
