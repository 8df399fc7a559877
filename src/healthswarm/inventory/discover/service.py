"""What the faces and the agent call: discover from the store, compare, patch, merge, feed the other stages.

- `discover_stored`: stream the stored events (page by page, bounded memory) through a `Discovery`
  and compare it with the inventory;
- `discovered_findings`: discovered devices with a model (and version) through advisory matching,
  findings marked `explanation["source"] = "discovered"`;
- `observed_flows`: the observed flows between inventory assets, for the risk graph
  (`risk.observed.observed_attack_graph`);
- `flow_alerts` (re-exported): the alerts for undeclared flows into safety-critical devices;
- `run_discovery`: the use case of `healthswarm inventory discover` (all of the above, alerts stored);
- `discovered_view`, `accept_items`, `ignore_items`: the dashboard's Discovered view over the same picture
  and diff, accepting items through the same merge and remembering ignored ones (`discover/ignored.json`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Text, cast, func, select

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories import match_findings
from healthswarm.inventory.discover.alerts import flow_alerts
from healthswarm.inventory.discover.diff import INTERNET, Contradiction, Device, DiscoveryReport, ObservedFlow, compare
from healthswarm.inventory.discover.fingerprints import Fingerprints, load_fingerprints
from healthswarm.inventory.discover.observe import FLOW_DATASETS, Discovery
from healthswarm.inventory.discover.patch import (
    MIN_MODEL_CONFIDENCE,
    MergeResult,
    attack_like,
    build_patch,
    device_id,
    merge_patch,
    name_file,
    patch_text,
)
from healthswarm.model import Advisory, Alert, Asset, Event, Finding, Flow, Inventory
from healthswarm.store import Store
from healthswarm.store.alerts import save_alerts
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.tables import events
from healthswarm.store.vulns import load_advisories

__all__ = ["AcceptResult", "DiscoveredItem", "DiscoveredView", "DiscoveryRun", "accept_items", "discover_incremental",
           "discover_stored", "discovered_findings", "discovered_view", "flow_alerts", "ignore_items",
           "observe_stored", "observed_flows", "run_discovery"]

PAGE = 5_000
STATE_VERSION = 1
STATE = Path("discover") / "state.json"  # the kept picture, under the workspace


def fingerprints_for(workspace: Path | None, extra: Sequence[Path] = ()) -> Fingerprints:
    """The shipped fingerprints, the workspace's `fingerprints/` folder if any, and `extra`."""
    folders = list(extra)
    if workspace is not None and (workspace / "fingerprints").is_dir():
        folders.insert(0, workspace / "fingerprints")
    return load_fingerprints(folders)


def stored_events(store: Store, after_id: int = 0, since: datetime | None = None,
                  until: datetime | None = None, through_id: int | None = None) -> Iterator[tuple[int, Event]]:
    """(id, event) of the stored events after `after_id` (up to `through_id`), in arrival order, page by page.

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
    if through_id is not None:
        window.append(events.c.id <= through_id)
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


def observe_new(store: Store, discovery: Discovery, after_id: int, through_id: int | None = None) -> tuple[int, int]:
    """Feed the events stored after `after_id` (up to `through_id`, in arrival order); (events read, the last id)."""
    observe = discovery.observe
    n, last = 0, after_id
    for last, event in stored_events(store, after_id, through_id=through_id):  # noqa: B007 - the last id read is part of the result
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
        _, report, inventory, read = discover_incremental(store, workspace / STATE,
                                                          fingerprints=prints, rebuild=rebuild)
    with store.read() as conn:
        advisories = load_advisories(conn)
    found = discovered_findings(report, inventory, advisories)
    raised = flow_alerts(report.flows, inventory)
    if store_alerts and raised:
        with store.transaction() as conn:
            save_alerts(conn, raised)
    return DiscoveryRun(report, inventory, found, raised, read)


# --- the Discovered view: accept (through the merge) or ignore (remembered) ----------------------------------

IGNORED = Path("discover") / "ignored.json"
ACCEPTED = Path("discover") / "accepted"
SECTIONS = ("device", "flow", "silent", "version")
# one view at a time per process: the picture (state.json) and the ignore list are read, changed and rewritten
_LOCK = threading.Lock()


def device_key(d: Device) -> str:
    return f"device:{d.ip}"


def flow_key(f: ObservedFlow) -> str:
    return f"flow:{f.client}>{f.server}:{f.transport or 'ip'}/{f.port if f.port is not None else '-'}"


def silent_key(asset_id: str) -> str:
    return f"silent:{asset_id}"


def version_key(c: Contradiction) -> str:
    """A contradiction's key names what was observed: a device that later announces yet another version is new."""
    return f"{c.field}:{c.asset_id}:{c.observed}"


