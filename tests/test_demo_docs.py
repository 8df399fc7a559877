"""docs/demo.md quotes figures that were measured elsewhere: they must be the recorded ones, not an older run's."""

from __future__ import annotations

import json
import re

from conftest import ROOT

DEMO_MD = (ROOT / "docs" / "demo.md").read_text(encoding="utf-8")


def _row(label: str) -> str:
    """The figure cell of the docs table row that starts with `label`."""
    found = re.search(rf"^\| {re.escape(label)}[^|]*\| ([^|]+) \|", DEMO_MD, re.MULTILINE)
    assert found, f"docs/demo.md has no table row {label!r}"
    return found.group(1).strip()


def test_peer_latency_figures_are_the_recorded_run() -> None:
    recorded = json.loads((ROOT / "bench" / "results" / "agent_peer.json").read_text(encoding="utf-8"))["figures"]
    latency = recorded["alert_to_peer_incident"]
    assert _row("alert at A → incident at B, median") == f"{latency['median']:g} s"
    assert _row("alert at A → incident at B, p90") == f"{latency['p90']:g} s"
    assert f"min {latency['min']:.1f} s, max {latency['max']:.2f} s" in DEMO_MD
    assert _row("line written → alert at A, median") == f"{recorded['line_to_alert_median']:g} s"
    assert f"load average {recorded['load_average_1min_at_end']:g} at its end" in DEMO_MD
    # the step-10 narrative rounds the same run
    assert f"{latency['median']:g} s at the median (p90 {latency['p90']:g} s)" in DEMO_MD
