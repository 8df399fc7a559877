"""The dashboard's words, read in Debian's Chromium against the demo workspace: its header says what
`healthswarm status` says, a count of one is singular ("1 alert"), and every time it shows is marked UTC where
the page does not say so nearby. Skips without Chromium (fails in CI, as tests/test_api_browser.py does)."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api_support import DemoApi, demo_workspace, open_demo_api  # noqa: F401
from conftest import service_unavailable, uvicorn_in_thread
from healthswarm.detect.learn.card import CARD_FILE, ModelCard

CHROMIUM = Path("/usr/bin/chromium")
# a count of one with a plural noun, in text or in a tooltip
ONE_PLURAL = re.compile(r"(?<![\d.,])1 (alerts|findings|assets|incidents|warnings|items|paths|steps|logs)\b")


@pytest.fixture
def live(demo_workspace: Path, tmp_path: Path) -> Iterator[tuple[str, DemoApi]]:
    api = open_demo_api(demo_workspace, tmp_path / "ws")
    shutil.copytree(demo_workspace / "swarm", tmp_path / "ws" / "swarm")  # the demo's nodes, for the Swarm panel
    model = tmp_path / "ws" / "models" / "flows-rf"  # a model card, for the Models panel
    model.mkdir(parents=True)
    ModelCard(kind="flow-classifier", name="flows-rf", classes=["benign", "attack"]).write(model / CARD_FILE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with uvicorn_in_thread(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")):
        yield f"http://127.0.0.1:{port}", api
    api.store.close()


@pytest.fixture
def page(live: tuple[str, DemoApi]) -> Iterator[object]:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        service_unavailable("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("the playwright Python package is not installed")
    base, api = live
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.goto(f"{base}/#token={api.tokens['analyst']}")
        tab.wait_for_selector("#counts span")
        tab.wait_for_selector(".tactic .tech")
        yield tab
        browser.close()


def _words(page) -> str:  # type: ignore[no-untyped-def]
    """Everything a person reads on the page: its text and its tooltips."""
    return str(page.evaluate("""() => document.body.innerText + "\\n" + [...document.querySelectorAll("[title]")]
        .map((n) => n.getAttribute("title")).join("\\n") + "\\n" + [...document.querySelectorAll("svg title")]
        .map((n) => n.textContent).join("\\n")"""))


def test_header_says_what_status_says(live: tuple[str, DemoApi], page) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    s = httpx.get(f"{base}/api/v1/summary", headers=api.headers("viewer"), timeout=10).json()
    shown = [t.strip() for t in page.locator("#counts span").all_text_contents()]
    assert shown == [f"{s['open_incidents']} open incidents of {s['incidents']}",
                     f"{s['open_by_severity']['critical']} of them critical",
                     f"{s['alerts']} alerts, {s['alerts_in_incidents']} of them in incidents",
                     f"{s['assets']} assets · {s['findings']} findings"]


def test_a_count_of_one_is_singular(page) -> None:  # type: ignore[no-untyped-def]
    # the demo's heat map has techniques seen in one alert: their tooltips read "1 alert"
    assert page.locator(".tech[title$=': 1 alert']").count() >= 1
    page.locator(".card[data-incident-id]").first.click()
    page.wait_for_selector(".incident-title")
    page.wait_for_selector("#swarm .node-card")
    found = ONE_PLURAL.findall(_words(page))
    assert not found, found


def test_times_say_they_are_utc(page) -> None:  # type: ignore[no-untyped-def]
    page.locator(".card[data-incident-id]").first.click()
    page.wait_for_selector(".incident-title")
    assert page.locator("#detail h4", has_text="Timeline (UTC)").count() == 1
    page.wait_for_selector("#case-list .case-row")
    row = page.locator("#case-list .case-row").first.inner_text()
    assert re.search(r"aware since \d{4}-\d\d-\d\d \d\d:\d\d UTC", row), row
    page.locator("#case-list .case-row").first.click()
    page.wait_for_selector("#case-detail .case-title")
    assert page.locator("#case-detail th", has_text="at (UTC)").count() == 1
    page.wait_for_selector("#models .model-card")
    trained = page.locator("#models .model-card p.muted").first.inner_text()
    assert re.match(r"trained \d{4}-\d\d-\d\d \d\d:\d\d UTC", trained), trained


def test_map_legend_names_what_red_means(page) -> None:  # type: ignore[no-untyped-def]
    # red links: both ends in open incidents, as each red line's tooltip says
    assert "red: both ends in open incidents" in page.locator("#legend").inner_text()
