"""What the faces and the agent call: discover from the store, compare, patch, merge, feed the other stages.

- `discover_stored`: stream the stored events (page by page, bounded memory) through a `Discovery`
  and compare it with the inventory;
- `discovered_findings`: discovered devices with a model (and version) through advisory matching,
  findings marked `explanation["source"] = "discovered"`;
- `observed_flows`: the observed flows between inventory assets, for the risk graph
  (`risk.observed.observed_attack_graph`);
- `flow_alerts` (re-exported): the alerts for undeclared flows into safety-critical devices;
- `run_discovery`: the use case of `healthswarm inventory discover` (all of the above, alerts stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Text, cast, func, select

from healthswarm.inventory.advisories import match_findings
from healthswarm.inventory.discover.alerts import flow_alerts
from healthswarm.inventory.discover.diff import DiscoveryReport, compare
from healthswarm.inventory.discover.fingerprints import Fingerprints, load_fingerprints
from healthswarm.inventory.discover.observe import FLOW_DATASETS, Discovery
from healthswarm.inventory.discover.patch import MIN_MODEL_CONFIDENCE, device_id
from healthswarm.model import Advisory, Alert, Asset, Event, Finding, Flow, Inventory
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.tables import events
from healthswarm.store.vulns import load_advisories

__all__ = ["DiscoveryRun", "discover_incremental", "discover_stored", "discovered_findings", "flow_alerts",
           "observe_stored", "observed_flows", "run_discovery"]

PAGE = 5_000
STATE_VERSION = 1


def fingerprints_for(workspace: Path | None, extra: Sequence[Path] = ()) -> Fingerprints:
    """The shipped fingerprints, the workspace's `fingerprints/` folder if any, and `extra`."""
    folders = list(extra)
    if workspace is not None and (workspace / "fingerprints").is_dir():
        folders.insert(0, workspace / "fingerprints")
    return load_fingerprints(folders)


def stored_events(store: Store, after_id: int = 0, since: datetime | None = None,
                  until: datetime | None = None) -> Iterator[tuple[int, Event]]:
    """(id, event) of the stored events after `after_id`, in arrival order, page by page.

    Discovery's own read path (about three times `store.events.iter_events` here): the two JSON columns
    as text decoded with orjson, and a flow record's `original` decoded only when it carries MAC
    addresses, the one thing discovery reads from a flow record's original. Events keep no source,
    record or key: discovery does not use them.
    """
    columns = (events.c.id, events.c.timestamp, cast(events.c.fields, Text), cast(events.c.original, Text))
    window = []
    if since is not None:
        window.append(events.c.timestamp >= since)
    if until is not None:
        window.append(events.c.timestamp < until)
    loads = orjson.loads
    with store.read() as conn:
        while True:
            query = select(*columns).where(events.c.id > after_id, *window).order_by(events.c.id).limit(PAGE)
            rows = conn.execute(query).all()
            for ident, ts, fields_text, original_text in rows:
                fields = loads(fields_text)
                original = None
                if original_text is not None and (
                        (fields.get("event.dataset") or fields.get("observer.type")) not in FLOW_DATASETS
                        or '"ether"' in original_text or "orig_l2_addr" in original_text):
                    original = loads(original_text)
                ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
                yield ident, Event(timestamp=ts, fields=fields, original=original)
            if len(rows) < PAGE:
                return
            after_id = rows[-1][0]


def observe_stored(store: Store, since: datetime | None = None, until: datetime | None = None,
                   discovery: Discovery | None = None) -> Discovery:
    discovery = discovery or Discovery()
    observe = discovery.observe
    for _, event in stored_events(store, 0, since, until):
        observe(event)
    return discovery


def _store_identity(store: Store) -> str:
    return hashlib.blake2b(str(store.engine.url).encode(), digest_size=8).hexdigest()


def load_state(path: Path, store: Store) -> tuple[Discovery, int]:
    """The saved picture and the id of the last event it holds; a fresh one when there is none, it is of
    another store or version, or the store no longer holds that event (cleared, another database)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return Discovery(), 0
    after = data.get("after_id", 0) if isinstance(data, dict) else 0
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or data.get("store") != _store_identity(
            store) or not isinstance(after, int):
        return Discovery(), 0
    with store.read() as conn:
        newest = conn.execute(select(func.max(events.c.id))).scalar_one_or_none() or 0
    if after > newest:
        return Discovery(), 0
    return Discovery.from_dict(data.get("discovery") or {}), after


def save_state(path: Path, store: Store, discovery: Discovery, after_id: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"version": STATE_VERSION, "store": _store_identity(store), "after_id": after_id,
                                  "discovery": discovery.to_dict()}))
    tmp.replace(path)  # atomic: a crash leaves the old state or the new one, never half of one


def observe_new(store: Store, discovery: Discovery, after_id: int) -> tuple[int, int]:
    """Feed the events stored after `after_id` (in arrival order); (events read, the last id)."""
    observe = discovery.observe
    n, last = 0, after_id
    for last, event in stored_events(store, after_id):  # noqa: B007 - the last id read is part of the result
        observe(event)
        n += 1
    return n, last


def discover_incremental(store: Store, state: Path, fingerprints: Fingerprints | None = None,
                         inventory: Inventory | None = None, rebuild: bool = False
                         ) -> tuple[Discovery, DiscoveryReport, Inventory, int]:
    """Discovery over every stored event, reading only those stored since the last run (the picture is kept
    in `state`); also the number of events read this time."""
    if inventory is None:
        with store.read() as conn:
            inventory = stored_inventory(conn)
    discovery, after = (Discovery(), 0) if rebuild else load_state(state, store)
    read, after = observe_new(store, discovery, after)
    save_state(state, store, discovery, after)
    return discovery, compare(discovery, inventory, fingerprints or load_fingerprints()), inventory, read


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


@dataclass
class DiscoveryRun:
    """What `healthswarm inventory discover` shows: the report, the inventory it was compared with, the
    findings on discovered devices and the alerts for undeclared flows into safety-critical devices."""

    report: DiscoveryReport
    inventory: Inventory
    findings: list[Finding]
    alerts: list[Alert]
    events_read: int


def run_discovery(store: Store, workspace: Path, since: datetime | None = None, fingerprints: Sequence[Path] = (),
                  rebuild: bool = False, store_alerts: bool = True) -> DiscoveryRun:
    """The use case: discover (incrementally, with the picture kept in `workspace/discover/state.json`,
    or afresh over the events from `since`), match the discovered devices against the stored advisories,
    raise (and store) the alerts."""
    prints = fingerprints_for(workspace, fingerprints)
    if since is not None:
        discovery, report, inventory = discover_stored(store, since=since, fingerprints=prints)
        read = discovery.events
    else:
        _, report, inventory, read = discover_incremental(store, workspace / "discover" / "state.json",
                                                          fingerprints=prints, rebuild=rebuild)
    with store.read() as conn:
        advisories = load_advisories(conn)
    found = discovered_findings(report, inventory, advisories)
    raised = flow_alerts(report.flows, inventory)
    if store_alerts and raised:
        with store.transaction() as conn:
            save_alerts(conn, raised)
    return DiscoveryRun(report, inventory, found, raised, read)
