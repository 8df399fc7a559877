"""The risk of each organisation over time (`risk.history`, table `risk_history`, migration 0010): written by
`risk assess` (whole assessments only) and by the agent's path (`assess_and_record`), served at
`/api/v1/risk/history`, drawn by the dashboard panel (real headless Chromium) and in the incident report, beside
the alert volume per detector."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from api_support import DemoApi, demo_workspace  # noqa: F401
from healthswarm.cli.main import app as cli
from healthswarm.detect.service import alert_volume, get_incident, list_alerts
from healthswarm.risk.attack_graph import build_attack_graph
from healthswarm.risk.history import assess_and_record, load_history, series
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory
from healthswarm.store.tables import metadata
from healthswarm.store.vulns import load_findings
from test_api_browser import browser, keep, live, open_dashboard  # noqa: F401

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo"
runner = CliRunner()
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("history") / "ws"
    for args in (["inventory", "load", str(DEMO / "ecosystem.yaml")], ["vulns", "import", str(DEMO / "advisories")],
                 ["vulns", "match"]):
        result = runner.invoke(cli, ["-w", str(ws), *args])
        assert result.exit_code == 0, result.output
    return ws


def assess(ws: Path, *args: str) -> dict:
    result = runner.invoke(cli, ["-w", str(ws), "risk", "assess", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_migration_0010_creates_the_table_the_code_uses(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert not [d for d in diff if "risk_history" in repr(d)], diff
    store.close()


def test_risk_assess_records_one_point_per_organisation_with_the_figures_it_prints(workspace: Path) -> None:
    store = Store.open(f"sqlite:///{workspace / 'healthswarm.db'}")
    with store.read() as conn:
        before = len(load_history(conn))
        organisations = {o.id for o in load_inventory(conn).organisations}
    printed = assess(workspace)
    with store.read() as conn:
        found = load_history(conn)[before:]
    assert {p.organisation for p in found} == organisations and len(found) == len(organisations) == 5
    assert len({p.assessed_at for p in found}) == 1 and {p.source for p in found} == {"risk assess"}
    for p in found:
        rows = [e for e in printed["exposures"] if e["organisation"] == p.organisation]
        worst = max(rows, key=lambda e: e["expected_harm"], default=None)
        assert p.expected_harm == (worst["expected_harm"] if worst else 0.0)
        assert p.profile == (worst["profile"] if worst else "")
        assert p.profiles == {e["profile"]: {"expected_harm": e["expected_harm"], "assets_at_risk": e["assets_at_risk"]}
                              for e in rows}
    northfield = next(p for p in found if p.organisation == "northfield")
    assert northfield.profile == "insider" and northfield.expected_harm > 1
    # a partial assessment is not a point of the history: it would not compare with the others
    assess(workspace, "--profile", "phishing")
    assess(workspace, "--org", "st-aurelia")
    with store.read() as conn:
        assert len(load_history(conn)) == before + len(found)
    store.close()


def record_three(store: Store) -> None:
    """Three assessments as the agent makes them: before the advisories were matched, after, and again."""
    with store.read() as conn:
        inventory, findings = load_inventory(conn), load_findings(conn)
    assert findings
    for i, found in enumerate(([], findings, findings)):
        assess_and_record(store, build_attack_graph(inventory, found), when=T0 + timedelta(hours=i))


def test_the_agents_path_and_the_api_give_the_same_series(live: tuple[str, DemoApi]) -> None:
    base, api = live
    record_three(api.store)
    r = httpx.get(f"{base}/api/v1/risk/history", headers=api.headers("viewer"), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    with api.store.read() as conn:
        stored = series(load_history(conn))
    assert body["points"] == 15 and list(body["organisations"]) == list(stored) == sorted(stored)
    for org, points in stored.items():
        assert [p["expected_harm"] for p in body["organisations"][org]] == [p.expected_harm for p in points]
        assert {p["source"] for p in body["organisations"][org]} == {"agent"}
    # matching the advisories raised no organisation's risk less than it was
    for points in stored.values():
        assert points[0].expected_harm <= points[1].expected_harm == points[2].expected_harm
    since = (T0 + timedelta(minutes=30)).isoformat()
    one = httpx.get(f"{base}/api/v1/risk/history", params={"organisation": "citylab", "since": since},
                    headers=api.headers("viewer"), timeout=30).json()
    assert list(one["organisations"]) == ["citylab"] and one["points"] == 2
    assert httpx.get(f"{base}/api/v1/risk/history?since=yesterday", headers=api.headers("viewer"),
                     timeout=10).status_code == 400


def test_dashboard_draws_one_line_per_organisation(live: tuple[str, DemoApi], browser,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    base, api = live
    record_three(api.store)
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    page.wait_for_selector("#risk-history .risk-line", timeout=15_000)
    lines = page.locator("#risk-history .risk-line")
    assert lines.count() == 5
    assert page.locator("#risk-history .risk-line[data-organisation='northfield'] circle").count() == 3
    page.locator("#risk-history-panel").screenshot(path=str(tmp_path / "risk-history.png"))
    keep(tmp_path / "risk-history.png")
    assert not problems, problems
    page.close()


def test_the_incident_report_plots_risk_and_alert_volume(live: tuple[str, DemoApi], tmp_path: Path) -> None:
    _, api = live
    record_three(api.store)
    with api.store.read() as conn:
        incident = next(i for i in list_alerts(conn, limit=500)[0] if i.get("incident_id"))["incident_id"]
        volume = alert_volume(conn)
        assert get_incident(conn, incident) is not None
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["-w", str(api.workspace), "report", "incident", incident, "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    images = dict(re.findall(r"<h2>([^<]+)</h2><img alt='[^']+' src='data:image/png;base64,([^']+)'>", page))
    assert set(images) == {"Risk of each organisation over time", "Alert volume per detector"}
    for data in images.values():
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert volume["detectors"]   # the demo's alerts: the same figures the panel shows
