"""The risk API on the demo workspace (predicted next targets, attack paths, problem details) and the
dashboard drawing them in a real headless Chromium."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api_support import DemoApi, client, demo_api, demo_workspace  # noqa: F401
from healthswarm.risk.live import annotate_incidents
from healthswarm.store.alerts import load_incidents, update_incident_document
from test_api_browser import browser, live  # noqa: F401

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict = response.json()
    assert body["status"] == status and body["title"]
    return body


def phishing_incident(api: DemoApi) -> str:
    with api.store.read() as conn:
        return next(i.id for i in load_incidents(conn) if "sta-ws-03" in i.assets)


def test_predicted_next_targets_of_an_incident(client: TestClient, demo_api: DemoApi) -> None:
    ident = phishing_incident(demo_api)  # the demo annotates its incidents after detection
    body = client.get(f"/api/v1/incidents/{ident}/predicted", headers=demo_api.headers("viewer")).json()
    assert body["annotated"] and "sta-ws-03" in body["from"]
    top = body["predicted_next"][0]
    assert top["asset"] == "sta-mri-01" and top["privilege"] == "admin" and top["probability"] == pytest.approx(0.9)
    assert "CVE-" in top["how"]
    problem(client.get("/api/v1/incidents/no-such-incident/predicted", headers=demo_api.headers("viewer")), 404)
    with demo_api.store.transaction() as conn:  # an incident never annotated says so
        assert update_incident_document(conn, ident, {"predicted_next": None, "predicted_from": None})
    bare = client.get(f"/api/v1/incidents/{ident}/predicted", headers=demo_api.headers("viewer")).json()
    assert bare == {"incident": ident, "annotated": False, "from": [], "predicted_next": []}
    assert annotate_incidents(demo_api.store) >= 1
    problem(client.get(f"/api/v1/incidents/{ident}/predicted"), 401)
    problem(client.get(f"/api/v1/incidents/{ident}/predicted", headers=demo_api.headers("peer")), 403)


def test_attack_paths_from_the_phishing_foothold_to_the_shared_pacs(client: TestClient, demo_api: DemoApi) -> None:
    r = client.get("/api/v1/risk/paths", params={"from": "phishing@st-aurelia", "to": "rim-pacs-01", "k": 2},
                   headers=demo_api.headers("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["targets"] == ["rim-pacs-01"] and body["method"].startswith("exact")
    assert 1 <= len(body["paths"]) <= 2
    best = body["paths"][0]
    assert best["assets"][-1] == "rim-pacs-01" and best["assets"][0].startswith("sta-")
    assert all(a != b for a, b in zip(best["assets"], best["assets"][1:], strict=False))
    assert 0 < best["p"] <= 1 and best["states"][-1].startswith("rim-pacs-01[")
    assert [p["p"] for p in body["paths"]] == sorted((p["p"] for p in body["paths"]), reverse=True)


@pytest.mark.parametrize("query", [
    "from=nobody&to=rim-pacs-01", "from=phishing@atlantis&to=rim-pacs-01", "from=phishing&to=no-such-asset",
    "from=phishing&to=rim-pacs-01&k=0", "from=phishing&to=rim-pacs-01&k=many", "from=phishing&to=rim-pacs-01&k=999",
    "to=rim-pacs-01", "from=phishing", "from=&to=rim-pacs-01", "from=phishing&to=rim-pacs-01&max_steps=-1",
    "from=phishing&to=%00%ff", "from=phishing&to=,,,"])
def test_bad_path_parameters_are_400_problems(client: TestClient, demo_api: DemoApi, query: str) -> None:
    body = problem(client.get(f"/api/v1/risk/paths?{query}", headers=demo_api.headers("viewer")), 400)
    assert body.get("detail")


def test_unreachable_target_is_explained_not_an_error(client: TestClient, demo_api: DemoApi) -> None:
    r = client.get("/api/v1/risk/paths", params={"from": "physical@st-aurelia", "to": "rim-pacs-01"},
                   headers=demo_api.headers("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["paths"] == [] and body["unreachable"] == ["rim-pacs-01"] and body["reason"]


def test_dashboard_highlights_predictions_and_draws_an_attack_path(  # type: ignore[no-untyped-def]
        live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:
    base, api = live
    assert annotate_incidents(api.store) >= 1
    ident = phishing_incident(api)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{base}/#token={api.tokens['viewer']}")
    page.wait_for_selector("#live:has-text('standby')", timeout=15_000)
    page.mouse.move(10, 10)   # the live stream opens on a person's first move (or after 15 s)
    page.wait_for_selector("#live.on", timeout=15_000)

    page.click(f".card[data-incident-id='{ident}']")
    page.wait_for_selector("#predicted tr[data-asset-id='sta-mri-01']")
    assert page.locator("#map circle.asset.predicted[data-asset-id='sta-mri-01']").count() == 1
    assert page.locator("#map circle.asset.predicted").count() == page.locator("#predicted tr[data-asset-id]").count()

    page.fill("#path-from", "phishing@st-aurelia")
    page.fill("#path-to", "rim-pacs-01")
    page.click("#path-form button[type=submit]")
    page.wait_for_selector("#map polyline.attack-path[data-path='0']")
    points = page.locator("#map polyline.attack-path[data-path='0']").get_attribute("points") or ""
    pacs = page.locator("#map circle.asset[data-asset-id='rim-pacs-01']")
    end = f"{pacs.get_attribute('cx')},{pacs.get_attribute('cy')}"
    assert len(points.split()) >= 2 and points.split()[-1] == end  # the line ends on the PACS node
    assert "most likely p=" in (page.locator("#path-status").text_content() or "")
    page.screenshot(path=str(tmp_path / "attack-path.png"), full_page=True)

    page.fill("#path-to", "no-such-asset")
    page.click("#path-form button[type=submit]")
    page.wait_for_selector("#path-status:has-text('names no asset')")
    assert page.locator("#map polyline.attack-path").count() == 0
    page.close()
    assert not [p for p in problems if "400" not in p], problems  # the refused search logs its 400 only
