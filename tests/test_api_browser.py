"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright through its executable
path; no browser download), against uvicorn on a free loopback port: it loads without console errors, the map
renders, clicking an incident opens it, an analyst moves it, and a change made elsewhere arrives live (SSE).
Screenshots go to the test's temporary folder."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api_support import DemoApi, demo_workspace, open_demo_api  # noqa: F401
from conftest import service_unavailable, uvicorn_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(demo_workspace: Path, tmp_path: Path) -> Iterator[tuple[str, DemoApi]]:
    api = open_demo_api(demo_workspace, tmp_path / "ws", stream_poll=0.2)
    port = free_port()
    with uvicorn_in_thread(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")):
        yield f"http://127.0.0.1:{port}", api
    api.store.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        service_unavailable("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_dashboard_map_board_detail_and_live_updates(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{base}/#token={api.tokens['analyst']}")
    page.wait_for_selector("#live.on", timeout=15_000)

    assets = page.locator("#map circle.asset")
    assert assets.count() >= 100
    assert page.locator("#map circle.asset.sev4").count() >= 1  # assets of the demo's critical incidents
    assert page.locator("#map line.dep").count() >= 1
    assert page.locator(".tactic .tech").count() >= 5  # the ATT&CK heat map
    assert page.locator("#exposure .bar").count() >= 4
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    cards = page.locator(".card[data-incident-id]")
    assert cards.count() >= 1
    # an incident on inventory assets (some, like an ADT flood from an unknown facility, name none)
    listed = httpx.get(f"{base}/api/v1/incidents", headers=api.headers("analyst"), timeout=10).json()["items"]
    incident = next(i["id"] for i in listed if i["assets"])
    page.locator(f".card[data-incident-id='{incident}']").click()
    page.wait_for_selector(f".incident-title:has-text('{incident}')")
    assert page.locator(".timeline li").count() >= 1
    assert page.locator("#map circle.asset.sel").count() >= 1
    page.screenshot(path=str(tmp_path / "incident.png"), full_page=True)

    page.select_option("#state-select", "contained")
    page.click("#detail button")
    page.wait_for_selector("#incident-state:has-text('contained')")

    other = cards.nth(1).get_attribute("data-incident-id") if cards.count() > 1 else incident
    r = httpx.post(f"{base}/api/v1/incidents/{other}/state", json={"state": "triaged"},
                   headers=api.headers("admin"), timeout=10)
    assert r.status_code == 200, r.text
    page.wait_for_selector(f".card[data-incident-id='{other}']:has-text('triaged')", timeout=10_000)
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    assert not problems, problems
    assert all((tmp_path / f).stat().st_size > 10_000 for f in ("dashboard.png", "incident.png", "live.png"))
    page.close()


def test_dashboard_without_token_asks_for_one(live: tuple[str, DemoApi], browser) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token-input", "hs_wrong")
    page.click("#login button")
    page.wait_for_selector("#login-error:has-text('unknown')")
    page.fill("#token-input", api.tokens["viewer"])
    page.click("#login button")
    page.wait_for_selector("#live.on", timeout=15_000)
    assert page.locator("#state-select").count() == 0  # a viewer gets no state control
    page.close()
