"""The Discovered view (`/api/v1/discovered`, `inventory.discover.service`) on the demo workspace: the same diff
as `inventory discover`, accept through the merge (all or nothing), ignore remembered; and the dashboard panel in
a real headless Chromium, accepting a device that was taken out of the inventory.

With `HEALTHSWARM_DOC_IMAGES=docs/img` the screenshot docs/discover.md shows is copied there."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.testclient import TestClient

from api_support import DemoApi, client, demo_api, demo_workspace  # noqa: F401
from healthswarm.inventory.discover.service import discover_stored
from healthswarm.model import Inventory
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory, replace_inventory
from test_api_browser import browser, keep, live, open_dashboard  # noqa: F401

WORKSTATION, ADDRESS = "sta-ws-03", "10.10.1.103"   # seen in the demo's logs (the phishing victim)
DEVICE = f"device:{ADDRESS}"


def forget(store: Store, asset: str) -> Inventory:
    """Take `asset` (and what names it) out of the stored inventory, as an incomplete inventory would lack it."""
    with store.read() as conn:
        inv = load_inventory(conn)
    reduced = Inventory(inv.organisations, inv.zones, tuple(a for a in inv.assets if a.id != asset),
                        tuple(f for f in inv.flows if asset not in (f.source, f.target)),
                        tuple(d for d in inv.dependencies if asset not in (d.source, d.target)))
    with store.transaction() as conn:
        replace_inventory(conn, reduced)
    return reduced


def asset_ids(store: Store) -> set[str]:
    with store.read() as conn:
        return {a.id for a in load_inventory(conn).assets}


def test_the_view_is_the_diff_inventory_discover_prints(client: TestClient, demo_api: DemoApi) -> None:
    r = client.get("/api/v1/discovered", headers=demo_api.headers("viewer"))
    assert r.status_code == 200, r.text
    view = r.json()
    _, report, _ = discover_stored(demo_api.store)
    assert view["summary"] == report.summary()
    s, c = view["summary"], view["counts"]
    assert c["flow"]["shown"] + c["flow"]["ignored"] == s["undeclared_flows"] == 7
    assert c["silent"]["shown"] + c["silent"]["ignored"] == s["silent_assets"] == 78
    assert c["device"]["shown"] == s["undeclared_devices"] == 0
    pump = next(i for i in view["items"] if i["title"] == "sta-pump-02 → sta-fs-01 smb/445")
    assert pump["severity"] == "high" and pump["acceptable"] and pump["detail"]["attack_like"]
    internet = [i for i in view["items"] if i["section"] == "flow" and "internet" in i["title"]]
    assert internet and all(not i["acceptable"] and "Internet" in i["why_not"] for i in internet)
    assert client.get("/api/v1/discovered").status_code == 401


def test_accept_merges_the_device_and_the_next_diff_no_longer_lists_it(client: TestClient,
                                                                       demo_api: DemoApi) -> None:
    store, analyst = demo_api.store, demo_api.headers("analyst")
    forget(store, WORKSTATION)
    view = client.get("/api/v1/discovered", headers=analyst).json()
    device = next(i for i in view["items"] if i["key"] == DEVICE)
    assert device["acceptable"] and device["detail"]["zone"] == "st-aurelia-corporate"
    assert client.post("/api/v1/discovered/accept", json={"keys": [DEVICE]},
                       headers=demo_api.headers("viewer")).status_code == 403
    # a flow of the undeclared device alone: the merge refuses it (its end is no asset yet), nothing changes
    rdp = next(i["key"] for i in view["items"] if i["key"].startswith(f"flow:{ADDRESS}>") and "rdp" in i["title"])
    before = asset_ids(store)
    r = client.post("/api/v1/discovered/accept", json={"keys": [rdp]}, headers=analyst)
    assert r.status_code == 400 and "unknown asset 'disc-10-10-1-103'" in r.json()["detail"]
    assert asset_ids(store) == before and not list((demo_api.workspace / "discover" / "accepted").iterdir())

    r = client.post("/api/v1/discovered/accept", json={"keys": [DEVICE, rdp]}, headers=analyst)
    assert r.status_code == 200, r.text
    merged = r.json()["merged"]
    assert merged["added_assets"] == ["disc-10-10-1-103"] and merged["added_flows"] == 1
    assert asset_ids(store) == before | {"disc-10-10-1-103"}
    assert (demo_api.workspace / "discover" / "accepted" / merged["patch"]).read_text().count("disc-10-10-1-103") >= 2
    after = client.get("/api/v1/discovered", headers=analyst).json()
    keys = {i["key"] for i in after["items"]}
    assert DEVICE not in keys and rdp not in keys and after["summary"]["undeclared_devices"] == 0
    _, report, _ = discover_stored(store)
    assert report.summary() == after["summary"]   # what `inventory discover` now prints
    trail = client.get("/api/v1/audit", headers=demo_api.headers("admin")).json()
    assert trail[0]["action"] == "discovered.accept" and trail[0]["after"]["keys"] == [DEVICE, rdp]


def test_ignore_is_remembered_and_bad_choices_change_nothing(client: TestClient, demo_api: DemoApi) -> None:
    analyst = demo_api.headers("analyst")
    r = client.post("/api/v1/discovered/ignore", json={"keys": ["silent:nfh-dc-01"]}, headers=analyst)
    assert r.status_code == 200, r.text
    assert "silent:nfh-dc-01" not in {i["key"] for i in r.json()["items"]}
    assert r.json()["counts"]["silent"] == {"shown": 77, "ignored": 1}
    again = client.get("/api/v1/discovered", headers=analyst).json()
    assert again["ignored"][0]["key"] == "silent:nfh-dc-01" and again["ignored"][0]["by"] == "test-analyst"
    assert again["summary"]["silent_assets"] == 78   # ignoring hides, it does not change what was seen

    for keys, words in ((["silent:nfh-dc-01"], "no item of the Discovered view"), (["nonsense"], "no item"),
                        (["silent:nfh-dc-02"], "retiring an asset is an inventory edit")):
        r = client.post("/api/v1/discovered/accept", json={"keys": keys}, headers=analyst)
        assert r.status_code == 400 and words in r.json()["detail"], r.text
    assert client.post("/api/v1/discovered/ignore", json={"keys": []}, headers=analyst).status_code == 400
    assert client.get("/api/v1/discovered", headers=analyst).json()["counts"]["silent"] == {"shown": 77, "ignored": 1}


def test_dashboard_discovered_view_accepts_and_ignores(live: tuple[str, DemoApi], browser,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path) -> None:
    base, api = live
    forget(api.store, WORKSTATION)
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    problems = open_dashboard(page, base, api.tokens["analyst"])
    row = page.locator(f"#discovered tr[data-key='{DEVICE}']")
    row.wait_for(timeout=15_000)
    assert "Microsoft Windows" in row.inner_text()
    assert page.locator("#discovered [data-section='flow'] tr[data-key]").count() == 8
    page.locator("#discovered-panel").screenshot(path=str(tmp_path / "discovered.png"))
    keep(tmp_path / "discovered.png")

    row.locator("button.accept").click()
    page.wait_for_selector("#discovered-msg:has-text('Accepted')")
    assert ": 1 new asset, 0 updated, " in page.locator("#discovered-msg").inner_text()  # a count of one, singular
    assert page.locator(f"#discovered tr[data-key='{DEVICE}']").count() == 0
    assert "disc-10-10-1-103" in asset_ids(api.store)
    silent = page.locator("#discovered [data-section='silent'] tr[data-key]").first
    key = silent.get_attribute("data-key")
    silent.locator("button.ignore").click()
    page.wait_for_selector("#discovered-msg:has-text('Ignored')")
    assert page.locator(f"#discovered tr[data-key='{key}']").count() == 0
    listed = httpx.get(f"{base}/api/v1/discovered", headers=api.headers("viewer"), timeout=30).json()
    assert key in {i["key"] for i in listed["ignored"]}
    assert not problems, problems
    page.close()
