"""Acting on the threat field: the retro-hunt finds the demo's C2 address in a store built from its Suricata log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthswarm.demo import LOGS
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file
from healthswarm.store import Store
from healthswarm.swarm.act import Actor
from healthswarm.swarm.retro import retro_hunt
from healthswarm.swarm.sim import SimNetwork

C2 = "198.51.100.77"


@pytest.fixture
def suricata_store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'events.db'}")
    pipeline = Pipeline.for_store(store)
    try:
        ingest_file(pipeline, LOGS / "suricata-eve.json")
    finally:
        pipeline.close()
    return store


def test_retro_hunt_finds_first_presence(suricata_store: Store) -> None:
    traces = retro_hunt(suricata_store, [C2, "never.seen.example"])
    assert set(traces) == {C2}
    trace = traces[C2]
    assert trace.first_seen == datetime(2026, 11, 27, 8, 5, 4, tzinfo=UTC)
    assert trace.where().startswith("suricata-eve.json record ") and trace.events >= 2


def test_two_trusted_reports_make_the_node_act_and_explain(suricata_store: Store, tmp_path: Path) -> None:
    net = SimNetwork(seed=11)
    here, aurelia, lab = net.add("st-benedict"), net.add("st-aurelia"), net.add("lab")
    for n in (aurelia, lab):
        net.send(n.join(["st-benedict"], net.now), n.name)
    net.run(3)
    actor = Actor(here, lambda values: retro_hunt(suricata_store, values), tmp_path / "swarm")
    ioc = {"type": "ipv4", "value": C2, "confidence": 80}
    net.publish(aurelia.name, "indicator", ioc)
    net.run(3)
    [early] = [a for a in actor.review(net.now) if a.key == f"indicator:ipv4:{C2}"]
    assert early.priority == "elevated", "one peer at weight 0.5: below the threshold, above half of it"
    assert early.first_seen_here is not None
    weight_before = here.weight(aurelia.key_id)
    net.publish(lab.name, "sighting", ioc)
    net.run(3)
    [action] = [a for a in actor.review(net.now) if a.key == f"indicator:ipv4:{C2}"]
    assert action.reporters == ["lab", "st-aurelia"] and action.level >= 0.5 and action.priority == "high"
    assert action.explanation.startswith(f"{C2} reported by 2 trusted peers (lab, st-aurelia), level 0.80 ≥ 0.50")
    assert "first seen here 2026-11-27 08:05 in suricata-eve.json record" in action.explanation
    assert here.weight(aurelia.key_id) > weight_before, "our own data confirmed the warning"
    assert '"priority": "high"' in (tmp_path / "swarm" / "watchlist.json").read_text()
    assert actor.review(net.now) == [], "acts once per key and priority"


def test_retro_hunt_only_in_the_organisations_own_events(suricata_store: Store) -> None:
    assert retro_hunt(suricata_store, [C2], organisation="northfield") == {}


def test_technique_hunt_finds_the_first_alert_showing_a_technique(store: Store) -> None:
    """A peer's warning names techniques: the earliest of our alerts showing one (or a sub-technique) and how many,
    on both backends; an alert that only mentions the id in its text does not count, nor one on another
    organisation's assets."""
    from healthswarm.demo import ECOSYSTEM
    from healthswarm.inventory import load_inventory
    from healthswarm.model.alert import Alert, AttackRef
    from healthswarm.store.alerts import save_alerts
    from healthswarm.store.inventory import replace_inventory
    from healthswarm.swarm.retro import technique_hunt

    def at(hour: int) -> datetime:
        return datetime(2026, 11, 27, hour, tzinfo=UTC)

    made = [
        Alert("sigma", "r1", "beacon", "high", at(9), techniques=(AttackRef("T1071.001"),), assets=("sta-ws-01",)),
        Alert("sigma", "r2", "beacon elsewhere", "high", at(8), techniques=(AttackRef("T1071"),),
              assets=("nfh-dc-01",)),
        Alert("sigma", "r3", "script", "high", at(7), techniques=(AttackRef("T1059"),), assets=("sta-ws-01",)),
        Alert("sigma", "r4", "looks like T1071", "high", at(6), techniques=(AttackRef("T1110"),),
              assets=("sta-ws-01",), description="not T1071 at all"),
        Alert("sigma", "r5", "beacon again", "high", at(10), techniques=(AttackRef("T1071"),), assets=("sta-ws-01",)),
    ]
    with store.transaction() as conn:
        replace_inventory(conn, load_inventory([ECOSYSTEM]))  # sta-ws-01 ours, nfh-dc-01 not
        save_alerts(conn, made)
    ours = technique_hunt(store, ["T1071", "T1486"], organisation="st-aurelia")
    assert list(ours) == ["T1071"]
    found = ours["T1071"]
    assert (found.first_seen, found.events, found.label) == (at(9), 2, "alert 'beacon' on sta-ws-01")
    anyone = technique_hunt(store, ["T1071"])
    assert (anyone["T1071"].first_seen, anyone["T1071"].events) == (at(8), 3)
    assert technique_hunt(store, []) == {}
