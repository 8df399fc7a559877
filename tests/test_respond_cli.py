"""`healthswarm case …` and `healthswarm playbook …` through the command line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from healthswarm.cli.main import app
from healthswarm.cli.output import program
from healthswarm.respond.playbooks import LIBRARY

runner = CliRunner()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "healthswarm", *args], capture_output=True, text=True, timeout=120)


def invoke(ws: Path, *args: str) -> str:
    result = runner.invoke(app, ["-w", str(ws), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_case_life_cycle_and_verify(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    invoke(ws, "case", "open", "--title", "Pump alarm storm", "--severity", "3", "--aware-at", "2026-03-02T09:00Z",
           "--owner", "alice", "--actor", "bob")
    (row,) = json.loads(invoke(ws, "case", "list", "--format", "json"))
    case_id = row["id"]
    assert row["version"] == 2 and row["owners"] == ["alice"]
    invoke(ws, "case", "note", case_id, "biomed on the ward", "--actor", "bob")
    invoke(ws, "case", "task", "add", case_id, "swap pump 3", "--owner", "carol")
    invoke(ws, "case", "task", "done", case_id, "T1")
    invoke(ws, "case", "observable", case_id, "ipv4", "198.51.100.9")
    evidence = tmp_path / "capture.pcap"
    evidence.write_bytes(b"\xd4\xc3\xb2\xa1")
    invoke(ws, "case", "evidence", case_id, "--file", str(evidence))
    invoke(ws, "case", "move", case_id, "containment")
    shown = json.loads(invoke(ws, "case", "show", case_id, "--format", "json"))[0]
    assert shown["phase"] == "containment" and shown["tasks"][0]["status"] == "done" and shown["version"] == 8
    assert len(shown["evidence"][0]["sha256"]) == 64
    assert "intact: 8 audit entries" in invoke(ws, "case", "verify", case_id)

    stale = cli("-w", str(ws), "case", "note", case_id, "late", "--expect-version", "3")
    assert stale.returncode == 2 and "changed concurrently" in stale.stderr and "Traceback" not in stale.stderr
    # the hint reaches the workspace the user named (Rich may wrap the long line: compared without whitespace)
    missing = cli("-w", str(ws), "case", "show", "CASE-none")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"error: no case 'CASE-none' (see `{program()} -w {ws} case list`)".replace(" ", "") \
        in "".join(missing.stderr.split())
    wrong = cli("-w", str(ws), "case", "move", case_id, "post-incident")
    assert wrong.returncode == 2 and "cannot move from containment to post-incident" in wrong.stderr

    with sqlite3.connect(ws / "healthswarm.db") as db:
        db.execute("UPDATE respond_audit SET data = '{\"note\": \"nothing happened\"}' WHERE seq = 3")
    broken = cli("-w", str(ws), "case", "verify", case_id)
    assert broken.returncode == 1 and f"case {case_id}: audit entry 3:" in broken.stderr


def test_deadlines_and_drafts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    invoke(ws, "case", "open", "--title", "EHR breach", "--aware-at", "2026-03-02T09:00Z")
    case_id = json.loads(invoke(ws, "case", "list", "--format", "json"))[0]["id"]
    rows = json.loads(invoke(ws, "case", "deadlines", case_id, "--regime", "nis2", "--at", "2026-03-03T10:00Z",
                             "--format", "json"))
    assert [r["status"] for r in rows] == ["overdue", "ok", "ok"] and rows[0]["left"] == "1 h overdue"
    invoke(ws, "case", "notified", case_id, "nis2-early-warning", "--at", "2026-03-02T20:00Z")
    rows = json.loads(invoke(ws, "case", "deadlines", case_id, "--regime", "nis2", "--at", "2026-03-03T10:00Z",
                             "--format", "json"))
    assert rows[0]["status"] == "met"
    out = tmp_path / "draft.html"
    invoke(ws, "case", "notify-draft", case_id, "--regime", "gdpr", "--format", "html", "-o", str(out))
    assert "<h1>Personal data breach notification (GDPR Art. 33)</h1>" in out.read_text()
    skew = cli("-w", str(ws), "case", "open", "--title", "x", "--aware-at", "2099-01-01T00:00Z")
    assert skew.returncode == 2 and "clock skew" in skew.stderr


def test_playbook_commands(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    listed = json.loads(invoke(ws, "playbook", "list", "--format", "json"))
    assert "phishing-credential-theft" in {r["name"] for r in listed}
    assert runner.invoke(app, ["playbook", "validate", *map(str, sorted(LIBRARY.glob("*.json")))]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "playbook", "spec_version": "cacao-2.0"}))
    result = cli("playbook", "validate", str(bad))
    assert result.returncode == 1 and f"{bad}: workflow_start: missing required property" in result.stderr
    invoke(ws, "case", "open", "--title", "phish")
    case_id = json.loads(invoke(ws, "case", "list", "--format", "json"))[0]["id"]
    run = json.loads(invoke(ws, "playbook", "run", "phishing-credential-theft", "--case", case_id, "--format", "json"))
    assert run[0]["dry_run"] and run[0]["steps"][-1]["type"] == "end"
    missing = cli("-w", str(ws), "playbook", "run", "no-such-book", "--case", case_id)
    assert missing.returncode == 2 and "no playbook 'no-such-book'" in missing.stderr
