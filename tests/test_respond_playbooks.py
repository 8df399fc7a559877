from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthswarm.errors import InputError
from healthswarm.respond.case_store import list_cases, load_audit, load_case, open_from_incident
from healthswarm.respond.playbooks import LIBRARY, Library, load_playbook, run_playbook, validate_document
from healthswarm.respond.playbooks.validate import parse_playbook
from healthswarm.respond.service import run_on_case
from healthswarm.respond.watchlist import load_watchlist
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from respond_helpers import case_of, context, prepare

SHIPPED = sorted(LIBRARY.glob("*.json"))
U = "-0000-4000-8000-{:012d}"


def sid(kind: str, n: int) -> str:
    return f"{kind}--00000000" + U.format(n)


def playbook(workflow: dict[str, dict[str, Any]], start: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "playbook", "spec_version": "cacao-2.0", "id": "playbook--00000000" + U.format(1),
            "name": "test", "created_by": "identity--00000000" + U.format(2), "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z", "workflow_start": start or sid("start", 1), "workflow": workflow,
            **extra}


def manual(text: str, nxt: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "action", "commands": [{"type": "manual", "command": text}]}
    if nxt:
        step["on_completion"] = nxt
    return step


def linear() -> dict[str, Any]:
    return playbook({sid("start", 1): {"type": "start", "on_completion": sid("action", 2)},
                     sid("action", 2): manual("look", sid("end", 3)), sid("end", 3): {"type": "end"}})


# ---- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_playbooks_validate(path: Path) -> None:
    doc = json.loads(path.read_text())
    ids = {json.loads(p.read_text())["id"] for p in SHIPPED}
    assert validate_document(doc, str(path), ids) == []


def test_library_covers_the_healthcare_scenarios() -> None:
    stems = set(Library.load().stems)
    assert {"ransomware-imaging", "medical-device-compromise", "ehr-insider-snooping", "phishing-credential-theft",
            "exfiltration-dicom-fhir", "vendor-remote-access"} <= stems
    kinds = {step["type"] for p in Library.load().playbooks.values() for step in p.workflow.values()}
    assert kinds == {"start", "end", "action", "parallel", "if-condition", "playbook-action"}


def _messages(doc: Any) -> list[str]:
    return [str(p) for p in validate_document(doc, "pb.json")]


def test_cycle_is_reported_with_its_path() -> None:
    doc = linear()
    doc["workflow"][sid("action", 2)]["on_completion"] = sid("action", 4)
    doc["workflow"][sid("action", 4)] = manual("again", sid("action", 2))
    messages = _messages(doc)
    (message,) = [m for m in messages if "cycle" in m]
    assert any("end--" in m and "cannot be reached" in m for m in messages)
    assert message.startswith("pb.json: workflow: cycle in the workflow: ")
    assert f"{sid('action', 2)} → {sid('action', 4)} → {sid('action', 2)}" in message


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.update(workflow_start=sid("start", 9)),
     "workflow_start: refers to a step that is not in the workflow"),
    (lambda d: d["workflow"][sid("action", 2)].update(on_completion=sid("end", 7)),
     f"workflow.{sid('action', 2)}.on_completion: refers to a step that is not in the workflow"),
    (lambda d: d["workflow"].pop(sid("start", 1)), "workflow_start: refers to a step"),
    (lambda d: d.update(workflow_start=sid("action", 2)), "does not refer to a start step"),
    (lambda d: d["workflow"].pop(sid("end", 3)) and d["workflow"][sid("action", 2)].pop("on_completion"),
     "no end step"),
    (lambda d: d.update(spec_version="cacao-1.0"), "spec_version: spec_version is 'cacao-1.0' (expected cacao-2.0)"),
    (lambda d: d.update(id="playbook-1"), "id: 'playbook-1' is not an identifier"),
    (lambda d: d.update(created="yesterday"), "created: 'yesterday' is not a timestamp"),
    (lambda d: d.pop("name"), "name: missing required property"),
    (lambda d: d["workflow"][sid("action", 2)].update(commands=[]), "commands: must be a non-empty list"),
    (lambda d: d["workflow"][sid("action", 2)]["commands"].append({"type": "telepathy", "command": "x"}),
     "unknown command type 'telepathy'"),
    (lambda d: d["workflow"][sid("action", 2)]["commands"].append({"type": "x-healthswarm", "command": "nuke all"}),
     "unknown action 'nuke'"),
    (lambda d: d["workflow"][sid("action", 2)]["commands"].append({"type": "x-healthswarm", "command": "isolate-host"}),
     "no target after 'isolate-host'"),
    (lambda d: d["workflow"].update({sid("while-condition", 5): {"type": "while-condition"}}),
     "unsupported step type 'while-condition'"),
    (lambda d: d["workflow"].update({sid("if-condition", 5): {"type": "if-condition", "condition": "moon.full",
                                                              "on_true": sid("end", 3)}}),
     "unknown predicate 'moon.full'"),
    (lambda d: d["workflow"].update({sid("action", 6): manual("orphan", sid("end", 3))}),
     "cannot be reached from workflow_start"),
    (lambda d: d["workflow"][sid("end", 3)].update(on_completion=sid("action", 2)), "not allowed on a end step"),
    (lambda d: d["workflow"].update({"action--1": d["workflow"].pop(sid("action", 2))}), "step id does not match"),
])
def test_invalid_documents_name_the_field(mutate: Any, expected: str) -> None:
    doc = copy.deepcopy(linear())
    mutate(doc)
    messages = _messages(doc)
    assert any(expected in m for m in messages), messages


