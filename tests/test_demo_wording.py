"""What the demo's tables say, read as a person reads them: each figure under a heading that names what it counts,
in the words and precision the other faces use (`vulns list`, the dashboard), and nothing left out silently."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from healthswarm.demo import live
from healthswarm.demo.run import STEPS
from healthswarm.demo.steps import DemoRun, StepResult
from healthswarm.store import Store
from healthswarm.store.tables import alerts, findings

# steps 1–7 (the swarm and the flow model add nothing this module reads)
STEP_COUNT = 7


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[StepResult, str]], Store]:
    workspace = tmp_path_factory.mktemp("demo-wording")
    store = Store.open(f"sqlite:///{workspace / 'healthswarm.db'}")
    run = DemoRun(store=store, workspace=workspace)
    shown = {}
    for step in STEPS[:STEP_COUNT]:
        result = step.run(run)
        console = Console(record=True, width=400, file=io.StringIO())
        for renderable in result.show:
            console.print(renderable)
        shown[step.title] = (result, console.export_text())
    yield shown, store
    store.close()


def _text(steps: tuple[dict[str, tuple[StepResult, str]], Store], start: str) -> str:
    return next(text for title, (_, text) in steps[0].items() if title.startswith(start))


def test_exposure_counts_findings_under_a_findings_heading(steps) -> None:  # type: ignore[no-untyped-def]
    result, text = next(v for title, v in steps[0].items() if title.startswith("Match medical-device advisories"))
    assert "CVEs" not in text  # a finding is one CVE on one asset, not a CVE
    table = result.show[0]
    columns = {str(c.header): [int(str(cell)) for cell in c._cells] for c in table.columns[1:]}
    per_severity = [f"{s} findings" for s in ("critical", "high", "medium", "low")]
    assert set(per_severity) <= set(columns)
    with steps[1].read() as conn:
        stored = conn.execute(select(findings.c.severity)).scalars().all()
    # the severity columns add up to the stored findings of those severities, as `vulns list` counts them
    for heading in per_severity:
        assert sum(columns[heading]) == stored.count(heading.split()[0]), heading


def test_alerts_table_says_how_many_first_alerts_it_leaves_out(steps) -> None:  # type: ignore[no-untyped-def]
    text = _text(steps, "Detect:")
    with steps[1].read() as conn:
        rows = conn.execute(select(alerts.c.rule_id, alerts.c.document)).all()
    sets = {(r.rule_id, tuple(r.document.get("assets", []))) for r in rows}
    found = re.search(r"\((\d+) of (\d+) sets\), of (\d+) alerts", text)
    assert found, text[:400]
    assert (int(found.group(2)), int(found.group(3))) == (len(sets), len(rows))
    assert int(found.group(1)) == min(25, len(sets))


def test_mitigation_risk_is_named_and_rounded_like_the_paths(steps) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(_text(steps, "Attack paths").split())
    found = re.search(r"risk to rim-pacs-01 \(harm × probability it falls\) (\d+\.\d+) → (\d+\.\d+)", text)
    assert found, text[-600:]
    assert all(len(value.split(".")[1]) == 3 for value in found.groups())  # as the paths' p: 0.125


def test_the_peer_that_verified_is_named(steps) -> None:  # type: ignore[no-untyped-def]
    text = _text(steps, "Warn the neighbour")
    assert "verified by peer" not in text  # it read as if St. Aurelia had verified
    row = next(line for line in text.splitlines() if "verified by northfield" in line)
    assert "signature valid: st-aurelia's key" in row


def test_live_ready_line_counts_logs_in_words() -> None:
    assert live.ready_text(4242, 40001, 1).endswith("following 1 log")
    assert live.ready_text(None, 40001, 5).endswith("following 5 logs")
    assert "pid ?" in live.ready_text(None, 40001, 5)


def test_every_incident_the_peer_opens_is_narrated_once(tmp_path: Path) -> None:
    # where the retro-hunt's alerts make several incidents, the table after the stop counts them all, so the
    # narration names each once (the latency is measured to the first)
    said: list[live.Milestone] = []
    peer = live.AgentProcess(live.RECEIVER, tmp_path)  # not started: no status file, the alerts speak
    watcher = live.Watcher({}, {live.RECEIVER: peer}, said.append)
    retro = [{"rule_id": f"watchlist-retro:{kind}", "title": "Retro-hunt", "level": "medium", "incident_id": inc,
              "description": "first seen 2026-11-26T14:02"}
             for kind, inc in (("ipv4:198.51.100.77", "INC-1"), ("domain:cdn-update.example", "INC-2"))]
    incidents = [{"id": inc, "title": f"Retro-hunt {inc}", "severity": 2} for inc in ("INC-1", "INC-2")]
    for _ in range(2):  # a second look at the same store says nothing new
        watcher._peer(live.RECEIVER, live.Observed(3, retro, incidents))
    lines = [m.text for m in said if m.what == "peer-incident"]
    assert lines == ["its own incident INC-1 (medium): Retro-hunt INC-1",
                     "its own incident INC-2 (medium): Retro-hunt INC-2"]
    assert watcher.peer_incident is not None and watcher.peer_incident["id"] == "INC-1"
    assert [m.what for m in said].count("retro-hunt") == 2 and [m.what for m in said].count("received") == 1


def test_predicted_targets_say_how_they_are_ranked(steps) -> None:  # type: ignore[no-untyped-def]
    result, _ = next(v for title, v in steps[0].items() if title.startswith("Detect:"))
    # ranked by p × harm (risk.live), so a lower p may come first (sta-cardiac-prog-01 0.81 before a 0.90)
    assert [str(c.header) for c in result.show[1].columns][-1] == "predicted next (p; ranked by p × harm)"


def test_patient_records_say_they_are_the_largest_system(steps) -> None:  # type: ignore[no-untyped-def]
    result, _ = next(v for title, v in steps[0].items() if title.startswith("Load the reference ecosystem"))
    table = result.show[0]
    column = next(c for c in table.columns if str(c.header).startswith("patient records"))
    assert str(column.header) == "patient records (largest system)"
    # St. Aurelia: the HIS's 500,000, not the sum over HIS, EHR and RIS
    row = [str(c._cells[0]) for c in table.columns]
    assert row[0] == "St. Aurelia University Hospital" and row[-1] == "500,000"
