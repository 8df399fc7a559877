"""The swarm step of the demo: St. Aurelia's warning reaches every organisation of the ecosystem."""

from __future__ import annotations

import pytest

from healthswarm.demo.run import STEPS, DemoRun
from healthswarm.store import Store
from healthswarm.swarm.demo import demo_step


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    workspace = tmp_path_factory.mktemp("ws")
    run = DemoRun(store=Store.open(f"sqlite:///{workspace / 'healthswarm.db'}"), workspace=workspace)
    wanted = ("Load the reference ecosystem", "Ingest the scenario's logs",
              "Detect: Sigma, sensors, baselines, clinical analytics, patient privacy; correlate")
    for step in STEPS:
        if step.title in wanted:
            step.run(run)
    return run


@pytest.mark.parametrize("sockets", [False, True])
def test_warning_reaches_every_organisation(demo: DemoRun, sockets: bool) -> None:
    summary, show = demo_step(demo.store, demo.workspace, demo.inventory, sockets=sockets)
    orgs = summary["organisations"]
    assert set(orgs) == {o.id for o in demo.inventory.organisations} and len(orgs) >= 4
    assert summary["published"] >= 2 and show
    for org, seen in orgs.items():
        assert seen["members_alive"] == len(orgs) - 1 and seen["items"] == summary["published"]
        assert seen["dropped"] == {}
        if org != "st-aurelia":
            assert seen["levels"]["indicator:ipv4:198.51.100.77"] == 0.35   # one trusted reporter: 0.5 × 0.7
            assert any(a.startswith("198.51.100.77 reported by 1 trusted peer (st-aurelia)") for a in seen["actions"])
    assert (demo.workspace / "swarm" / "northfield" / "swarm" / "watchlist.json").exists()
