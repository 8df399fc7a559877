"""The command line as a user meets it (issue 18, terminal): output through a real pipe, empty results that
say what is missing, hints that work as printed, rule folders among hunt's inputs, `--fail-on`, plain words."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from healthswarm.cli import output
from healthswarm.cli.main import app
from healthswarm.demo import ECOSYSTEM, LOGS, RULES
from healthswarm.detect.sigma.packs import pack_paths

runner = CliRunner()
SCRIPT = Path(sys.executable).with_name("healthswarm")
PACK = pack_paths(["healthswarm"])[0]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return env | extra


def piped(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The console script with stdout and stderr through pipes, as `healthswarm … | less` runs it."""
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,  # stdout and stderr are pipes
                          env=env or _env(), cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inventory, advisories, the scenario's logs and the demo's Sigma rules' incidents (no baselines)."""
    ws = tmp_path_factory.mktemp("surface")
    for args in (["inventory", "load", str(ECOSYSTEM)], ["ingest", str(LOGS)],
                 ["detect", "--pack", "none", "-r", str(RULES), "--no-baseline", "--no-clinical"]):
        result = runner.invoke(app, ["-w", str(ws), *args])
        assert result.exit_code == 0, result.output
    return ws


# --- piped output is as wide as its content -------------------------------------------------------------------

def test_piped_table_keeps_every_id_whole(workspace: Path) -> None:
    listed = json.loads(piped("-w", str(workspace), "incidents", "list", "--format", "json").stdout)
    assert listed
    table = piped("-w", str(workspace), "incidents", "list")
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    lines = table.stdout.splitlines()
    for incident in listed:
        row = next(line for line in lines if incident["id"] in line)  # the whole id, on one line
        assert incident["title"] in row  # and the row is not wrapped either


def test_a_cell_is_folded_never_cut_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = Console(width=40, force_terminal=True, color_system=None, record=True)
    monkeypatch.setattr(output, "console", narrow)
    long_id = "INC-c4d0a9e18b7f4c2d9e0a1b2c3d4e5f60"
    output.emit([{"id": long_id, "title": "Phishing, then lateral movement to the PACS"}], output.OutputFormat.table,
                ["id", "title"])
    text = narrow.export_text()
    assert "…" not in text
    first_column = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert "".join(first_column) == long_id


def test_table_cells_are_data_not_markup() -> None:
    console = Console(width=200, record=True, color_system=None)
    original = output.console
    try:
        output.console = console
        output.emit([{"title": "Pump [ICU] bed 2", "value": "[bold]x[/bold]"}], output.OutputFormat.table,
                    ["title", "value"])
    finally:
        output.console = original
    text = console.export_text()
    assert "Pump [ICU] bed 2" in text and "[bold]x[/bold]" in text


def test_headings_are_words_not_snake_case(workspace: Path) -> None:
    result = piped("-w", str(workspace), "vulns", "list", "--limit", "3")
    assert result.returncode == 0
    assert "no findings stored" in result.stdout  # no advisories imported in this workspace
    rows = [{"asset_id": "sta-pump-01", "cvss_score": 9.8}]
    console = Console(width=200, record=True, color_system=None)
    original = output.console
    try:
        output.console = console
        output.emit(rows, output.OutputFormat.table, ["asset_id", "cvss_score"])
    finally:
        output.console = original
    text = console.export_text()
    assert "asset id" in text and "cvss score" in text and "asset_id" not in text