@dataclass(frozen=True, slots=True)
class DiscoveredItem:
    """One line of the Discovered view: what the diff found, and whether the merge can take it."""

    key: str
    section: str  # "device", "flow", "silent" or "version"
    title: str
    severity: str
    acceptable: bool
    why_not: str  # when not acceptable: what to do instead
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "section": self.section, "title": self.title, "severity": self.severity,
                "acceptable": self.acceptable, "why_not": self.why_not, "detail": self.detail}


@dataclass
class DiscoveredView:
    """The diff `inventory discover` prints, as items with keys, less what a person chose to ignore."""

    report: DiscoveryReport
    items: list[DiscoveredItem]
    ignored: dict[str, dict[str, str]]  # key -> when, who, what it was

    def counts(self) -> dict[str, dict[str, int]]:
        """Per section: shown + ignored = what `inventory discover` counts."""
        shown = Counter(i.section for i in self.items)
        hidden = Counter(k.split(":", 1)[0] for k in self.ignored_now)
        return {s: {"shown": shown[s], "ignored": hidden[s]} for s in SECTIONS}

    @property
    def ignored_now(self) -> list[str]:
        """The ignored keys the current diff still has (the others are remembered, but nothing to hide)."""
        return [k for k in all_keys(self.report) if k in self.ignored]

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.report.summary(), "window": self.report.window, "counts": self.counts(),
                "items": [i.as_dict() for i in self.items],
                "ignored": [{"key": k, **self.ignored[k]} for k in self.ignored_now]}


def all_keys(report: DiscoveryReport) -> list[str]:
    return ([device_key(d) for d in report.undeclared_devices] + [flow_key(f) for f in report.undeclared_flows]
            + [silent_key(s["asset_id"]) for s in report.silent] + [version_key(c) for c in report.contradictions])


def _items(report: DiscoveryReport) -> list[DiscoveredItem]:
    placed = {d.ip for d in report.undeclared_devices if d.organisation and d.zone}
    out = []
    for d in report.undeclared_devices:
        fp = d.fingerprint
        model = " ".join(x for x in ((fp.vendor, fp.product, fp.version) if fp else ()) if x)
        out.append(DiscoveredItem(
            device_key(d), "device", f"{d.ip}: {model or d.kind} ({d.why_kind or 'no fingerprint'})", "medium",
            d.ip in placed, "" if d.ip in placed else "no declared neighbour in its subnet to take a zone from: "
            "declare it by hand (inventory merge)", d.as_dict()))
    for f in report.undeclared_flows:
        ends = [e for e, ip in ((f.source, f.client), (f.target, f.server))
                if e == INTERNET or (e.startswith("ip:") and ip not in placed)]
        why = ""
        if INTERNET in ends:
            why = "an end is the Internet: an inventory flow joins two assets"
        elif ends:
            why = "an end is an undeclared device without a zone: declare it by hand first"
        port = f"/{f.port}" if f.port else ""
        out.append(DiscoveredItem(flow_key(f), "flow", f"{f.source} → {f.target} {f.protocol}{port}", f.severity,
                                  not why, why, {**f.as_dict(), "attack_like": attack_like(f)}))
    for s in report.silent:
        out.append(DiscoveredItem(silent_key(s["asset_id"]), "silent", f"{s['asset_id']} ({s['kind']}) not seen",
                                  "low", False, "the merge adds and updates; retiring an asset is an inventory edit",
                                  s))
    for c in report.contradictions:
        out.append(DiscoveredItem(version_key(c), "version", f"{c.asset_id} {c.field} {c.declared} → {c.observed}",
                                  "medium", c.field == "version",
                                  "" if c.field == "version" else "a vendor is corrected by hand", c.as_dict()))
    return out


