"""Discovery: streaming aggregates, fingerprints, the diff against the inventory, patch and merge, and what
it feeds (alerts with ATT&CK for ICS ids, advisory matching, the attack graph)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import shared
from healthswarm.demo import ADVISORIES, ECOSYSTEM, LOGS
from healthswarm.errors import InputError
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file
from healthswarm.inventory import load_inventory
from healthswarm.inventory.advisories import load_advisories
from healthswarm.inventory.discover import Discovery, compare, load_fingerprints
from healthswarm.inventory.discover.alerts import DiscoveryDetector, flow_alerts
from healthswarm.inventory.discover.evaluate import holdout, score
from healthswarm.inventory.discover.fingerprints import oui_vendor
from healthswarm.inventory.discover.patch import merge_patch, write_patch
from healthswarm.inventory.discover.service import discover_stored, discovered_findings, observe_stored, observed_flows
from healthswarm.inventory.discover.simulate import simulate
from healthswarm.model import Event, Inventory
from healthswarm.risk.observed import observed_attack_graph
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.inventory import replace_inventory

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def flow(src: str, dst: str, sport: int, dport: int, seconds: int = 0, dataset: str = "suricata.flow",
         **extra: object) -> Event:
    fields = {"event.dataset": dataset, "observer.type": dataset.split(".")[0], "source.ip": src, "source.port": sport,
              "destination.ip": dst, "destination.port": dport, "network.transport": "tcp", "source.bytes": 100,
              "destination.bytes": 50, **extra}
    return Event(timestamp=T0 + timedelta(seconds=seconds), fields=fields, original={})


@pytest.fixture(scope="module")
def demo_inventory() -> Inventory:
    return load_inventory([ECOSYSTEM])


@pytest.fixture
def demo_store(tmp_path: Path, demo_inventory: Inventory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'demo.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, demo_inventory)
    pipeline = Pipeline.for_store(store)
    for path in sorted(LOGS.iterdir()):
        ingest_file(pipeline, path)
    pipeline.close()
    yield store
    store.close()


# --- the streaming aggregates ---------------------------------------------------------------------------------

def test_flows_aggregate_on_client_server_port_and_replies_turn_around() -> None:
    d = Discovery()
    assert d.observe(flow("10.0.0.5", "10.0.0.9", 50001, 443)) is not None
    assert d.observe(flow("10.0.0.5", "10.0.0.9", 50002, 443, 60)) is None  # same flow, another client port
    d.observe(flow("10.0.0.9", "10.0.0.5", 53, 51000, 61, dataset="suricata.dns"))  # an answer: server first
    assert set(d.flows) == {("10.0.0.5", "10.0.0.9", 443, "tcp"), ("10.0.0.5", "10.0.0.9", 53, "tcp")}
    stats = d.flows[("10.0.0.5", "10.0.0.9", 443, "tcp")]
    assert (stats.connections, stats.bytes, stats.last - stats.first) == (2, 300, 60)
    view = d.endpoint_view()
    assert view["10.0.0.9"].events == 3 and view["10.0.0.5"].first == T0.timestamp()


def test_memory_is_bounded_and_eviction_is_counted() -> None:
    d = Discovery(max_flows=1000)
    for i in range(5000):
        d.observe(flow(f"10.1.{i // 250}.{i % 250}", "10.9.9.9", 50000, 443, i))
    assert len(d.flows) <= 1000 and d.evicted_flows >= 4000
    assert max(s.last for s in d.flows.values()) == (T0 + timedelta(seconds=4999)).timestamp()  # the newest stay


def test_state_round_trips() -> None:
    d = Discovery()
    d.observe(flow("10.0.0.5", "10.0.0.9", 50001, 443, **{"user_agent.original": "Alaris PCU/9.33.1"},
                   dataset="suricata.http"))
    again = Discovery.from_dict(d.to_dict())
    assert again.to_dict() == d.to_dict() and again.endpoints["10.0.0.5"].signals == {
        "http.user_agent": {"Alaris PCU/9.33.1": 1}}


# --- fingerprints -------------------------------------------------------------------------------------------

def test_shipped_fingerprints_load_and_conclude_with_evidence() -> None:
    prints = load_fingerprints()  # every rule's examples are checked on load
    assert len(prints.families) >= 10
    c = prints.conclude({"http.user_agent": ["Alaris PCU/9.33.1"], "dhcp.vendor_class": ["BD Alaris 8015"],
                         "dhcp.vendor_class ": []})
    assert c is not None and c.vendor.startswith("Becton") and c.product == "Alaris PC Unit Model 8015"
    assert c.version == "9.33.1" and c.kind == "infusion-pump" and c.confidence > 0.95
    assert {e["signal"] for e in c.evidence} == {"http.user_agent", "dhcp.vendor_class"}
    # a declared vendor with supporting evidence wins over an embedded OS
    c2 = prints.conclude({"dhcp.vendor_class": ["udhcp 1.36.1", "BBraun-SpaceCom2"]}, prefer_vendor="B. Braun Medical")
    assert c2 is not None and c2.vendor == "B. Braun Medical" and c2.alternatives


def test_mac_oui_comes_from_the_shipped_ieee_table() -> None:
    assert oui_vendor("00:20:18:eb:ca:21") == "CIS TECHNOLOGY INC."  # the DHCP client of the shared Zeek sample
    assert oui_vendor("02:00:00:12:34:56") is None  # locally administered


def test_a_bad_fingerprint_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: x\nvendor: X\nrules:\n  - signal: http.user_agent\n    pattern: '^X/(?P<version>'\n"
                   "  - signal: smoke\n    pattern: a\n  - signal: http.user_agent\n    pattern: '^Y'\n"
                   "    examples: [Z]\n")
    with pytest.raises(InputError) as err:
        load_fingerprints([bad])
    text = str(err.value)
    assert f"{bad}:5" in text and "bad regular expression" in text
    assert f"{bad}:6" in text and "signal 'smoke'" in text
    assert f"{bad}:10" in text and "does not match" in text


# --- the diff on the demo -----------------------------------------------------------------------------------

def test_demo_logs_show_the_attack_flows_as_undeclared(demo_store: Store, demo_inventory: Inventory) -> None:
    _, report, _ = discover_stored(demo_store)
    undeclared = {(f.source, f.target, f.protocol): f for f in report.undeclared_flows}
    pump = undeclared[("sta-pump-02", "sta-fs-01", "smb")]
    assert pump.severity == "high" and "a medical device speaking smb" in pump.concerns
    assert ("sta-ws-03", "sta-jump-01", "rdp") in undeclared
    assert ("sta-ws-03", "internet", "https") in undeclared  # the beacon to 198.51.100.77
    assert not report.undeclared_devices  # 198.51.100.0/24 is the Internet, not an undeclared device
    declared = [f for f in report.flows if f.status == "declared"]
    assert declared and all(f.declared_as for f in declared)
    assert report.silent and not any(s["asset_id"] == "sta-pump-02" for s in report.silent)


def test_undeclared_flow_into_a_safety_critical_device_alerts_with_ics_ids(demo_inventory: Inventory) -> None:
    pump = next(a for a in demo_inventory.assets if a.id == "sta-pump-05")
    detector = DiscoveryDetector(demo_inventory)
    event = flow("10.10.1.103", pump.addresses[0], 50000, 445)  # a workstation opens SMB on a pump
    alerts = detector.detect(event)
    assert len(alerts) == 1 and detector.detect(flow("10.10.1.103", pump.addresses[0], 50001, 445, 5)) == []
    alert = alerts[0]
    assert {t.id for t in alert.techniques} == {"T0886", "T0867"}
    assert {t.id for t in alert.tactics} == {"TA0109"} and "sta-pump-05" in alert.assets
    # the same through a finished report
    d = Discovery()
    d.observe(event)
    report = compare(d, demo_inventory, load_fingerprints())
    batch = flow_alerts(report.flows, demo_inventory)
    assert [a.rule_id for a in batch] == [alert.rule_id] and batch[0].details["observed"] is True
    # a declared flow into the pump server raises nothing
    server = next(a for a in demo_inventory.assets if a.id == "sta-pump-srv-01") if any(
        a.id == "sta-pump-srv-01" for a in demo_inventory.assets) else None
    if server is not None:
        src = next(f for f in demo_inventory.flows if f.target == server.id)
        assert detector.detect(flow(next(a for a in demo_inventory.assets if a.id == src.source).addresses[0],
                                    server.addresses[0], 50000, src.port or 443)) == []


# --- re-discovery after removing part of the inventory -----------------------------------------------------------

@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, demo_inventory: Inventory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("sim")
    sim = simulate(demo_inventory, folder / "traffic", seed=7)
    store = Store.open(f"sqlite:///{folder / 'sim.db'}")
    pipeline = Pipeline.for_store(store)
    for path in [*sim.files, *sorted(LOGS.iterdir())]:
        ingest_file(pipeline, path)
    pipeline.close()
    discovery = observe_stored(store)
    store.close()
    return sim, discovery


def test_removed_devices_and_flows_are_found_again(simulated, demo_inventory: Inventory) -> None:  # type: ignore[no-untyped-def]
    sim, discovery = simulated
    reduced, assets, flows = holdout(demo_inventory, 0.2, seed=42)
    assert len(assets) == round(0.2 * len(demo_inventory.assets))
    result = score(compare(discovery, reduced, load_fingerprints()), demo_inventory, reduced, assets, flows,
                   sim.contradicted)
    assert result["devices"]["recall"] >= 0.90
    assert result["flows"]["recall"] >= 0.95
    assert result["flows"]["false_undeclared_rate"] <= 0.05
    assert result["contradictions"]["recall"] == 1.0 and result["contradictions"]["precision"] == 1.0


def test_discovered_devices_reach_advisory_matching_and_observed_flows_reach_attack_paths(
        simulated, demo_inventory: Inventory) -> None:  # type: ignore[no-untyped-def]
    _, discovery = simulated
    reduced, removed, _ = holdout(demo_inventory, 0.2, seed=42)
    report = compare(discovery, reduced, load_fingerprints())
    advisories, _ = load_advisories([ADVISORIES])
    found = discovered_findings(report, reduced, advisories)
    assert found and all(f.explanation["source"] == "discovered" and f.explanation["evidence"] for f in found)
    assert {f.asset_id for f in found} & {f"disc-{a.addresses[0].replace('.', '-')}" for a in removed if a.addresses}
    observed = observed_flows(report)
    assert any(not declared for _, declared in observed)
    graph = observed_attack_graph(reduced, [], observed)
    marked = [t for ts in graph.moves.values() for t in ts if t.evidence.get("observed") == "undeclared"]
    assert marked and all("(observed, undeclared)" in t.description for t in marked)


# --- patch and merge ------------------------------------------------------------------------------------------

def _reduced_store(tmp_path: Path, simulated, demo_inventory: Inventory):  # type: ignore[no-untyped-def]
    _, discovery = simulated
    reduced, removed, _ = holdout(demo_inventory, 0.2, seed=42)
    store = Store.open(f"sqlite:///{tmp_path / 'merge.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, reduced)
    return store, compare(discovery, reduced, load_fingerprints()), reduced, removed


def test_patch_merges_back_into_the_stored_inventory(tmp_path: Path, simulated, demo_inventory: Inventory) -> None:  # type: ignore[no-untyped-def]
    store, report, reduced, _ = _reduced_store(tmp_path, simulated, demo_inventory)
    path = tmp_path / "patch.yaml"
    patch = write_patch(report, reduced, path)
    assert patch.assets and patch.flows and patch.updated
    text = path.read_text()
    assert "held back" in text or not patch.held_back
    result = merge_patch(store, path)
    with store.read() as conn:
        after = stored_inventory(conn)
    assert len(after.assets) == len(reduced.assets) + len(patch.assets)
    assert {a.id for a in after.assets} >= {a.id for a in reduced.assets}
    assert len(after.flows) > len(reduced.flows) and result.added_flows == len(after.flows) - len(reduced.flows)
    changed = {a.id: a.version for a in after.assets if a.id in result.replaced_assets}
    assert changed and all(v != next(a.version for a in reduced.assets if a.id == k) for k, v in changed.items())
    # merging the same patch again changes nothing more
    again = merge_patch(store, path)
    assert again.added_assets == [] and again.added_flows == 0
    store.close()


def test_a_merge_that_fails_validation_changes_nothing(tmp_path: Path, simulated, demo_inventory: Inventory) -> None:  # type: ignore[no-untyped-def]
    store, report, reduced, _ = _reduced_store(tmp_path, simulated, demo_inventory)
    path = tmp_path / "patch.yaml"
    write_patch(report, reduced, path)
    lines = path.read_text().splitlines()
    zone_line = next(i for i, line in enumerate(lines) if line.strip().startswith("zone:"))
    lines[zone_line] = lines[zone_line].split(":")[0] + ": no-such-zone"
    second = [i for i, line in enumerate(lines) if line.startswith("- id:")][1]  # another asset
    kind_line = next(i for i, line in enumerate(lines) if i > second and line.strip().startswith("kind:"))
    lines[kind_line] = lines[kind_line].split(":")[0] + ": toaster"
    path.write_text("\n".join(lines) + "\n")
    with store.read() as conn:
        before = stored_inventory(conn)
    with pytest.raises(InputError) as err:
        merge_patch(store, path)
    text = str(err.value)
    assert f"{path}:{zone_line + 1}" in text and "unknown zone 'no-such-zone'" in text
    assert f"{path}:{kind_line + 1}" in text and "unknown kind 'toaster'" in text
    with store.read() as conn:
        assert stored_inventory(conn) == before
    store.close()


# --- the real captures ---------------------------------------------------------------------------------------

def test_shared_zeek_and_suricata_samples(tmp_path: Path) -> None:
    files = [p for folder in (shared("zeek"), shared("suricata")) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.suffix in (".log", ".json")]
    store = Store.open(f"sqlite:///{tmp_path / 'real.db'}")
    pipeline = Pipeline.for_store(store)
    for path in files:
        ingest_file(pipeline, path)
    pipeline.close()
    _, report, _ = discover_stored(store, inventory=Inventory())
    store.close()
    s = report.summary()
    assert s["flow_events"] > 500 and s["flows"] > 300 and s["devices_seen"] >= 10
    zeek_client = next(d for d in report.devices if d.ip == "192.168.33.10")
    assert "00:20:18:eb:ca:21" in zeek_client.macs and zeek_client.mac_vendors == ["CIS TECHNOLOGY INC."]
    windows = [d for d in report.devices if d.fingerprint and d.fingerprint.vendor == "Microsoft"]
    assert windows and all(d.fingerprint and d.fingerprint.evidence for d in windows)


def test_incremental_discovery_reads_only_new_events_and_matches_a_full_run(tmp_path: Path,
                                                                            demo_inventory: Inventory) -> None:
    from healthswarm.inventory.discover.service import discover_incremental

    store = Store.open(f"sqlite:///{tmp_path / 'inc.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, demo_inventory)
    state = tmp_path / "state.json"
    files = sorted(LOGS.iterdir())
    pipeline = Pipeline.for_store(store)
    for path in files[:3]:
        ingest_file(pipeline, path)
    _, first, _, read1 = discover_incremental(store, state)
    for path in files[3:]:
        ingest_file(pipeline, path)
    pipeline.close()
    _, second, _, read2 = discover_incremental(store, state)
    _, again, _, read3 = discover_incremental(store, state)
    _, full, _ = discover_stored(store)
    assert read1 > 0 and read2 > 0 and read3 == 0
    assert second.as_dict() == full.as_dict() == again.as_dict()
    assert first.summary()["events"] + read2 == full.summary()["events"]
    store.clear()  # the store no longer holds the events the state covers: rebuilt from nothing
    _, empty, _, _ = discover_incremental(store, state)
    assert empty.summary()["events"] == 0
    store.close()


def test_infrastructure_and_dependencies_are_told_apart(demo_inventory: Inventory) -> None:
    ws = next(a for a in demo_inventory.assets if a.id == "sta-ws-01")
    dc = next(a for a in demo_inventory.assets if a.id == "sta-dc-01")
    d = Discovery()
    d.observe(flow(ws.addresses[0], dc.addresses[0], 50000, 53))
    report = compare(d, demo_inventory, load_fingerprints())
    assert [f.status for f in report.flows] == ["infrastructure"] and not report.undeclared_flows


def test_a_site_adds_ja3_and_ja4_fingerprints_without_code(tmp_path: Path) -> None:
    site = tmp_path / "fingerprints"
    site.mkdir()
    (site / "our-dialysis.yaml").write_text(
        "family: Our dialysis machines\nvendor: Fresenius\nsource: captured at our site\nrules:\n"
        "  - signal: tls.ja4\n    pattern: '^t12d1207h1_'\n    product: 5008S\n    kind: dialysis-machine\n"
        "    confidence: 0.7\n    examples: [t12d1207h1_0a4a3e0e2e6a_1f2a9e9b5d3c]\n"
        "  - signal: tls.ja3\n    pattern: '^6734f37431670b3ab4292b8f60f29984$'\n    product: 5008S\n"
        "    confidence: 0.6\n")
    prints = load_fingerprints([site])
    tls = Event(timestamp=T0, fields={"event.dataset": "suricata.tls", "observer.type": "suricata",
                                      "source.ip": "10.10.3.200", "source.port": 51000,
                                      "destination.ip": "10.10.2.30", "destination.port": 443,
                                      "network.transport": "tcp", "network.protocol": "tls",
                                      "tls.client.ja3": "6734f37431670b3ab4292b8f60f29984"},
                original={"tls": {"ja4": "t12d1207h1_0a4a3e0e2e6a_1f2a9e9b5d3c"}})
    dhcp = Event(timestamp=T0, fields={"event.dataset": "zeek.dhcp", "observer.type": "zeek",
                                       "source.ip": "10.10.3.200", "source.mac": "00:13:e8:00:00:01"},
                 original={"client_software": "dhcpcd-9.4.1:Linux-5.10", "assigned_addr": "10.10.3.200",
                           "host_name": "dialysis-07"})
    d = Discovery()
    d.observe(dhcp)
    d.observe(tls)
    report = compare(d, load_inventory([ECOSYSTEM]), prints)
    device = next(x for x in report.undeclared_devices if x.ip == "10.10.3.200")
    assert device.fingerprint is not None and device.fingerprint.vendor == "Fresenius"
    assert device.fingerprint.product == "5008S" and device.kind == "dialysis-machine"
    assert {e["signal"] for e in device.fingerprint.evidence} == {"tls.ja4", "tls.ja3"}
    assert device.fingerprint.alternatives  # dhcpcd's Linux, outvoted
    assert device.zone == "st-aurelia-iomt" and "dialysis-07" in device.names


def test_discover_patch_and_merge_on_each_backend(store: Store, tmp_path: Path, simulated,  # type: ignore[no-untyped-def]
                                                  demo_inventory: Inventory) -> None:
    """The store side (incremental read, merge in one transaction) on SQLite and on PostgreSQL."""
    from healthswarm.inventory.discover.service import discover_incremental

    reduced, _, _ = holdout(demo_inventory, 0.2, seed=42)
    with store.transaction() as conn:
        replace_inventory(conn, reduced)
    sim, _ = simulated
    pipeline = Pipeline.for_store(store)
    for path in sim.files:
        ingest_file(pipeline, path)
    pipeline.close()
    state = tmp_path / "state.json"
    _, report, inventory, read = discover_incremental(store, state)
    assert read > 1000 and len(report.undeclared_devices) >= 30
    patch = write_patch(report, inventory, tmp_path / "patch.yaml")
    result = merge_patch(store, tmp_path / "patch.yaml")
    assert len(result.added_assets) == len(patch.assets)
    _, after, _, read_again = discover_incremental(store, state)
    assert read_again == 0 and len(after.undeclared_devices) == len(report.undeclared_devices) - len(patch.assets)


def test_discoverys_own_read_path_gives_what_the_store_repository_gives(demo_store: Store,
                                                                         demo_inventory: Inventory) -> None:
    from healthswarm.store.events import iter_events

    reference = Discovery()
    with demo_store.read() as conn:
        for stored in iter_events(conn):
            reference.observe(stored.event)
    ours = observe_stored(demo_store)
    prints = load_fingerprints()
    assert compare(ours, demo_inventory, prints).as_dict() == compare(reference, demo_inventory, prints).as_dict()