@pytest.mark.slow
def test_the_demo_through_a_pipe_keeps_rows_whole_and_its_hints_work(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = piped("-w", str(ws), "demo", env=_env(PATH="/usr/bin:/bin"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    assert re.search(r"│ St\. Aurelia University Hospital +│ hospital", out)  # one row, one line
    assert max(len(line) for line in out.splitlines() if line.startswith("─")) <= 120  # rules stay narrow
    hints = [line.strip(" │") for line in out.splitlines() if str(SCRIPT) in line]
    assert hints and all(h.startswith(shlex.quote(str(SCRIPT))) for h in hints)
    assert any("source " in line and "activate" in line for line in out.splitlines())
    # the hints run as printed, from the same folder and without the virtual environment on PATH
    shown = subprocess.run(hints[0].split("  ")[0], shell=True, capture_output=True, text=True, cwd=tmp_path,
                           env=_env(PATH="/usr/bin:/bin"), timeout=120)
    assert shown.returncode == 0, shown.stderr


# --- hints that work as printed ----------------------------------------------------------------------------------

def test_hints_name_this_installation_when_it_is_not_on_path(tmp_path: Path) -> None:
    ws = tmp_path / "fresh"
    result = piped("-w", str(ws), "incidents", "list", env=_env(PATH="/usr/bin:/bin"))
    assert result.returncode == 0
    assert result.stdout.startswith("no incidents stored:")
    printed = re.findall(r"`([^`]+)`", result.stdout)
    assert printed and all(p.startswith(f"{SCRIPT} -w {ws} ") for p in printed)
    rerun = subprocess.run(printed[-1].replace(" demo", " incidents list"), shell=True, capture_output=True,
                           text=True, env=_env(PATH="/usr/bin:/bin"), timeout=120)
    assert rerun.returncode == 0 and rerun.stdout.startswith("no incidents stored")
    on_path = piped("incidents", "list", env=_env(PATH=f"{SCRIPT.parent}:/usr/bin:/bin"), cwd=tmp_path)
    assert "`healthswarm detect`" in on_path.stdout


# --- every empty result says what is missing ------------------------------------------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (["incidents", "list"], ["no incidents stored", "detect"]),
    (["incidents", "list", "--min-severity", "3"], ["no incident matches --min-severity 3", "incidents list"]),
    (["vulns", "list"], ["no findings stored", "vulns import", "vulns match"]),
    (["vulns", "list", "--severity", "critical"], ["no stored finding matches"]),
    (["share", "indicators"], ["no indicators stored", "share import", "share pull"]),
    (["share", "peers"], ["no trusted peers", "share keys trust"]),
    (["inventory", "show"], ["no inventory stored", "inventory load"]),
    (["case", "list"], ["no case stored", "case open --incident"]),
    (["quarantine", "list"], ["nothing quarantined"]),
    (["model", "list"], ["no models in", "model train"]),
    (["token", "list"], ["no API tokens", "token create"]),
])
def test_empty_results_say_what_is_missing(tmp_path: Path, args: list[str], says: list[str]) -> None:
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), *args])
    assert result.exit_code == 0, result.output
    for words in says:
        assert words in result.stdout
    assert "┏" not in result.stdout  # no empty table


def test_status_on_a_fresh_workspace_says_what_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "status"])
    assert result.exit_code == 0, result.output
    for words in ("no inventory:", "inventory load", "no findings:", "vulns match", "no alerts:", "detect", "demo"):
        assert words in result.stdout


