"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright through its executable
path; no browser download), against uvicorn on a free loopback port: it loads without console errors, the map
renders, clicking an incident opens it, an analyst moves it, and a change made elsewhere arrives live (SSE).
Also: a plain `chromium --headless --screenshot --virtual-time-budget` of the dashboard finishes (the live
stream opens after the first render), the attack-path form starts from real values, the asset panel names
criticality levels with a readable incident link, the ATT&CK heat map fits at 1,600 px, and the map bundles its
links and shows a selected asset's own.

Screenshots go to the test's temporary folder; with `HEALTHSWARM_DOC_IMAGES=docs/img` the ones docs/api.md shows
are copied there too (`HEALTHSWARM_DOC_IMAGES=docs/img pytest tests/test_api_browser.py tests/test_api_swarm.py`)."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
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
# the plain screenshot command of docs/api.md, as written there (before the output file and the address)
SCREENSHOT_FLAGS = ("--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,2400 "
                    "--virtual-time-budget=5000")
DOCS = Path(__file__).resolve().parent.parent / "docs"


def keep(shot: Path) -> Path:
    """Copy a screenshot the docs show to $HEALTHSWARM_DOC_IMAGES (docs/img) when that is set."""
    target = os.environ.get("HEALTHSWARM_DOC_IMAGES")
    if target:
        shutil.copy(shot, Path(target) / shot.name)
    return shot


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def watch(page):  # type: ignore[no-untyped-def]
    """Console errors and page errors of `page`, collected as they happen."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def open_dashboard(page, base: str, token: str):  # type: ignore[no-untyped-def]
    """The dashboard rendered; the live stream is opened by a first move of the pointer (as a person does)."""
    problems = watch(page)
    page.goto(f"{base}/#token={token}")
    page.wait_for_selector("#live:has-text('standby')", timeout=15_000)
    page.mouse.move(10, 10)
    page.wait_for_selector("#live.on", timeout=15_000)
    return problems


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
    problems = open_dashboard(page, base, api.tokens["analyst"])

    assets = page.locator("#map circle.asset")
    assert assets.count() >= 100
    assert page.locator("#map circle.asset.sev4").count() >= 1  # assets of the demo's critical incidents
    assert page.locator("#map path.bundle").count() >= 1
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
    page.wait_for_selector("#live:has-text('standby')", timeout=15_000)
    page.keyboard.press("Shift")   # a key opens the live stream as a pointer does
    page.wait_for_selector("#live.on", timeout=15_000)
    assert page.locator("#state-select").count() == 0  # a viewer gets no state control
    page.close()


def test_a_plain_headless_screenshot_finishes(live: tuple[str, DemoApi], tmp_path: Path) -> None:
    """The command of docs/api.md: before, the never-ending live stream kept the page busy and Chromium never took
    the picture. The stream now opens after the first render, on a person's first move or after 15 s."""
    base, api = live
    if not CHROMIUM.exists():
        service_unavailable("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    documented = (DOCS / "api.md").read_text(encoding="utf-8")
    assert f"chromium {SCREENSHOT_FLAGS} \\\n" in documented, "docs/api.md shows another command than the test runs"
    shot = tmp_path / "dashboard-headless.png"
    done = subprocess.run([str(CHROMIUM), *SCREENSHOT_FLAGS.split(), f"--screenshot={shot}",
                           f"{base}/#token={api.tokens['viewer']}"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file() and png_size(shot) == (1600, 2400)
    assert shot.stat().st_size > 100_000, "a blank page"   # the rendered map and board, not an empty frame
    keep(shot)


def test_attack_path_form_starts_from_real_values(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    suggested = httpx.get(f"{base}/api/v1/risk/paths/suggested", headers=api.headers("viewer"), timeout=30).json()
    assert suggested["from"] == "phishing@st-aurelia" and suggested["to"] in suggested["targets"]
    assert suggested["incident"] and suggested["incident"] in suggested["why"]
    assert set(suggested["profiles"]) >= {"phishing", "insider", "external"}
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    page.wait_for_function("document.getElementById('path-to').value !== ''")
    assert page.input_value("#path-from") == suggested["from"] and page.input_value("#path-to") == suggested["to"]
    # labels say what a field is; the placeholders only give a value's shape, never a look-alike value
    assert page.locator("label[for='path-from']").inner_text().strip().startswith("Attack path from")
    assert page.locator("label[for='path-to']").count() == 1
    assert page.get_attribute("#path-from", "placeholder") == "profile[@organisation]"
    assert page.locator("#path-from-list option").count() >= 5 and page.locator("#path-to-list option").count() >= 5
    page.click("#path-form button[type=submit]")
    page.wait_for_selector("#map polyline.attack-path", timeout=20_000)
    assert page.locator("#path-form :invalid").count() == 0
    assert re.match(r"(1 path|\d+ paths), most likely p=", page.inner_text("#path-status"))
    page.locator("#map-panel").screenshot(path=str(tmp_path / "attack-path.png"))
    keep(tmp_path / "attack-path.png")
    assert not problems, problems
    page.close()


CONTRAST = """(sel) => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => { const [r, g, b] = rgb(c).map(lin);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const fg = getComputedStyle(document.querySelector(sel)).color;
  let node = document.querySelector(sel), bg = "rgba(0, 0, 0, 0)";
  while (node && /rgba\\(.*, 0\\)$|transparent/.test(bg)) {
    bg = getComputedStyle(node).backgroundColor; node = node.parentElement; }
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_asset_panel_names_levels_and_its_links_read_well(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    asset = httpx.get(f"{base}/api/v1/assets/sta-ehr-01", headers=api.headers("viewer"), timeout=10).json()
    assert asset["criticality_levels"] == {"safety": "high", "confidentiality": "critical", "availability": "critical"}
    assert asset["incidents"]
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    page.click("#map circle.asset[data-asset-id='sta-ehr-01']")
    page.wait_for_selector("#detail .criticality")
    levels = page.locator("#detail .criticality .level")
    assert [levels.nth(i).inner_text() for i in range(levels.count())] == ["high", "critical", "critical"]
    assert not re.search(r"safety \d", page.inner_text("#detail"))
    assert page.evaluate(CONTRAST, "#detail a.incident-link") >= 4.5   # WCAG AA for text
    page.locator("#detail-panel").screenshot(path=str(tmp_path / "asset-panel.png"))
    keep(tmp_path / "asset-panel.png")
    page.click("#detail a.incident-link")
    page.wait_for_selector(f".incident-title:has-text('{asset['incidents'][0]['id']}')")
    assert not problems, problems
    page.close()


def test_attack_heat_map_fits_at_1600_px(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    box = page.locator("#attack")
    assert page.locator("#attack .tactic").count() >= 10   # more tactics than fit in one row
    assert page.evaluate("(() => { const a = document.getElementById('attack'); "
                         "return a.scrollWidth <= a.clientWidth; })()")
    right = box.bounding_box()["x"] + box.bounding_box()["width"]
    tactics = page.locator("#attack .tactic")
    assert all(tactics.nth(i).bounding_box()["x"] + tactics.nth(i).bounding_box()["width"] <= right + 0.5
               for i in range(tactics.count()))
    assert page.evaluate("document.documentElement.scrollWidth") <= 1600
    box.screenshot(path=str(tmp_path / "attack.png"))
    keep(tmp_path / "attack.png")
    assert not problems, problems
    page.close()


def test_map_bundles_links_and_shows_an_asset_s_own(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    eco = httpx.get(f"{base}/api/v1/ecosystem", headers=api.headers("viewer"), timeout=30).json()
    where = {a["id"]: a for a in eco["assets"]}
    links = [d for d in eco["dependencies"] + eco["flows"] if d["source"] in where and d["target"] in where]
    zone_pairs = {tuple(sorted((where[d["source"]]["zone"], where[d["target"]]["zone"]))) for d in links
                  if where[d["source"]]["organisation"] == where[d["target"]]["organisation"]
                  and where[d["source"]]["zone"] != where[d["target"]]["zone"]}
    org_pairs = {tuple(sorted((where[d["source"]]["organisation"], where[d["target"]]["organisation"]))) for d in links
                 if where[d["source"]]["organisation"] != where[d["target"]]["organisation"]}
    hot = {a["id"] for a in eco["assets"] if a["incident"]}
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    # one arc per pair of zones and per pair of organisations; single lines only where both ends are in incidents
    assert page.locator("#map path.bundle.zones").count() == len(zone_pairs)
    assert page.locator("#map path.bundle.orgs").count() == len(org_pairs) >= 3
    assert page.locator("#map line.dep").count() == sum(d["source"] in hot and d["target"] in hot for d in links)
    counted = page.evaluate("[...document.querySelectorAll('#map path.bundle')]"
                            ".reduce((n, p) => n + +p.dataset.links, 0)")
    inside = sum(where[d["source"]]["zone"] == where[d["target"]]["zone"] for d in links)
    assert counted + inside == len(links)
    page.locator("#map-panel").screenshot(path=str(tmp_path / "map.png"))
    keep(tmp_path / "map.png")

    own = [d for d in links if "sta-ehr-01" in (d["source"], d["target"])]
    page.click("#map circle.asset[data-asset-id='sta-ehr-01']")
    page.wait_for_selector("#own-links line.dep.own")
    assert page.locator("#own-links line.dep.own").count() == len(own) >= 5
    partners = {d["target"] if d["source"] == "sta-ehr-01" else d["source"] for d in own}
    assert page.locator("#map circle.asset.partner").count() == len(partners)
    assert page.locator("#map.focus").count() == 1
    page.locator("#map-panel").screenshot(path=str(tmp_path / "map-asset.png"))
    keep(tmp_path / "map-asset.png")
    page.locator(".card[data-incident-id]").first.click()   # an incident clears the asset's own links
    page.wait_for_selector("#map:not(.focus)")
    assert page.locator("#own-links line").count() == 0
    assert not problems, problems
    page.close()


def test_alert_volume_per_detector(live: tuple[str, DemoApi], browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, api = live
    r = httpx.get(f"{base}/api/v1/alerts/volume?buckets=48", headers=api.headers("viewer"), timeout=30)
    assert r.status_code == 200, r.text
    volume = r.json()
    summary = httpx.get(f"{base}/api/v1/summary", headers=api.headers("viewer"), timeout=30).json()
    assert sum(d["total"] for d in volume["detectors"]) == summary["alerts"]   # every stored alert, once
    assert all(sum(d["counts"]) == d["total"] and len(d["counts"]) == len(volume["buckets"])
               for d in volume["detectors"])
    assert 2 <= len(volume["buckets"]) <= 48 and volume["bucket_seconds"] == 1800   # the demo's alerts span ~15 h
    assert volume["detectors"][0]["detector"] == "sigma"
    one = httpx.get(f"{base}/api/v1/alerts/volume?buckets=1", headers=api.headers("viewer"), timeout=10)
    assert one.status_code == 400
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    page.wait_for_selector("#volume .vol-row[data-detector]")
    rows = page.locator("#volume .vol-row[data-detector]")
    assert [rows.nth(i).get_attribute("data-detector") for i in range(rows.count())] == \
        [d["detector"] for d in volume["detectors"]]
    shown = page.evaluate("[...document.querySelectorAll('#volume .vol-cell')]"
                          ".reduce((n, c) => n + +c.dataset.count, 0)")
    assert shown == summary["alerts"]
    page.locator("#volume-panel").screenshot(path=str(tmp_path / "alert-volume.png"))
    keep(tmp_path / "alert-volume.png")
    assert not problems, problems
    page.close()
