"""The API on the demo workspace: endpoints, roles, problem details, cursor paging, audit."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from api_support import DemoApi, client, demo_api, demo_workspace  # noqa: F401

PROBLEM = "application/problem+json"


def get(client: TestClient, api: DemoApi, path: str, role: str = "viewer") -> dict:
    r = client.get(path, headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    return body


def test_demo_incidents_listed_with_detail_and_timeline(client: TestClient, demo_api: DemoApi) -> None:
    page = get(client, demo_api, "/api/v1/incidents")
    assert page["total"] == len(page["items"]) >= 1
    first = page["items"][0]
    assert first["id"].startswith("INC-") and first["severity"] >= page["items"][-1]["severity"]
    detail = get(client, demo_api, f"/api/v1/incidents/{first['id']}")
    assert detail["assets"] == first["assets"] and detail["timeline"]
    timeline = get(client, demo_api, f"/api/v1/incidents/{first['id']}/timeline")
    assert [e["alert_id"] for e in timeline] == [e["alert_id"] for e in detail["timeline"]]
    alerts = get(client, demo_api, f"/api/v1/alerts?incident={first['id']}&limit=500")
    assert {a["id"] for a in alerts["items"]} == set(detail["alert_ids"])


def test_incident_filters(client: TestClient, demo_api: DemoApi) -> None:
    every = get(client, demo_api, "/api/v1/incidents")["items"]
    stage = every[0]["stage"]
    filtered = get(client, demo_api, f"/api/v1/incidents?stage={stage}")["items"]
    assert filtered and all(i["stage"] == stage for i in filtered)
    assert get(client, demo_api, "/api/v1/incidents?state=closed")["items"] == []


def test_assets_and_findings(client: TestClient, demo_api: DemoApi) -> None:
    page = get(client, demo_api, "/api/v1/assets?organisation=northfield&limit=500")
    assert page["items"] and all(a["organisation"] == "northfield" for a in page["items"])
    finding = get(client, demo_api, "/api/v1/findings?severity=critical&limit=1")["items"][0]
    asset = get(client, demo_api, f"/api/v1/assets/{finding['asset_id']}")
    assert any(f["cve"] == finding["cve"] for f in asset["findings"])


def test_ecosystem_marks_incident_assets(client: TestClient, demo_api: DemoApi) -> None:
    eco = get(client, demo_api, "/api/v1/ecosystem")
    assert len(eco["organisations"]) >= 4 and eco["zones"] and eco["dependencies"] and eco["flows"]
    incidents = get(client, demo_api, "/api/v1/incidents")["items"]
    hit = {a for i in incidents for a in i["assets"]}
    marked = {a["id"] for a in eco["assets"] if a["incident"]}
    assert marked == hit & {a["id"] for a in eco["assets"]}


def test_attack_exposure_summary(client: TestClient, demo_api: DemoApi) -> None:
    attack = get(client, demo_api, "/api/v1/attack")
    seen = {t["id"] for tactic in attack["tactics"] for t in tactic["techniques"]}
    assert "T1059.001" in seen and attack["max"] >= 1
    exposure = get(client, demo_api, "/api/v1/exposure")
    assert sum(o["findings"] for o in exposure) == get(client, demo_api, "/api/v1/summary")["findings"] > 0


def test_event_search_cursor_pages_through_everything(client: TestClient, demo_api: DemoApi) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/events?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = get(client, demo_api, url)
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(set(seen)) and len(seen) > 100
    one = get(client, demo_api, "/api/v1/events?observer_type=dicom&limit=500")["items"]
    assert one and all(e["fields"]["observer.type"] == "dicom" for e in one)
    first, last = one[0]["timestamp"], one[-1]["timestamp"]
    window = get(client, demo_api,
                 f"/api/v1/events?observer_type=dicom&start={quote(first)}&end={quote(last)}&limit=500")
    assert 0 < len(window["items"]) < len(one)


def test_offset_cursor_pages(client: TestClient, demo_api: DemoApi) -> None:
    first = get(client, demo_api, "/api/v1/assets?limit=100")
    second = get(client, demo_api, f"/api/v1/assets?limit=100&cursor={first['next_cursor']}")
    ids = [a["id"] for a in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == first["total"] and second["next_cursor"] is None


@pytest.mark.parametrize("path", [
    "/api/v1/incidents/INC-000000000000", "/api/v1/assets/no-such-asset", "/api/v1/alerts/nope",
    "/api/v1/incidents/INC-000000000000/timeline", "/api/v1/no-such-endpoint",
])
def test_unknown_ids_are_404_problems(client: TestClient, demo_api: DemoApi, path: str) -> None:
    assert_problem(client.get(path, headers=demo_api.headers("viewer")), 404)


@pytest.mark.parametrize("query", [
    "limit=501", "limit=0", "limit=abc", "cursor=not-a-cursor", "start=yesterday", "end=2026-13-40",
    "start=9999-12-31T23:59:59-14:00",
])
def test_malformed_filters_and_oversized_pages_are_400(client: TestClient, demo_api: DemoApi, query: str) -> None:
    body = assert_problem(client.get(f"/api/v1/events?{query}", headers=demo_api.headers("viewer")), 400)
    assert body["detail"]


def test_cursor_of_another_list_is_refused(client: TestClient, demo_api: DemoApi) -> None:
    cursor = get(client, demo_api, "/api/v1/assets?limit=1")["next_cursor"]
    assert_problem(client.get(f"/api/v1/events?cursor={cursor}", headers=demo_api.headers("viewer")), 400)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer hs_wrong"}, {"Authorization": "Basic eDp5"},
                                     {"Authorization": "Bearer " + "x" * 1000}])
def test_bad_tokens_are_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/api/v1/incidents", headers=headers)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_peer_reads_nothing_and_viewer_cannot_change_state(client: TestClient, demo_api: DemoApi) -> None:
    assert_problem(client.get("/api/v1/incidents", headers=demo_api.headers("peer")), 403)
    incident = get(client, demo_api, "/api/v1/incidents")["items"][0]["id"]
    r = client.post(f"/api/v1/incidents/{incident}/state", json={"state": "triaged"},
                    headers=demo_api.headers("viewer"))
    assert_problem(r, 403)
    assert get(client, demo_api, f"/api/v1/incidents/{incident}")["state"] == "new"
    assert_problem(client.get("/api/v1/audit", headers=demo_api.headers("analyst")), 403)


def test_analyst_state_change_is_audited(client: TestClient, demo_api: DemoApi) -> None:
    incident = get(client, demo_api, "/api/v1/incidents")["items"][0]["id"]
    r = client.post(f"/api/v1/incidents/{incident}/state", json={"state": "contained", "note": "pump isolated"},
                    headers=demo_api.headers("analyst"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "contained"
    assert get(client, demo_api, "/api/v1/incidents?state=contained")["items"][0]["id"] == incident
    log = get(client, demo_api, f"/api/v1/audit?target={incident}", role="admin")
    entry = log[0]
    assert (entry["actor"], entry["role"], entry["action"]) == ("test-analyst", "analyst", "incident.state")
    assert entry["before"] == {"state": "new"} and entry["after"] == {"state": "contained"}
    assert entry["note"] == "pump isolated" and entry["timestamp"]
    bad = client.post(f"/api/v1/incidents/{incident}/state", json={"state": "exploded"},
                      headers=demo_api.headers("analyst"))
    assert_problem(bad, 400)
    missing = client.post("/api/v1/incidents/INC-nothing/state", json={"state": "closed"},
                          headers=demo_api.headers("analyst"))
    assert_problem(missing, 404)
    assert_problem(client.post(f"/api/v1/incidents/{incident}/state", content=b"{not json",
                               headers={**demo_api.headers("analyst"), "Content-Type": "application/json"}), 400)


def test_admin_manages_tokens(client: TestClient, demo_api: DemoApi) -> None:
    r = client.post("/api/v1/tokens", json={"name": "night-shift", "role": "viewer"},
                    headers=demo_api.headers("admin"))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "night-shift"
    listed = get(client, demo_api, "/api/v1/tokens", role="admin")
    assert all("token" not in t and "token_hash" not in t for t in listed)
    mine = next(t for t in listed if t["name"] == "night-shift")
    assert client.delete(f"/api/v1/tokens/{mine['id']}", headers=demo_api.headers("admin")).status_code == 200
    assert_problem(client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}), 401)
    assert_problem(client.post("/api/v1/tokens", json={"name": "x", "role": "viewer"},
                               headers=demo_api.headers("analyst")), 403)


def test_tokens_are_stored_hashed(demo_api: DemoApi) -> None:
    from sqlalchemy import select

    from healthswarm.store.api_tables import api_tokens

    with demo_api.store.read() as conn:
        stored = list(conn.execute(select(api_tokens.c.token_hash)).scalars())
    assert len(stored) >= 4 and not set(stored) & set(demo_api.tokens.values())
    assert all(len(h) == 64 for h in stored)


def test_openapi_is_3_1_and_documents_problems(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/incidents/{incident_id}/state" in doc["paths"]
    assert "application/problem+json" in doc["paths"]["/api/v1/incidents"]["get"]["responses"]["403"]["content"]


def test_taxii_is_mounted_under_taxii2(client: TestClient) -> None:
    r = client.get("/taxii2/", headers={"Authorization": "Bearer nobody"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/taxii+json")


def test_dashboard_is_served_with_a_content_security_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<svg id=\"map\"" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def test_huge_cursor_is_a_problem_not_a_crash(client: TestClient, demo_api: DemoApi) -> None:
    from healthswarm.api.pages import encode

    assert_problem(client.get(f"/api/v1/assets?cursor={encode('o', 10**30)}", headers=demo_api.headers("viewer")), 400)


def test_stream_needs_a_token(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/stream?access_token=wrong"), 401)