def test_risk_paths_says_no_inventory_then_no_findings(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    fresh = piped("-w", ws, "risk", "paths", "--from", "external", "--to", "rim-pacs-01")
    assert fresh.returncode == 2 and "no inventory stored" in fresh.stderr and "inventory load" in fresh.stderr
    assert runner.invoke(app, ["-w", ws, "inventory", "load", str(ECOSYSTEM)]).exit_code == 0
    bare = runner.invoke(app, ["-w", ws, "risk", "paths", "--from", "external", "--to", "rim-pacs-01"])
    assert bare.exit_code == 0
    assert "no vulnerability findings stored" in bare.stderr and "vulns import" in bare.stderr
    assert "no path found from external to rim-pacs-01" in bare.stdout
    assert "no vulnerability findings are stored, so no exploit" in bare.stdout


# --- hunt: rule folders among the inputs, --fail-on --------------------------------------------------------------

def _loaded(stdout: str) -> int:
    return int(re.search(r"(\d+) rules loaded", stdout).group(1))


def test_hunt_reads_rule_folders_after_one_rules_as_rules(tmp_path: Path) -> None:
    folders = [str(p) for p in sorted(PACK.iterdir()) if p.is_dir()][:3]
    events = str(LOGS / "windows-sysmon.json")
    ws = ["-w", str(tmp_path / "ws")]
    meant = runner.invoke(app, [*ws, "hunt", *(a for f in folders for a in ("--rules", f)), events])
    assert meant.exit_code == 0, meant.output
    typed = runner.invoke(app, [*ws, "hunt", "--rules", *folders, events])
    assert typed.exit_code == 0, typed.output
    assert "format not recognised" not in typed.stderr
    assert f"note: {folders[1]}, {folders[2]} hold Sigma rules: read as --rules" in typed.stderr
    assert _loaded(typed.stdout) == _loaded(meant.stdout) > 0
    nothing_left = runner.invoke(app, [*ws, "hunt", "--rules", *folders])
    assert nothing_left.exit_code == 2
    assert len(nothing_left.stderr.strip().splitlines()) == 1 and "not events" in nothing_left.stderr


def test_hunt_lists_ten_unrecognised_files_then_counts(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    for n in range(25):
        (junk / f"notes-{n}.txt").write_text("nothing a parser knows\n")
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "hunt", "--rules", str(RULES), str(junk),
                                 str(LOGS / "windows-sysmon.json")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("format not recognised (skipped)") == 10
    assert "… and 15 more files whose format was not recognised" in result.stderr


@pytest.mark.parametrize(("level", "code"), [(None, 0), ("high", 1), ("medium", 1), ("critical", 0)])
def test_hunt_fail_on(tmp_path: Path, level: str | None, code: int) -> None:
    args = ["-w", str(tmp_path / "ws"), "hunt", "--rules", str(RULES), str(LOGS / "windows-sysmon.json")]
    result = runner.invoke(app, [*args, *(["--fail-on", level] if level else [])])
    assert result.exit_code == code, result.output
    assert ("--fail-on" in result.stderr) == (code == 1)


def test_fail_on_an_unknown_level_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "hunt", "--rules", str(RULES), str(LOGS),
                                 "--fail-on", "severe"])
    assert result.exit_code == 2 and "--fail-on: 'severe' is not a level" in result.stderr


def test_detect_fail_on(workspace: Path) -> None:
    args = ["-w", str(workspace), "detect", "--pack", "none", "-r", str(RULES), "--no-baseline", "--no-clinical"]
    assert runner.invoke(app, args).exit_code == 0
    high = runner.invoke(app, [*args, "--fail-on", "high"])
    assert high.exit_code == 1 and "at high or above (--fail-on high)" in high.stderr
    assert "Alerts by detector" in high.stdout  # the summary is printed first
    assert runner.invoke(app, [*args, "--format", "json", "--fail-on", "critical"]).exit_code == 0


# --- messages in plain words -------------------------------------------------------------------------------------

def test_a_bad_choice_is_one_plain_line(tmp_path: Path) -> None:
    result = piped("-w", str(tmp_path / "ws"), "incidents", "list", "--format", "xml")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Value error" not in result.stderr and "╭" not in result.stderr
    assert "'xml' is not one of 'table', 'json', 'ndjson'" in result.stderr
    assert "healthswarm incidents list --help" in result.stderr


def test_unknown_reference_reads_a_zone(tmp_path: Path) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text(ECOSYSTEM.read_text(encoding="utf-8").replace("zone: st-aurelia-dmz", "zone: st-aurelia-nowhere", 1),
                   encoding="utf-8")
    result = runner.invoke(app, ["inventory", "validate", str(bad)])
    assert result.exit_code != 0
    assert "the id of a zone defined" in result.stderr and "an zone" not in result.stderr


def test_share_export_says_what_was_sanitised_in_words() -> None:
    from healthswarm.cli.share import _removed

    text = _removed({"user": 275, "asset": 1})
    assert "{" not in text and "'" not in text
    assert re.fullmatch(r"[a-z ,×0-9-]+", text), text


# --- shell completion (README, "The command line") ---------------------------------------------------------------

def test_shell_completion_completes_commands_and_choices() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = _env(_HEALTHSWARM_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("healthswarm inc", 1) == ["incidents"]
    assert complete("healthswarm incidents list --format ", 4) == ["table", "json", "ndjson"]
    root_help = runner.invoke(app, ["--help"]).output
    assert "--install-completion" in root_help and "--show-completion" in root_help