def test_not_a_playbook_at_all(tmp_path: Path) -> None:
    assert _messages([1, 2]) == ["pb.json: a playbook must be a JSON object"]
    bad = tmp_path / "broken.json"
    bad.write_text('{"type": "playbook",\n  oops}')
    with pytest.raises(InputError, match=r"broken.json:2: not JSON"):
        load_playbook(bad)


def test_unknown_sub_playbook_is_reported_when_the_library_is_known() -> None:
    doc = linear()
    doc["workflow"][sid("action", 2)] = {"type": "playbook-action", "playbook_id": "playbook--nope",
                                        "on_completion": sid("end", 3)}
    assert any("unknown playbook 'playbook--nope'" in str(p) for p in validate_document(doc, "pb.json", set()))


# ---- execution -----------------------------------------------------------------------------------------------


def test_executor_follows_conditions_parallel_branches_and_sub_playbooks() -> None:
    library = Library.load()
    book = library.find("medical-device-compromise")
    result = run_playbook(book, context(case_of(["pump-1", "ws-1"])), library)
    kinds = [(p.kind, p.target, p.status) for p in result.proposals]
    assert ("quarantine-port", "pump-1", "awaiting-approval") in kinds
    assert ("isolate-host", "pump-1", "awaiting-approval") in kinds
    assert not any(k == "isolate-host" and t == "ws-1" for k, t, _ in kinds)  # the on_false branch was not taken
    assert any("Clinical fallback" in s.name for s in result.steps)
    assert [t.title for t in result.tasks][1].startswith("Put the clinical fallback in place")
    assert {s.playbook for s in result.steps} == {book.name, "Notify stakeholders"}  # the playbook-action ran
    assert result.steps[-1].type == "end" and result.dry_run
    # no safety-critical asset: the other branch
    other = run_playbook(book, context(case_of(["ws-1"])), library)
    assert [(p.kind, p.target) for p in other.proposals][:1] == [("isolate-host", "ws-1")]
    assert all(p.approval is None for p in other.proposals)


def test_parallel_runs_every_branch_before_continuing() -> None:
    workflow = {
        sid("start", 1): {"type": "start", "on_completion": sid("parallel", 2)},
        sid("parallel", 2): {"type": "parallel", "next_steps": [sid("action", 3), sid("action", 4)],
                             "on_completion": sid("action", 5)},
        sid("action", 3): manual("branch a"), sid("action", 4): manual("branch b"),
        sid("action", 5): manual("after", sid("end", 6)), sid("end", 6): {"type": "end"},
    }
    book = parse_playbook(playbook(workflow), "pb.json")
    result = run_playbook(book, context(case_of([])))
    assert [t.title for t in result.tasks] == ["branch a", "branch b", "after"]


