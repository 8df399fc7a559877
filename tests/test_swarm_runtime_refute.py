"""The liars' defence on real nodes (swarm/refute.py): three nodes on loopback sockets, each the agent's node
(`AgentSwarm` over `NodeRuntime`). A lying peer warns about a partner service St. Aurelia vouches for, and about
St. Aurelia's own VPN. St. Aurelia's node refutes both; the first refutation leaves through its egress gate as
a benign item, the second is refused there (it names an own asset). At the third node, Northfield, the swarm
then disputes the first claim and it never becomes a watch, so traffic to it raises no watchlist alert, while a
warning nobody refutes does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import wait_until
from healthswarm.agent.config import SwarmConfig
from healthswarm.agent.swarm import SETTLE_ROUNDS, AgentSwarm
from healthswarm.detect.watchlist import WatchlistDetector
from healthswarm.inventory import load_inventory
from healthswarm.model import Event
from healthswarm.share.egress import AUDIT
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.items import BENIGN, indicator_key

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo" / "ecosystem.yaml"
NAMES = ["liar", "st-aurelia", "northfield"]
# rounds of 0.5 s: a warning waits SETTLE_ROUNDS of them before it is watched, time for a refutation to come back
PARAMS = {"period": 0.5, "probe_timeout": 0.2, "suspicion_timeout": 3.0}
VOUCHED = "updates.pump-vendor.example"       # St. Aurelia vouches for pump-vendor.example
OWN_VPN = "vpn.sta.example"                   # St. Aurelia's VPN concentrator, in its inventory
TRUE_WARNING = "198.51.100.77"                # nobody has evidence against it


@pytest.fixture
def swarm(tmp_path: Path) -> Iterator[dict[str, AgentSwarm]]:
    ports = free_ports(len(NAMES))
    configs = make_consortium(tmp_path, NAMES, ports, seeds=1, params=PARAMS)
    aurelia = load_node_config(configs[1]).workspace
    stores = {name: Store.open(f"sqlite:///{load_node_config(path).workspace / 'healthswarm.db'}")
              for name, path in zip(NAMES, configs, strict=True)}   # each agent's store; St. Aurelia's inventory
    with stores["st-aurelia"].transaction() as conn:
        replace_inventory(conn, load_inventory([DEMO]))
    (aurelia / "swarm").mkdir(parents=True, exist_ok=True)
    (aurelia / "swarm" / "benign").write_text("# partners we vouch for\n"
                                              "domain:pump-vendor.example  # the infusion pumps' update service\n")
    nodes = {}
    for name, port, path in zip(NAMES, ports, configs, strict=True):
        config = load_node_config(path)
        swarm_config = SwarmConfig(enabled=True, listen=f"127.0.0.1:{port}", seeds=tuple(config.seeds), name=name,
                                   publish=False, params=PARAMS)
        nodes[name] = AgentSwarm(swarm_config, config.workspace, name, stores[name])
    for node in nodes.values():
        node.start()
    try:
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()
            node.store.close()


def _alive(node: AgentSwarm) -> int:
    return sum(m.state == "alive" for m in list(node.runtime.node.members.members.values()))


def _hit(detector: WatchlistDetector, fields: dict[str, str]) -> bool:
    event = Event(datetime.now(UTC), {"organization.id": "northfield", **fields}, {}, "net.json", 1)
    return bool(detector.detect(event))


def test_a_lying_peers_warning_is_refuted_and_never_watched_at_a_third_node(swarm: dict[str, AgentSwarm]) -> None:
    liar, aurelia, northfield = swarm["liar"], swarm["st-aurelia"], swarm["northfield"]
    assert not any(node.error for node in swarm.values())
    wait_until("every node sees the two others alive", lambda: all(_alive(n) == 2 for n in swarm.values()), 30)
    for value, kind in ((VOUCHED, "domain"), (OWN_VPN, "domain"), (TRUE_WARNING, "ipv4")):
        outbox.post(liar.node_config.folder, "indicator", {"type": kind, "value": value, "confidence": 90})

    seen_at_northfield: set[str] = set()
    stop = threading.Event()

    def watch_northfield() -> None:   # what the agent's watchlist refresh would read, sampled all along
        while not stop.is_set():
            seen_at_northfield.update(w.value for w in northfield.received())
            time.sleep(0.02)

    sampler = threading.Thread(target=watch_northfield)
    sampler.start()
    try:
        wait_until("the unrefuted warning becomes a watch at Northfield",
                   lambda: TRUE_WARNING in {w.value for w in northfield.received()}, 30)
        wait_until("Northfield disputes the vouched-for claim",
                   lambda: indicator_key("domain", VOUCHED) in northfield.runtime.node.disputed, 30)
        time.sleep(PARAMS["period"] * SETTLE_ROUNDS * 2)   # past the time the claim would have settled
    finally:
        stop.set()
        sampler.join()

    # St. Aurelia refuted both claims from its own evidence; neither reached its listeners (its watchlist)
    assert dict(aurelia.runtime.evidence.counts) == {"vouched-for": 1, "ours": 1}
    assert {w.value for w in aurelia.received()} == {TRUE_WARNING}
    assert aurelia.runtime.node.weight(liar.runtime.node.key_id) < aurelia.runtime.node.weight(
        northfield.runtime.node.key_id)
    # its refutations went to the egress gate: the vouched-for one left signed, the own VPN was refused there
    audit = [json.loads(line) for line in (aurelia.workspace / AUDIT).read_text().splitlines()]
    benign = [e for e in audit if e.get("path") == "gossip" and e.get("kind") == "benign"]
    assert [e["outcome"] for e in benign] == ["refused", "released"] or \
        [e["outcome"] for e in benign] == ["released", "refused"]
    refused = next(e for e in benign if e["outcome"] == "refused")["reasons"]
    assert refused and all(reason.endswith("-host") for reason in refused)   # an own host name: never shared
    benign_at_northfield = [i.raw["data"] for i in northfield.runtime.node.items.values() if i.raw["kind"] == "benign"]
    assert benign_at_northfield == [{"type": "domain", "value": VOUCHED}]
    assert BENIGN + indicator_key("domain", VOUCHED) in northfield.runtime.node.field.state

    # Northfield, with no evidence of its own: the disputed claim was never watched, the others were
    assert VOUCHED not in seen_at_northfield
    assert {w.value for w in northfield.received()} == {TRUE_WARNING, OWN_VPN}
    detector = WatchlistDetector(northfield.received())
    assert not _hit(detector, {"dns.question.name": VOUCHED, "source.ip": "10.20.1.5"})
    assert _hit(detector, {"destination.ip": TRUE_WARNING, "source.ip": "10.20.1.5"})
    # and the liar lost weight there too: the dispute blames each claimant of the disputed value
    node = northfield.runtime.node
    assert node.weight(liar.runtime.node.key_id) < node.weight(aurelia.runtime.node.key_id)


def test_the_vouched_for_file_is_read_line_by_line_and_bad_lines_are_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from healthswarm.share.sensitive import Sensitive
    from healthswarm.swarm.refute import LocalEvidence, VouchedFor

    (tmp_path / "benign").write_text("# ours to vouch for\ndomain:Pump-Vendor.example.  # updates\n"
                                     "ipv4:198.51.100.16/29\nurl:https://ehr.example/login\nnonsense\n"
                                     "ipv4:198.51.100.0/33\n")
    vouched = VouchedFor(tmp_path)
    vouched.reload()
    evidence = LocalEvidence(Sensitive(networks=[]), vouched)
    assert evidence.why_benign("domain", "cdn.updates.pump-vendor.example") == "vouched-for"
    assert evidence.why_benign("domain", "pump-vendor.example.evil.example") == ""
    assert evidence.why_benign("ipv4", "198.51.100.20") == "vouched-for"
    assert evidence.why_benign("ipv4", "198.51.100.24") == ""
    assert evidence.why_benign("url", "https://ehr.example/login") == "vouched-for"
    assert evidence.why_benign("url", "https://ehr.example/other") == ""
    assert evidence.why_benign("ipv4", "10.1.2.3") == "ours"   # a private address: never a machine of ours to watch
    assert evidence.why_benign("email", "x@host.corp") == "ours"
    bad = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(bad) == 2 and ":5:" in bad[0] and ":6:" in bad[1]
    (tmp_path / "benign").unlink()
    vouched.reload()
    assert evidence.why_benign("domain", "pump-vendor.example") == ""


@pytest.mark.service
def test_the_agents_node_refutes_from_the_agents_own_store_on_postgresql(tmp_path: Path) -> None:
    """The agent's node judges with the agent's store, whatever its database: with the inventory in PostgreSQL
    and no SQLite file in the workspace, a liar's warning about St. Aurelia's own VPN is still refuted (and the
    refutation is refused at the gate, which knows the VPN from that store)."""
    from conftest import postgres_database

    names = ["liar", "st-aurelia"]
    ports = free_ports(2)
    configs = make_consortium(tmp_path, names, ports, seeds=1, params=PARAMS)
    with postgres_database("healthswarm_refute") as url:
        store = Store.open(url)
        with store.transaction() as conn:
            replace_inventory(conn, load_inventory([DEMO]))
        # the liar is another organisation: a store of its own (St. Aurelia's would make its gate refuse the lie,
        # a name the inventory does not know being protected with the whole inventory)
        stores = {"st-aurelia": store, "liar": Store.open(f"sqlite:///{tmp_path / 'liar.db'}")}
        nodes = {}
        for name, port, path in zip(names, ports, configs, strict=True):
            config = load_node_config(path)
            assert not (config.workspace / "healthswarm.db").exists()
            nodes[name] = AgentSwarm(SwarmConfig(enabled=True, listen=f"127.0.0.1:{port}", seeds=tuple(config.seeds),
                                                 name=name, publish=False, params=PARAMS),
                                     config.workspace, name, stores[name])
        for node in nodes.values():
            node.start()
        try:
            liar, aurelia = nodes["liar"], nodes["st-aurelia"]
            wait_until("the two nodes see each other", lambda: all(_alive(n) == 1 for n in nodes.values()), 30)
            outbox.post(liar.node_config.folder, "indicator", {"type": "domain", "value": OWN_VPN, "confidence": 90})
            wait_until("St. Aurelia refutes the warning about its own VPN",
                       lambda: aurelia.runtime.evidence.counts["ours"] == 1, 30)
            assert aurelia.received() == []
            assert not [i for i in aurelia.runtime.node.items.values() if i.raw["kind"] == "benign"]
        finally:
            for node in nodes.values():
                node.stop()
            for each in stores.values():
                each.close()
