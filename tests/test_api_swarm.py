"""The swarm view on the demo workspace: every organisation's node with its members, threat levels and warnings,
the assets whose risk the swarm raised, roles, a corrupt status file reported per node, and the dashboard's
Swarm panel in a real headless Chromium.

The session's demo workspace (api_support) ran the demo's swarm step as `healthswarm demo` does: one node per
organisation on loopback sockets with a corroborating second wave, so each node left its `status.json` (the
in-memory variant, `sockets=False`, writes none: it has no runtime)."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.testclient import TestClient

from api_support import DemoApi, demo_workspace, open_demo_api  # noqa: F401
from conftest import uvicorn_in_thread
from healthswarm.api.swarm import make_router
from test_api_browser import browser, free_port, keep  # noqa: F401

PROBLEM = "application/problem+json"
ORGS = {"st-aurelia", "northfield", "regio-imaging", "citylab", "medtech-support"}
C2 = "indicator:ipv4:198.51.100.77"


def with_swarm(app: FastAPI, workspace: Path) -> FastAPI:
    """The app with the swarm routes, whether or not `create_app` registers them already (asked of the app
    itself: FastAPI keeps included routers opaque in `app.routes`)."""
    if TestClient(app).get("/api/v1/swarm/status").status_code == 404:
        app.include_router(make_router(workspace))
    return app


def open_swarm_api(demo_workspace: Path, target: Path) -> DemoApi:
    api = open_demo_api(demo_workspace, target)
    shutil.copytree(demo_workspace / "swarm", target / "swarm")
    with_swarm(api.app, target)
    return api


@pytest.fixture
def swarm_api(demo_workspace: Path, tmp_path: Path) -> Iterator[DemoApi]:
    api = open_swarm_api(demo_workspace, tmp_path / "api-ws")
    yield api
    api.store.close()


@pytest.fixture
def client(swarm_api: DemoApi) -> Iterator[TestClient]:
    with TestClient(swarm_api.app, raise_server_exceptions=False) as c:
        yield c


def nodes_of(client: TestClient, api: DemoApi) -> dict[str, dict]:  # type: ignore[type-arg]
    r = client.get("/api/v1/swarm/status", headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    return {n["name"]: n for n in r.json()["nodes"]}


def test_status_shows_every_organisation_its_levels_and_warnings(client: TestClient, swarm_api: DemoApi) -> None:
    nodes = nodes_of(client, swarm_api)
    assert set(nodes) == ORGS
    for name, node in nodes.items():
        assert node["error"] is None and node["written"] and node["file_modified"] and node["threshold"] == 0.5
        assert node["folder"] == f"swarm/{name}/swarm" and node["dropped"] == {}
        assert {m["name"] for m in node["members"]} == ORGS - {name}
        # real sockets with 0.2 s rounds: on a loaded machine a late ack leaves a member suspect at the last round
        assert all(m["state"] in ("alive", "suspect", "dead") for m in node["members"])
        assert len(node["field_digest"]) == 24
        levels = {k["key"]: k for k in node["threat_field"]}
        assert levels[C2]["level"] >= 0.5 and levels[C2]["organisations"] == 2   # the second wave corroborated it
        assert levels[C2]["reporters"] == ["northfield", "st-aurelia"]
    northfield = nodes["northfield"]["actions"]
    assert any(a.startswith("198.51.100.77 reported by 1 trusted peer (st-aurelia)")
               and "first seen here 2026-11-26 14:02 in northfield-eve.json" in a for a in northfield)
    assert any("dependency risk of nfh-ris-01 raised" in r for r in nodes["northfield"]["risk_raised"])
    assert nodes["st-aurelia"]["actions"] and all("(st-aurelia)" not in a for a in nodes["st-aurelia"]["actions"])


def test_risk_lists_the_assets_the_swarm_raised(client: TestClient, swarm_api: DemoApi) -> None:
    r = client.get("/api/v1/swarm/risk", headers=swarm_api.headers("viewer"))
    assert r.status_code == 200, r.text
    assets = {a["asset"]: a for a in r.json()["assets"]}
    assert {"sta-ris-01", "nfh-ris-01"} <= set(assets)
    assert all(a["factor"] > 1 and "depends on RegioImaging PACS Services" in a["why"] for a in assets.values())
    factors = [a["factor"] for a in r.json()["assets"]]
    assert factors == sorted(factors, reverse=True)


@pytest.mark.parametrize("path", ["/api/v1/swarm/status", "/api/v1/swarm/risk"])
def test_roles_are_enforced(client: TestClient, swarm_api: DemoApi, path: str) -> None:
    for headers, status in (({}, 401), ({"Authorization": "Bearer hs_unknown"}, 401),
                            (swarm_api.headers("peer"), 403)):
        r = client.get(path, headers=headers)
        assert r.status_code == status and r.headers["content-type"].startswith(PROBLEM), r.text
        assert r.json()["status"] == status
    for role in ("viewer", "analyst", "admin"):
        assert client.get(path, headers=swarm_api.headers(role)).status_code == 200


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "is corrupt"), ("[1, 2]", "is corrupt"), ('{"members": "everybody"}', "members"),
    (b"\xff\xfe\x00", "cannot be read"), (None, "no status.json")])
def test_a_broken_status_file_is_reported_for_its_node_only(client: TestClient, swarm_api: DemoApi,
                                                            content: str | bytes | None, says: str) -> None:
    status = swarm_api.workspace / "swarm" / "citylab" / "swarm" / "status.json"
    if content is None:
        status.unlink()
    elif isinstance(content, bytes):
        status.write_bytes(content)
    else:
        status.write_text(content, encoding="utf-8")
    nodes = nodes_of(client, swarm_api)
    assert set(nodes) == ORGS
    assert says in nodes["citylab"]["error"] and "swarm/citylab/swarm" in nodes["citylab"]["error"]
    assert nodes["citylab"]["members"] == [] and nodes["citylab"]["threat_field"] == []
    assert all(n["error"] is None for name, n in nodes.items() if name != "citylab")


def test_the_workspace_s_own_node_and_an_empty_workspace(demo_workspace: Path, tmp_path: Path) -> None:
    api = open_demo_api(demo_workspace, tmp_path / "ws")
    try:
        with TestClient(with_swarm(api.app, api.workspace)) as c:
            assert c.get("/api/v1/swarm/status", headers=api.headers("viewer")).json()["nodes"] == []
            # a node running in this workspace: its files in <workspace>/swarm/, an outbox that is no node
            shutil.copytree(demo_workspace / "swarm" / "regio-imaging" / "swarm", api.workspace / "swarm")
            (api.workspace / "swarm" / "outbox").mkdir()
            nodes = c.get("/api/v1/swarm/status", headers=api.headers("viewer")).json()["nodes"]
    finally:
        api.store.close()
    assert [(n["name"], n["folder"], n["error"]) for n in nodes] == [("regio-imaging", "swarm", None)]
    assert {k["key"]: k["reporters"] for k in nodes[0]["threat_field"]}[C2] == ["northfield", "st-aurelia"]


def test_openapi_documents_the_swarm_view(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    for path, model in (("/api/v1/swarm/status", "SwarmStatus"), ("/api/v1/swarm/risk", "SwarmRisk")):
        get = doc["paths"][path]["get"]
        assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert {"401", "403"} <= set(get["responses"])
    assert "reporters" in doc["components"]["schemas"]["FieldKey"]["properties"]


@pytest.fixture
def swarm_live(demo_workspace: Path, tmp_path: Path) -> Iterator[tuple[str, DemoApi]]:
    api = open_swarm_api(demo_workspace, tmp_path / "ws")
    port = free_port()
    with uvicorn_in_thread(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")):
        yield f"http://127.0.0.1:{port}", api
    api.store.close()


def set_states(workspace: Path, dead: str, stopped: dict[str, float] | None = None) -> None:
    """Every member alive in every node's status, except `dead` in its peers' views, each status just written by
    a node with 5 s rounds (running; stale after 25 s, whatever the test's pace), except `stopped` nodes' written
    that many seconds ago: a known picture to draw."""
    for path in (workspace / "swarm").glob("*/swarm/status.json"):
        status = json.loads(path.read_text(encoding="utf-8"))
        for m in status["members"]:
            m["state"] = "dead" if m["name"] == dead else "alive"
        status["written"] = time.time() - (stopped or {}).get(status["name"], 0.0)
        status["period"] = 5.0
        path.write_text(json.dumps(status), encoding="utf-8")


def test_a_status_older_than_a_few_rounds_is_stale(client: TestClient, swarm_api: DemoApi) -> None:
    """The demo's nodes stopped when the demo ended: their statuses are old; one written 13 minutes ago after the
    node stopped still says everybody is alive, and the view calls it stale (5 rounds, at least 5 s)."""
    set_states(swarm_api.workspace, dead="", stopped={"citylab": 13 * 60})
    nodes = nodes_of(client, swarm_api)
    assert nodes["citylab"]["stale"] is True and 779 <= nodes["citylab"]["age_seconds"] <= 800
    assert nodes["citylab"]["period"] == 5.0 and nodes["citylab"]["stale_after"] == 25.0
    assert all(m["state"] == "alive" for m in nodes["citylab"]["members"])   # what the file says, shown as stale
    assert all(n["stale"] is False and n["age_seconds"] < 25 for name, n in nodes.items() if name != "citylab")
    # without its round in the status, the node's .toml says it (the demo's: 0.2 s rounds; at least 5 s)
    status = swarm_api.workspace / "swarm" / "citylab" / "swarm" / "status.json"
    doc = json.loads(status.read_text(encoding="utf-8"))
    del doc["period"]
    status.write_text(json.dumps(doc), encoding="utf-8")
    citylab = nodes_of(client, swarm_api)["citylab"]
    assert citylab["period"] == 0.2 and citylab["stale_after"] == 5.0 and citylab["stale"] is True
    # a node that writes its round (swarm/runtime.py) is judged by it: 60 s rounds, stale after 300 s
    status.write_text(json.dumps({**doc, "period": 60.0}), encoding="utf-8")
    citylab = nodes_of(client, swarm_api)["citylab"]
    assert citylab["period"] == 60.0 and citylab["stale_after"] == 300.0 and citylab["stale"] is True
    status.write_text(json.dumps({**doc, "period": 60.0, "written": time.time() - 200}), encoding="utf-8")
    assert nodes_of(client, swarm_api)["citylab"]["stale"] is False


def test_dashboard_swarm_panel(swarm_live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = swarm_live
    set_states(api.workspace, dead="citylab", stopped={"medtech-support": 13 * 60})
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{base}/#token={api.tokens['viewer']}")
    page.wait_for_selector("#swarm .node-card", timeout=15_000)
    cards = page.locator("#swarm .node-card")
    assert {cards.nth(i).get_attribute("data-node") for i in range(cards.count())} == ORGS
    assert page.locator("#swarm .node-card .state.alive").count() == len(ORGS) - 2
    assert page.locator("#swarm .node-card[data-node='citylab'] .state.dead").count() == 1
    # a node whose status is 13 minutes old is greyed and says how old, not "alive"
    stopped = page.locator("#swarm .node-card.stale")
    assert stopped.count() == 1 and stopped.get_attribute("data-node") == "medtech-support"
    assert stopped.locator(".state.stale").count() == 1 and stopped.locator(".age").inner_text() == "13 min ago"
    assert "no status from medtech-support for 13 min" in stopped.get_attribute("title")
    assert page.evaluate("getComputedStyle(document.querySelector('#swarm .node-card.stale')).opacity") == "0.55"
    fresh = page.locator("#swarm .node-card:not(.stale) .age").all_inner_texts()
    assert len(fresh) == len(ORGS) - 1 and all(re.fullmatch(r"\d+ s ago", a) for a in fresh), fresh

    page.click("#swarm .node-card[data-node='northfield']")
    page.wait_for_selector("#swarm .node-title:has-text('northfield')")
    warning = page.locator("#swarm .warnings li.warning.high", has_text="198.51.100.77 reported by 1 trusted peer")
    assert warning.count() == 1 and "first seen here 2026-11-26 14:02" in warning.inner_text()
    bar = page.locator(f"#swarm .level-row[data-key='{C2}']")
    assert bar.locator(".level-fill.high").count() == 1 and bar.locator(".level-mark").count() == 2
    page.wait_for_selector("#swarm-risk-table td:has-text('nfh-ris-01')")
    page.locator("#swarm").screenshot(path=str(tmp_path / "swarm.png"))
    assert keep(tmp_path / "swarm.png").stat().st_size > 10_000
    page.click("#swarm .node-card[data-node='medtech-support']")
    page.wait_for_selector("#swarm .stale-note:has-text('stopped or hangs')")
    assert not problems, problems
    page.close()


def test_status_json_of_the_demo_has_what_the_view_reads(demo_workspace: Path) -> None:
    """The runtime's status file carries every field the view shows (a renamed field would show as empty)."""
    status = json.loads((demo_workspace / "swarm" / "northfield" / "swarm" / "status.json").read_text())
    shown = {"name", "members", "threat_field", "actions", "dropped", "risk_raised", "field_digest", "written"}
    assert shown <= set(status)
