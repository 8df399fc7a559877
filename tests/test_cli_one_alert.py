"""An incident of one alert, as the live demo's retro-hunt opens at Northfield: `status`, `incidents show` and the
HTML report say "1 alert", as the dashboard does, never "1 alerts"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from healthswarm.cli.main import app
from healthswarm.model import Alert, EventRef
from healthswarm.model.incident import Incident, IncidentState, Stage
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts, save_incidents

T0 = datetime(2026, 11, 26, 14, 2, tzinfo=UTC)


def test_one_alert_is_singular(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    store = Store.open(f"sqlite:///{ws / 'healthswarm.db'}")
    alert = Alert(detector="watchlist", rule_id="watchlist-retro:ipv4:198.51.100.77", title="Retro-hunt",
                  level="medium", timestamp=T0, events=(EventRef("northfield-eve.json", 1, "k1"),))
    incident = Incident(id="INC-one", title="Retro-hunt: ipv4 198.51.100.77", first_seen=T0, last_seen=T0,
                        state=IncidentState.NEW, stage=Stage.RECONNAISSANCE, severity=2, alert_ids=[alert.id])
    with store.transaction() as conn:
        save_alerts(conn, [alert], {alert.id: incident.id})
        save_incidents(conn, [incident])
    store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["-w", str(ws), "status"]).output
    assert "1 open incident of 1 · 1 alert, 1 of them in incidents" in out, out
    out = runner.invoke(app, ["-w", str(ws), "incidents", "show", "INC-one"]).output
    assert out.splitlines()[1].endswith("UTC · 1 alert"), out
    report = tmp_path / "one.html"
    result = runner.invoke(app, ["-w", str(ws), "report", "incident", "INC-one", "-o", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert " · 1 alert · " in html and "1 alerts" not in html
