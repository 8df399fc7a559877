"""`/api/v1/cases` on the demo workspace (its case for the phishing incident): list, detail with deadlines, audit
with chain verification, notes and phase moves by analysts only, stale versions refused with 409, a tampered
chain reported; and the dashboard's Cases panel with live GDPR/NIS2 timers in Chromium."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import update
from starlette.testclient import TestClient

from api_support import DemoApi, client, demo_api, demo_workspace  # noqa: F401
from healthswarm.respond.deadlines import format_left
from healthswarm.respond.demo import DEMO_ASSET
from healthswarm.store.respond_tables import respond_audit
from test_api_browser import browser, live  # noqa: F401

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    return body


def demo_case(client: TestClient, api: DemoApi, role: str = "viewer") -> dict:
    r = client.get("/api/v1/cases", headers=api.headers(role))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == len(page["items"]) >= 1 and page["next_cursor"] is None
    return page["items"][0]


def detail(client: TestClient, api: DemoApi, case_id: str) -> dict:
    r = client.get(f"/api/v1/cases/{case_id}", headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


def test_list_shows_the_demo_case_with_its_next_deadline(client: TestClient, demo_api: DemoApi) -> None:
    case = demo_case(client, demo_api)
    assert case["id"].startswith("CASE-") and case["incident"].startswith("INC-")
    assert case["phase"] == "detection-analysis" and case["version"] == 1
    aware = datetime.fromisoformat(case["aware_at"])
    assert timedelta(0) <= datetime.now(UTC) - aware < timedelta(hours=12)
    ids = {d["id"] for d in case["deadlines"]}
    assert {"gdpr-33", "gdpr-34", "nis2-early-warning", "nis2-notification", "nis2-final-report"} <= ids
    # NIS2's 24 h early warning is the first to lapse on a fresh case
    assert case["next_deadline"]["id"] == "nis2-early-warning"
    left = case["time_left_seconds"]
    assert 0 < left <= 24 * 3600 and case["time_left"] == case["next_deadline"]["left"]
    due = datetime.fromisoformat(case["next_deadline"]["due"])
    assert due == aware + timedelta(hours=24)
    warn = datetime.fromisoformat(case["next_deadline"]["warn_at"])
    assert warn == due - timedelta(hours=6)
    r = client.get("/api/v1/cases?phase=containment", headers=demo_api.headers("viewer"))
    assert r.status_code == 200 and r.json()["items"] == []


def test_detail_has_tasks_notes_evidence_observables_and_deadline_statuses(client: TestClient,
                                                                           demo_api: DemoApi) -> None:
    case = detail(client, demo_api, demo_case(client, demo_api)["id"])
    assert DEMO_ASSET in case["assets"]
    assert case["evidence"] and all(e["kind"] == "event" for e in case["evidence"])
    assert isinstance(case["tasks"], list) and case["notes"] == [] and isinstance(case["observables"], list)
    statuses = {d["id"]: d["status"] for d in case["deadlines"]}
    assert statuses["gdpr-33"] == "ok" and statuses["gdpr-34"] == "undue-delay"
    gdpr = next(d for d in case["deadlines"] if d["id"] == "gdpr-33")
    assert 0 < gdpr["left_seconds"] <= 72 * 3600  # worded as every face words a duration (model.words.span)
    assert re.fullmatch(r"\d+ d( \d+ h)?|\d+ h( \d+ min)?|\d+ min", gdpr["left"]), gdpr["left"]


def test_audit_entries_verify_and_tampering_is_reported(client: TestClient, demo_api: DemoApi) -> None:
    case_id = demo_case(client, demo_api)["id"]
    r = client.get(f"/api/v1/cases/{case_id}/audit", headers=demo_api.headers("viewer"))
    assert r.status_code == 200, r.text
    audit = r.json()
    assert audit["verification"] == {"ok": True, "entries": len(audit["entries"]), "first_bad": None, "reason": ""}
    assert audit["entries"][0]["action"] == "open" and audit["entries"][0]["seq"] == 1
    with demo_api.store.transaction() as conn:
        conn.execute(update(respond_audit).where(respond_audit.c.case_id == case_id)
                     .where(respond_audit.c.seq == 1).values(actor="mallory"))
    verdict = client.get(f"/api/v1/cases/{case_id}/audit", headers=demo_api.headers("viewer")).json()["verification"]
    assert verdict["ok"] is False and verdict["first_bad"] == 1 and "hash" in verdict["reason"]


def test_analyst_adds_a_note_and_moves_the_phase_each_audited(client: TestClient, demo_api: DemoApi) -> None:
    case = demo_case(client, demo_api)
    url = f"/api/v1/cases/{case['id']}"
    r = client.post(url + "/notes", json={"version": case["version"], "text": "  user reset, mail purged "},
                    headers=demo_api.headers("analyst"))
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["version"] == case["version"] + 1
    assert after["notes"][-1]["text"] == "user reset, mail purged" and after["notes"][-1]["author"] == "test-analyst"
    r = client.post(url + "/phase", json={"version": after["version"], "phase": "containment"},
                    headers=demo_api.headers("analyst"))
    assert r.status_code == 200, r.text
    assert r.json()["phase"] == "containment" and r.json()["version"] == case["version"] + 2
    assert detail(client, demo_api, case["id"])["phase_history"][-1]["to"] == "containment"
    audit = client.get(url + "/audit", headers=demo_api.headers("viewer")).json()
    assert audit["verification"]["ok"] is True
    assert [e["action"] for e in audit["entries"][-2:]] == ["note", "move"]
    assert audit["entries"][-1]["actor"] == "test-analyst (analyst)"
    assert audit["entries"][-1]["data"]["version"] == case["version"] + 2


def test_stale_version_is_a_409_and_changes_nothing(client: TestClient, demo_api: DemoApi) -> None:
    case = demo_case(client, demo_api)
    url = f"/api/v1/cases/{case['id']}"
    first = client.post(url + "/notes", json={"version": case["version"], "text": "first"},
                        headers=demo_api.headers("analyst"))
    assert first.status_code == 200, first.text
    stale = client.post(url + "/notes", json={"version": case["version"], "text": "lost?"},
                        headers=demo_api.headers("admin"))
    body = problem(stale, 409)
    assert body["expected_version"] == case["version"] and body["current_version"] == case["version"] + 1
    assert "reload" in body["detail"]
    problem(client.post(url + "/phase", json={"version": case["version"], "phase": "containment"},
                        headers=demo_api.headers("analyst")), 409)
    now = detail(client, demo_api, case["id"])
    assert [n["text"] for n in now["notes"]] == ["first"] and now["phase"] == "detection-analysis"
    entries = client.get(url + "/audit", headers=demo_api.headers("viewer")).json()["entries"]
    assert [e["action"] for e in entries].count("note") == 1


def test_a_move_the_life_cycle_forbids_is_a_409_naming_the_allowed(client: TestClient, demo_api: DemoApi) -> None:
    case = demo_case(client, demo_api)
    r = client.post(f"/api/v1/cases/{case['id']}/phase", json={"version": case["version"], "phase": "recovery"},
                    headers=demo_api.headers("analyst"))
    body = problem(r, 409)
    assert "cannot move from detection-analysis to recovery" in body["detail"] and "containment" in body["detail"]
    assert detail(client, demo_api, case["id"])["version"] == case["version"]


def test_roles_and_problem_details(client: TestClient, demo_api: DemoApi) -> None:
    case = demo_case(client, demo_api)
    url = f"/api/v1/cases/{case['id']}"
    note = {"version": case["version"], "text": "viewer note"}
    problem(client.get("/api/v1/cases"), 401)
    problem(client.get("/api/v1/cases", headers=demo_api.headers("peer")), 403)
    problem(client.post(url + "/notes", json=note, headers=demo_api.headers("viewer")), 403)
    problem(client.post(url + "/phase", json={**note, "phase": "containment"}, headers=demo_api.headers("viewer")),
            403)
    problem(client.post(url + "/notes", json=note), 401)
    problem(client.get("/api/v1/cases/CASE-none", headers=demo_api.headers("viewer")), 404)
    problem(client.get("/api/v1/cases/CASE-none/audit", headers=demo_api.headers("viewer")), 404)
    problem(client.post("/api/v1/cases/CASE-none/notes", json=note, headers=demo_api.headers("analyst")), 404)
    problem(client.post(url + "/notes", json={"version": case["version"], "text": "   "},
                        headers=demo_api.headers("analyst")), 400)
    problem(client.post(url + "/notes", json={"text": "no version"}, headers=demo_api.headers("analyst")), 400)
    problem(client.post(url + "/phase", json={"version": 1, "phase": "done"}, headers=demo_api.headers("analyst")), 400)
    problem(client.get("/api/v1/cases?cursor=bogus", headers=demo_api.headers("viewer")), 400)
    assert detail(client, demo_api, case["id"])["notes"] == []


def test_cases_panel_shows_the_demo_case_with_live_timers(live, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{base}/#token={api.tokens['analyst']}")
    row = page.locator("#cases .case-row[data-case-id]").first
    row.wait_for(timeout=15_000)
    assert "detection-analysis" in row.inner_text()
    gdpr = row.locator(".timer[data-deadline='gdpr-33']")
    nis2 = row.locator(".timer[data-deadline='nis2-early-warning']")
    assert "GDPR Art. 33" in gdpr.inner_text() and "NIS2 Art. 23(4)(a)" in nis2.inner_text()
    assert "ok" in (gdpr.get_attribute("class") or "").split()
    # worded as model.words.span words the CLI's and the API's `left` ("23 h 58 min"), not "23h 58m 41s"
    assert re.fullmatch(r"2\d h( \d+ min)?", nis2.locator(".left").inner_text())
    # it counts down at the browser's clock: an hour on, it reads an hour less
    later = page.evaluate("""() => {
        const timer = "#cases .timer[data-deadline='nis2-early-warning'] .left";
        const left = () => document.querySelector(timer).textContent;
        const before = left(); caseState.offset += 3_600_000; tickCases();
        const after = left(); caseState.offset -= 3_600_000; tickCases();
        return [before, after]; }""")
    assert int(later[1].split()[0]) == int(later[0].split()[0]) - 1, later
    seconds = [0, 40, 59.6, 300, 3_600, 7_800, 86_399, 86_400, 273_600, 273_660, -21_600]
    assert page.evaluate("xs => xs.map((x) => caseLeftText(x * 1000))", seconds) == [
        format_left(timedelta(seconds=x)) for x in seconds]
    page.screenshot(path=str(tmp_path / "cases.png"), full_page=True)

    case_id = row.get_attribute("data-case-id")
    row.click()
    page.wait_for_selector(f".case-title:has-text('{case_id}')")
    assert page.locator("#case-chain").inner_text().startswith("Audit chain verified")
    assert page.locator("#case-detail .timer").count() >= 4
    page.fill("#case-note", "from the browser")
    page.click("#case-note-add")
    page.wait_for_selector("#case-notes li:has-text('from the browser')", timeout=10_000)
    # another analyst changes the case meanwhile: the page's version is stale, the move is refused and said so
    r = httpx.post(f"{base}/api/v1/cases/{case_id}/notes", json={"version": 2, "text": "elsewhere"},
                   headers=api.headers("admin"), timeout=10)
    assert r.status_code == 200, r.text
    page.select_option("#case-phase", "containment")
    page.click("#case-phase-apply")
    page.wait_for_selector("#case-msg:has-text('changed concurrently')", timeout=10_000)
    page.wait_for_selector("#case-notes li:has-text('elsewhere')", timeout=10_000)  # reloaded
    assert page.locator("#case-phase-now").inner_text() == "detection-analysis"
    page.select_option("#case-phase", "containment")
    page.click("#case-phase-apply")
    page.wait_for_selector("#case-phase-now:has-text('containment')", timeout=10_000)
    assert page.locator("#case-msg").inner_text() == ""
    page.screenshot(path=str(tmp_path / "case.png"), full_page=True)
    expected = "Failed to load resource: the server responded with a status of 409 (Conflict)"  # the refused move
    assert [p for p in problems if expected not in p] == [] and len(problems) == 1, problems
    page.close()


def test_viewer_panel_has_no_controls(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    page = browser.new_page()
    page.goto(f"{base}/#token={api.tokens['viewer']}")
    page.locator("#cases .case-row").first.click(timeout=15_000)
    page.wait_for_selector(".case-title")
    assert page.locator("#case-note").count() == 0 and page.locator("#case-phase").count() == 0
    page.close()
