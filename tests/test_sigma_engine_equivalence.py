"""The optimised engine matches exactly what the straightforward evaluation matches, on the shared samples.

Every SigmaHQ rule of the shared data (rules*, all products) and every rule of the default packs, over the
EVTX attack samples and the SigmaHQ regression EVTX files read by the real parser: for each event the rules
that `SigmaEngine.match_view` returns (routing, field index, Aho-Corasick, triggers, regex and glob guards,
per-value memo) are the rules that `reference.reference_matches` returns (every rule, plain predicates).
The engine sees each event twice, so the per-value memo answers the second pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import shared
from healthswarm.detect.sigma import SigmaEngine, event_view, load_rules
from healthswarm.detect.sigma.packs import DEFAULT_PACKS, pack_paths
from healthswarm.detect.sigma.reference import reference_matches, reference_rules
from healthswarm.ingest.formats.evtx import FORMAT
from healthswarm.model import Event

#: Every n-th event of the samples (the reference tests all rules on each: ~250 events/s).
STEP = 4


def sample_events() -> list[Event]:
    files = sorted(shared("windows", "evtx-attack-samples").rglob("*.evtx"))
    files += sorted(shared("sigma", "regression_data").rglob("*.evtx"))
    events = []
    for path in files:
        with path.open("rb") as stream:
            events += [e for e in FORMAT.parse(stream, str(path)) if isinstance(e, Event)]
    return events[::STEP]


@pytest.mark.slow
@pytest.mark.parametrize("rules", ["shared-sigma", "default-packs"])
def test_engine_matches_the_reference(tmp_path: Path, rules: str) -> None:
    if rules == "shared-sigma":
        paths = sorted(shared("sigma").glob("rules*"))
    else:
        paths = pack_paths(list(DEFAULT_PACKS), tmp_path)
    engine = SigmaEngine(load_rules(paths))
    reference = reference_rules(engine)
    events = sample_events()
    assert len(events) > 900
    expected = [reference_matches(reference, *event_view(event)) for event in events]
    assert sum(map(len, expected)) > 100  # the samples are attacks: many rules fire
    for _ in range(2):
        for event, wanted in zip(events, expected, strict=True):
            assert engine.match_view(*event_view(event)) == wanted, f"{event.source}#{event.record}"
