"""`healthswarm vulns import|match|list` end to end, on a workspace in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app

INVENTORY = """\
organisations:
  - {id: h1, name: Hospital One, kind: hospital, country: NL}
zones:
  - {id: h1-iomt, organisation: h1, name: IoMT, exposure: iomt}
  - {id: h1-office, organisation: h1, name: Office, exposure: internal}
assets:
  - {id: pump-1, organisation: h1, zone: h1-iomt, kind: infusion-pump, name: ICU pump 1, vendor: BD,
     product: Alaris 8015 PC unit, version: "9.19", addresses: [10.1.0.11]}
  - {id: vent-1, organisation: h1, zone: h1-iomt, kind: ventilator, name: ICU ventilator 1,
     vendor: Hamilton Medical AG, product: T1 Ventilator, version: "2.2.3", addresses: [10.1.0.21]}
  - {id: vent-2, organisation: h1, zone: h1-iomt, kind: ventilator, name: ICU ventilator 2,
     vendor: Hamilton Medical AG, product: T1 Ventilator, addresses: [10.1.0.22]}
  - {id: vent-3, organisation: h1, zone: h1-iomt, kind: ventilator, name: ICU ventilator 3,
     vendor: Hamilton Medical AG, product: T1 Ventilator, version: "2.2.4", addresses: [10.1.0.23]}
  - {id: pc-1, organisation: h1, zone: h1-office, kind: workstation, name: Office PC, vendor: Dell,
     product: OptiPlex 7090, version: "1.0", addresses: [10.2.0.5]}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, runner: CliRunner) -> Path:
    ws = tmp_path / "ws"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    result = runner.invoke(app, ["--workspace", str(ws), "inventory", "load", str(inventory)])
    assert result.exit_code == 0, result.output
    return ws


def test_import_match_list(workspace: Path, runner: CliRunner) -> None:
    ws = ["--workspace", str(workspace)]
    result = runner.invoke(app, [*ws, "vulns", "import", str(shared("csaf-icsma"))])
    assert result.exit_code == 0, result.output
    assert "imported 144 advisories (433 vulnerabilities, 607 product entries) from 144 files" in result.stdout

    result = runner.invoke(app, [*ws, "vulns", "match", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    by_asset: dict[str, set[str]] = {}
    for row in rows:
        by_asset.setdefault(row["asset_id"], set()).add(row["status"])
    assert by_asset == {"pump-1": {"affected"}, "vent-1": {"affected"}, "vent-2": {"possibly-affected"}}
    pump = next(r for r in rows if r["asset_id"] == "pump-1" and r["cve"] == "CVE-2016-9355")
    assert pump["advisory_id"] == "ICSMA-17-017-02" and pump["cvss_score"] == 6.8
    assert pump["cvss_vector"].startswith("CVSS:3.0/") and pump["cwe"] == ["CWE-284"]
    assert pump["remediation"]
    assert pump["explanation"]["version_rule"] == "<= 9.33"
    assert pump["explanation"]["decision"] == "9.19 satisfies <= 9.33"

    result = runner.invoke(app, [*ws, "vulns", "match"])
    assert result.exit_code == 0, result.output
    assert "findings by severity" in result.stdout and "total" in result.stdout

    result = runner.invoke(app, [*ws, "vulns", "list", "--format", "ndjson", "--status", "possibly-affected"])
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert listed and {r["asset_id"] for r in listed} == {"vent-2"}
    assert all(r["explanation"]["asset_version"] == "(unknown)" for r in listed)

    result = runner.invoke(app, [*ws, "vulns", "list", "--format", "json", "--asset", "vent-1", "--severity", "low"])
    assert result.exit_code == 0, result.output
    low = json.loads(result.stdout)
    assert low and all(r["asset_id"] == "vent-1" and r["severity"] == "low" for r in low)


def test_import_with_bad_files_exits_2_but_keeps_the_good(workspace: Path, runner: CliRunner,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "advisories"
    folder.mkdir()
    (folder / "good.json").write_bytes(shared("csaf-icsma", "icsma-21-047-01.json").read_bytes())
    (folder / "broken.json").write_text('{\n  "document": {\n    "csaf_version": "2.0",,\n', encoding="utf-8")
    (folder / "notes.txt").write_text("not an advisory\n", encoding="utf-8")
    result = runner.invoke(app, ["--workspace", str(workspace), "vulns", "import", str(folder)])
    assert result.exit_code == 2
    assert "imported 1 advisory (" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert f"error: {folder / 'broken.json'}:3: not valid JSON" in errors[0]
    assert "(expected a CSAF 2.0 advisory or a CVE JSON 5 record)" in errors[0]
    assert errors[1].startswith(f"error: {folder / 'notes.txt'}: not a JSON file")
    assert "2 problems in 2 files: what they describe was not imported; the 1 good advisory was imported." \
        in " ".join(result.stderr.split())
    result = runner.invoke(app, ["--workspace", str(workspace), "vulns", "match", "--format", "json"])
    assert result.exit_code == 0
    assert {r["advisory_id"] for r in json.loads(result.stdout)} == {"ICSMA-21-047-01"}


def test_import_of_a_missing_path_is_its_error_alone(workspace: Path, runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = runner.invoke(app, ["--workspace", str(workspace), "vulns", "import", str(missing)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {missing}: no such file or folder (expected a file or folder of advisories)"]


def test_match_needs_inventory_and_advisories(tmp_path: Path, runner: CliRunner) -> None:
    ws = ["--workspace", str(tmp_path / "empty")]
    result = runner.invoke(app, [*ws, "vulns", "match"])
    assert result.exit_code == 2
    assert "no inventory in the store" in result.stderr
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    assert runner.invoke(app, [*ws, "inventory", "load", str(inventory)]).exit_code == 0
    result = runner.invoke(app, [*ws, "vulns", "match"])
    assert result.exit_code == 2
    assert "no advisories in the store" in result.stderr


def test_list_before_match_is_empty(workspace: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["--workspace", str(workspace), "vulns", "list", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