def test_an_action_on_an_unknown_asset_names_the_step() -> None:
    workflow = {
        sid("start", 1): {"type": "start", "on_completion": sid("action", 2)},
        sid("action", 2): {"type": "action", "commands": [{"type": "x-healthswarm", "command": "isolate-host ghost"}],
                           "on_completion": sid("end", 3)},
        sid("end", 3): {"type": "end"},
    }
    book = parse_playbook(playbook(workflow), "pb.json")
    with pytest.raises(InputError, match=rf"pb.json: workflow.{sid('action', 2)}.commands\[0\]: target: unknown asset"):
        run_playbook(book, context(case_of([])))


# ---- against the demo's incidents -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    from healthswarm.demo.run import DemoRun, detect_and_correlate, ingest_logs, load_ecosystem

    workspace = tmp_path_factory.mktemp("demo")
    store = Store.open(f"sqlite:///{workspace / 'demo.db'}")
    run = DemoRun(store=store, workspace=workspace)
    for step in (load_ecosystem, ingest_logs, detect_and_correlate):
        step(run)
    prepare(store)
    yield store, workspace
    store.close()


def test_every_shipped_playbook_runs_against_every_demo_incident(demo_store: tuple[Store, Path]) -> None:
    store, _ = demo_store
    library = Library.load()
    with store.transaction() as conn:
        incidents = load_incidents(conn)
        cases = [open_from_incident(conn, i.id, "test") for i in incidents]
    assert len(cases) >= 4
    proposals = 0
    for case in cases:
        for book in library.playbooks.values():
            result = run_on_case(store, case.id, book.id, library=library)
            assert result.steps[0].type == "start" and result.steps[-1].type == "end"
            assert all(p.status in ("proposed", "awaiting-approval") for p in result.proposals), result.as_dict()
            proposals += len(result.proposals)
    assert proposals > 0
    with store.read() as conn:  # dry runs changed nothing
        assert all(c.version == 1 for c in list_cases(conn))
    dicom = next(c for c in cases if "rim-pacs-01" in c.assets)
    result = run_on_case(store, dicom.id, "exfiltration-dicom-fhir", library=library)
    pacs = next(p for p in result.proposals if p.target == "rim-pacs-01")
    assert pacs.status == "awaiting-approval" and "PACS" in pacs.approval.fallback  # type: ignore[union-attr]


def test_execute_records_tasks_watchlist_and_artefacts(demo_store: tuple[Store, Path]) -> None:
    store, workspace = demo_store
    with store.read() as conn:
        phishing = next(c for c in list_cases(conn) if "sta-ws-03" in c.assets)
    result = run_on_case(store, phishing.id, "phishing-credential-theft", execute=True, workspace=workspace)
    statuses = {(p.kind, p.status) for p in result.proposals}
    assert ("isolate-host", "executed") in statuses and ("watchlist-add", "executed") in statuses
    assert ("notify-email", "failed") in statuses  # no relay configured: recorded, not raised
    rules = (workspace / "respond" / phishing.id / "isolate-host-sta-ws-03.nft").read_text()
    assert "10.10.1.103" in rules
    with store.read() as conn:
        case = load_case(conn, phishing.id)
        assert case.version == phishing.version + 1 and len(case.tasks) == len(result.tasks)
        assert load_audit(conn, phishing.id)[-1].action == "playbook-run"
        assert any(w["value"] == "198.51.100.77" for w in load_watchlist(conn))


def test_demo_step(demo_store: tuple[Store, Path]) -> None:
    from healthswarm.respond import demo_step

    store, workspace = demo_store
    summary, show = demo_step(store, workspace)
    assert summary["playbook"] == "Phishing with credential theft" and summary["proposals"] > 0
    assert summary["first_containment"] == {"kind": "isolate-host", "target": "sta-fs-01"}
    assert {d["id"] for d in summary["deadlines"]} >= {"gdpr-33", "nis2-early-warning", "hipaa-individuals"}
    assert len(show) == 2
