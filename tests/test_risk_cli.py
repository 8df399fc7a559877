"""`healthswarm risk …` on the demo ecosystem, through the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthswarm.cli.main import app

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo"
runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("risk") / "ws"
    for args in (["inventory", "load", str(DEMO / "ecosystem.yaml")], ["vulns", "import", str(DEMO / "advisories")],
                 ["vulns", "match"]):
        result = runner.invoke(app, ["-w", str(ws), *args])
        assert result.exit_code == 0, result.output
    return ws


def run_json(ws: Path, *args: str) -> dict:
    result = runner.invoke(app, ["-w", str(ws), "risk", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_paths_from_phishing_foothold_to_the_shared_pacs(workspace: Path) -> None:
    doc = run_json(workspace, "paths", "--from", "phishing@st-aurelia", "--to", "rim-pacs-01", "-k", "3")
    assert doc["method"].startswith("exact") and "exact:" in doc["reason"]
    assert len(doc["paths"]) == 3
    first = doc["paths"][0]
    assert first["target"] == "rim-pacs-01" and 0 < first["p"] <= 1
    assert first["states"][0].startswith("sta-ws-") and first["states"][-1] == "rim-pacs-01[admin]"
    assert any(m["kind"] == "exploit" and m["evidence"]["asset"] == "rim-pacs-01" for m in first["moves"])
    probs = [p["p"] for p in doc["paths"]]
    assert probs == sorted(probs, reverse=True)


def test_paths_aco_and_campaign_say_which_method(workspace: Path) -> None:
    doc = run_json(workspace, "paths", "--from", "phishing@st-aurelia", "--to", "rim-pacs-01", "--diverse")
    assert doc["method"].startswith("ACO") and "diverse" in doc["reason"]
    doc = run_json(workspace, "paths", "--from", "phishing@st-aurelia", "--to", "rim-pacs-01,sta-ehr-01",
                   "--campaign", "--budget", "5", "--max-steps", "4")
    assert doc["method"].startswith(("exact", "ACO")) and doc["cost"] <= 5 and doc["value"] > 0


def test_unreachable_target_exits_zero_and_says_so(workspace: Path) -> None:
    doc = run_json(workspace, "paths", "--from", "external", "--to", "rim-pacs-01")
    assert doc["paths"] == [] and doc["unreachable"] == ["rim-pacs-01"]


def test_whatif_assess_and_mitigate(workspace: Path) -> None:
    doc = run_json(workspace, "whatif", "--compromise", "rim-pacs-01")
    assert "sta-ris-01" in {r["asset"] for r in doc["organisations"]["st-aurelia"]["service"]}
    doc = run_json(workspace, "assess", "--profile", "phishing")
    assert doc["exposures"] and all(e["profile"] == "phishing" for e in doc["exposures"])
    doc = run_json(workspace, "mitigate", "--budget", "10", "--from", "phishing", "--to", "rim-pacs-01,sta-ehr-01",
                   "--compare")
    assert doc["method"] == "milp" and doc["optimal"] and doc["cost"] <= 10
    assert doc["residual_risk"] < doc["baseline_risk"] and doc["gap"]["aco"]["relative_gap"] is not None
    table = runner.invoke(app, ["-w", str(workspace), "risk", "paths", "--from", "phishing@st-aurelia",
                                "--to", "rim-pacs-01", "-k", "1"])
    assert table.exit_code == 0 and "method: exact" in table.stdout and "rim-pacs-01" in table.stdout


def test_assess_and_paths_say_which_moves_they_count(workspace: Path) -> None:
    # the same demo graph: assess counts its moves, paths the attacker's view, i.e. those plus its entry moves
    assess = runner.invoke(app, ["-w", str(workspace), "risk", "assess", "--profile", "phishing"])
    graph = re.search(r"(\d+) moves in the graph, before any attacker's entry moves", " ".join(assess.stdout.split()))
    doc = run_json(workspace, "paths", "--from", "phishing@st-aurelia", "--to", "rim-pacs-01", "-k", "2")
    view = re.search(r"exact: (\d+) moves in the attacker's view \((\d+) entry moves? included\) × k = 2",
                     doc["reason"])
    assert graph and view and int(view[1]) - int(view[2]) == int(graph[1])
    mitigate = runner.invoke(app, ["-w", str(workspace), "risk", "mitigate", "--budget", "10", "--from", "phishing",
                                   "--to", "rim-pacs-01"])
    assert mitigate.exit_code == 0 and "path(s)" not in mitigate.stdout
    assert re.search(r"over (1 path|[02-9]\d* paths|1\d+ paths),", mitigate.stdout)


def test_assess_of_one_organisation_records_it_in_the_singular(tmp_path: Path) -> None:
    inventory = tmp_path / "one.yaml"
    inventory.write_text("organisations:\n  - {id: h1, name: Hospital One, kind: hospital}\n"
                         "zones:\n  - {id: h1-office, organisation: h1, name: Office, exposure: internal}\n"
                         "assets:\n  - {id: pc-1, organisation: h1, zone: h1-office, kind: workstation, name: PC}\n")
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["-w", str(ws), "inventory", "load", str(inventory)]).exit_code == 0
    result = runner.invoke(app, ["-w", str(ws), "risk", "assess"])
    assert result.exit_code == 0, result.output
    assert "recorded in the risk history: 1 organisation\n" in result.output


def test_bad_input_is_one_line_and_exit_2(workspace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "findings.json"
    bad.write_text('[{"cve": "CVE-1"}]')
    for args in (["paths", "--from", "nobody", "--to", "rim-pacs-01"],
                 ["paths", "--from", "phishing", "--to", "toaster"],
                 ["whatif", "--compromise", "ghost"],
                 ["assess", "--findings", str(bad)]):
        result = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(workspace), "risk", *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
