"""SigmaHQ regression data: for every case, the rule named in `info.yml` must fire on the case's events.

The EVTX files are read through the real ingest chain (`get_format("evtx")`) when the parser is
there, else the evtx_dump JSON beside them is flattened by the test helper. All rules of all SigmaHQ
folders are loaded (other rules may fire too; the named one must).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import SHARED_DATA, shared
from healthswarm.detect.sigma import SigmaDetector, event_view, load_rules
from sigma_support import evtx_events, evtx_parser_available, json_events


def cases() -> list[tuple[str, Path]]:
    base = SHARED_DATA / "sigma" / "regression_data"
    out = []
    for info in sorted(base.rglob("info.yml")):
        data = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
        tests = [t for t in data.get("regression_tests_info") or [] if t.get("type") == "evtx"]
        if tests:
            out.append((str(data["rule_metadata"][0]["id"]), info.parent))
    return out


CASES = cases()


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> SigmaDetector:
    base = shared("sigma")
    ruleset = load_rules(sorted(base.glob("rules*")), cache_dir=tmp_path_factory.mktemp("sigma-cache"))
    return SigmaDetector(ruleset)


def events_of(folder: Path) -> list[Any]:
    if evtx_parser_available():
        return [e for f in sorted(folder.glob("*.evtx")) for e in evtx_events(f)]
    return [e for f in sorted(folder.glob("*.json")) for e in json_events(f)]


def test_regression_data_is_there() -> None:
    shared("sigma", "regression_data")
    assert len(CASES) >= 100


@pytest.mark.slow
@pytest.mark.parametrize(("rule_id", "folder"), CASES, ids=[c[1].name for c in CASES])
def test_named_rule_fires(detector: SigmaDetector, rule_id: str, folder: Path) -> None:
    events = events_of(folder)
    assert events, f"{folder}: no events read"
    rules = {r.meta.id: r for r in detector.engine.rules}
    if rule_id not in rules:
        reasons = [str(p) for p in detector.ruleset.problems if rule_id in str(p)]
        pytest.fail(f"rule {rule_id} did not compile: {reasons or 'not found in the rule folders'}")
    fired: dict[str, list[str]] = {}
    for event in events:
        for alert in detector.detect(event):
            fired.setdefault(alert.rule_id, []).append(f"{alert.events[0].source}#{alert.events[0].record}")
    if rule_id not in fired:
        keys = sorted({event_view(e)[1] for e in events}, key=str)
        pytest.fail(f"{folder.name}: rule {rule_id} did not fire on {len(events)} event(s). Its routes: "
                    f"{rules[rule_id].routes}; the events' route keys: {keys}; rules that fired: {sorted(fired)}")
    source = fired[rule_id][0]
    assert str(folder) in source, "the alert names the event's file and record"
