"""What the faces and the agent call: discover from the store, compare, patch, merge, feed the other stages.

- `discover_stored`: stream the stored events (page by page, bounded memory) through a `Discovery`
  and compare it with the inventory;
- `discovered_findings`: discovered devices with a model (and version) through advisory matching,
  findings marked `explanation["source"] = "discovered"`;
- `observed_flows`: the observed flows between inventory assets, for the risk graph
  (`risk.observed.observed_attack_graph`);
- `flow_alerts` (re-exported): the alerts for undeclared flows into safety-critical devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from healthswarm.inventory.advisories import match_findings
from healthswarm.inventory.discover.alerts import flow_alerts
from healthswarm.inventory.discover.diff import DiscoveryReport, compare
from healthswarm.inventory.discover.fingerprints import Fingerprints, load_fingerprints
from healthswarm.inventory.discover.observe import Discovery
from healthswarm.inventory.discover.patch import MIN_MODEL_CONFIDENCE, device_id
from healthswarm.model import Advisory, Asset, Finding, Flow, Inventory
from healthswarm.store import Store
from healthswarm.store.events import iter_events
from healthswarm.store.inventory import load_inventory as stored_inventory

__all__ = ["discover_stored", "discovered_findings", "flow_alerts", "observe_stored", "observed_flows"]

PAGE = 5_000


def fingerprints_for(workspace: Path | None, extra: Sequence[Path] = ()) -> Fingerprints:
    """The shipped fingerprints, the workspace's `fingerprints/` folder if any, and `extra`."""
    folders = list(extra)
    if workspace is not None and (workspace / "fingerprints").is_dir():
        folders.insert(0, workspace / "fingerprints")
    return load_fingerprints(folders)


def observe_stored(store: Store, since: datetime | None = None, until: datetime | None = None,
                   discovery: Discovery | None = None) -> Discovery:
    discovery = discovery or Discovery()
    observe = discovery.observe
    with store.read() as conn:
        for stored in iter_events(conn, page=PAGE, start=since, end=until):
            observe(stored.event)
    return discovery


def discover_stored(store: Store, since: datetime | None = None, until: datetime | None = None,
                    fingerprints: Fingerprints | None = None,
                    inventory: Inventory | None = None) -> tuple[Discovery, DiscoveryReport, Inventory]:
    if inventory is None:
        with store.read() as conn:
            inventory = stored_inventory(conn)
    discovery = observe_stored(store, since, until)
    report = compare(discovery, inventory, fingerprints or load_fingerprints())
    return discovery, report, inventory


def discovered_assets(report: DiscoveryReport, inventory: Inventory) -> list[Asset]:
    """Assets as the traffic shows them: undeclared devices with a model, declared ones with the
    version they announce where it contradicts the declared one."""
    out = []
    for d in report.undeclared_devices:
        fp = d.fingerprint
        if fp is None or fp.confidence < MIN_MODEL_CONFIDENCE or not fp.vendor or not fp.product:
            continue
        out.append(Asset(id=device_id(d.ip), organisation=d.organisation or "?", zone=d.zone or "?", kind=d.kind,
                         name=f"discovered {fp.vendor} {fp.product} at {d.ip}", vendor=fp.vendor,
                         product=fp.product, version=fp.version, addresses=(d.ip,)))
    assets = {a.id: a for a in inventory.assets}
    for c in report.contradictions:
        if c.field == "version" and c.asset_id in assets:
            out.append(replace(assets[c.asset_id], version=c.observed))
    return out


def discovered_findings(report: DiscoveryReport, inventory: Inventory, advisories: Iterable[Advisory]) -> list[Finding]:
    """Advisory findings on what the traffic shows, each marked as discovered (with its evidence)."""
    assets = discovered_assets(report, inventory)
    by_id = {d.asset_id or device_id(d.ip): d for d in report.devices}
    out = []
    for f in match_findings(advisories, assets):
        device = by_id.get(f.asset_id)
        evidence = "; ".join(f"{e['signal']}={e['value']}" for e in (device.fingerprint.evidence[:3]
                                                                   if device and device.fingerprint else []))
        out.append(replace(f, explanation={**f.explanation, "source": "discovered", "evidence": evidence,
                                           "address": device.ip if device else ""}))
    return out


def observed_flows(report: DiscoveryReport) -> list[tuple[Flow, bool]]:
    """Each observed flow between inventory assets as an inventory Flow, with whether it was declared."""
    out: dict[Flow, bool] = {}
    for f in report.flows:
        if f.source.startswith("ip:") or f.target.startswith("ip:") or "internet" in (f.source, f.target):
            continue
        flow = Flow(f.source, f.target, f.protocol, f.port)
        out[flow] = out.get(flow, False) or f.status == "declared"
    return list(out.items())