def _read_ignored(workspace: Path) -> dict[str, dict[str, str]]:
    try:
        data = orjson.loads((workspace / IGNORED).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _write_ignored(workspace: Path, ignored: dict[str, dict[str, str]]) -> None:
    path = workspace / IGNORED
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(ignored, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    tmp.replace(path)


def _current(store: Store, workspace: Path) -> tuple[DiscoveryReport, Inventory]:
    _, report, inventory, _ = discover_incremental(store, workspace / STATE, fingerprints_for(workspace))
    return report, inventory


def _view(report: DiscoveryReport, workspace: Path) -> DiscoveredView:
    ignored = _read_ignored(workspace)
    return DiscoveredView(report, [i for i in _items(report) if i.key not in ignored], ignored)


def discovered_view(store: Store, workspace: Path) -> DiscoveredView:
    """The Discovered view: the same picture and diff as `inventory discover` (state.json, read on from the last
    event it holds), as items with keys, ignored ones left out."""
    with _LOCK:
        report, _ = _current(store, workspace)
        return _view(report, workspace)


def _choose(view: DiscoveredView, keys: Sequence[str]) -> list[DiscoveredItem]:
    """The current items `keys` name; every key that names none is a problem (all reported, nothing done)."""
    by_key = {i.key: i for i in view.items}
    problems = [Problem(Location("keys"), f"{k!r} is no item of the Discovered view (accepted or ignored already, "
                        "or no longer seen)", "a key from GET /api/v1/discovered") for k in keys if k not in by_key]
    if not keys:
        problems.append(Problem(Location("keys"), "no item chosen", "one or more keys"))
    if problems:
        raise InputError(problems)
    return [by_key[k] for k in dict.fromkeys(keys)]


def ignore_items(store: Store, workspace: Path, keys: Sequence[str], by: str) -> DiscoveredView:
    """Remember `keys` as ignored (in the workspace's discover/ignored.json) so the view no longer lists them."""
    with _LOCK:
        report, _ = _current(store, workspace)
        chosen = _choose(_view(report, workspace), keys)
        ignored = _read_ignored(workspace)
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for item in chosen:
            ignored[item.key] = {"at": when, "by": by, "title": item.title}
        _write_ignored(workspace, ignored)
        return _view(report, workspace)


@dataclass
class AcceptResult:
    merge: MergeResult
    patch: Path  # the merged patch, kept in the workspace as the record of what was accepted
    view: DiscoveredView


def accept_items(store: Store, workspace: Path, keys: Sequence[str]) -> AcceptResult:
    """Accept items through the merge of `inventory merge`: the chosen devices, flows and versions as a patch in
    the inventory's schema, validated with the stored inventory and applied in one transaction, or nothing (an
    `InputError` with every problem)."""
    with _LOCK:
        report, inventory = _current(store, workspace)
        chosen = _choose(_view(report, workspace), keys)
        refused = [Problem(Location(i.key), f"cannot be accepted: {i.why_not}", "an acceptable item")
                   for i in chosen if not i.acceptable]
        if refused:
            raise InputError(refused)
        wanted = {i.key for i in chosen}
        selection = replace(
            report, devices=[d for d in report.devices if device_key(d) in wanted],
            flows=[f for f in report.flows if flow_key(f) in wanted], silent=[],
            contradictions=[c for c in report.contradictions if version_key(c) in wanted])
        # a device a chosen flow needs is named by its id: the merge refuses the flow unless the device is declared
        # or chosen with it, so that no asset comes in that nobody chose
        patch = build_patch(replace(selection, devices=selection.devices + [
            d for d in report.undeclared_devices if device_key(d) not in wanted and _needed(d, selection.flows)]),
            inventory)
        chosen_ids = {device_id(d.ip) for d in selection.devices}
        patch.assets = [a for a in patch.assets if a["id"] in chosen_ids]
        patch.flows += patch.held_back  # choosing a flow here is the decision the commented-out lines ask for
        patch.held_back = []
        folder = workspace / ACCEPTED
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.yaml"
        path.write_text(patch_text(patch, selection), encoding="utf-8")
        try:
            result = merge_patch(store, path)
        except InputError as exc:
            path.unlink()
            raise InputError([name_file(p, str(path), "the chosen items") for p in exc.problems]) from None
        report, _ = _current(store, workspace)
        return AcceptResult(result, path, _view(report, workspace))


def _needed(d: Device, flows: list[ObservedFlow]) -> bool:
    return any(d.ip in (f.client, f.server) for f in flows)
