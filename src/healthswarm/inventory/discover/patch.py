"""From a discovery report to a YAML patch in the inventory's own schema, and back into the inventory.

`write_patch` proposes: the undeclared devices as assets (organisation and zone of their /24, kind and
model from their fingerprint, the evidence in `attributes`), the undeclared flows between known
assets as flows, and the assets whose announced version contradicts the declared one as their whole
record with the observed version. Flows that look like an attack (severity high: a pump speaking SMB,
a modality reaching the Internet: `attack_like`) are written commented out: accepting them is a decision a person
makes by removing the `#`.

`merge_patch` applies a reviewed patch to the stored inventory: the patch is read by the inventory's
own loader together with the stored inventory (written out as YAML beside it), so every problem is
reported with the patch's file and line, and nothing is written unless the whole result is valid.
Assets, zones and organisations of the patch replace stored ones with the same id; flows and
dependencies are added (exact duplicates once). Findings of unchanged assets are kept; new and
changed assets are matched against the stored advisories again, all in one transaction.
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories import match_findings
from healthswarm.inventory.discover.diff import REMOTE_ADMIN, Device, DiscoveryReport, ObservedFlow
from healthswarm.inventory.loader import load_inventory
from healthswarm.model import MEDICAL_DEVICE_KINDS, Asset, Inventory, Level
from healthswarm.model.words import counted
from healthswarm.store import Store
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.vulns import load_advisories, load_findings, replace_findings

MIN_MODEL_CONFIDENCE = 0.5
_HOSTNAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")


def device_id(ip: str) -> str:
    return "disc-" + re.sub(r"[^0-9a-z]+", "-", ip.lower()).strip("-")


def asset_to_dict(a: Asset) -> dict[str, Any]:
    """An asset as the inventory YAML writes it (empty optional fields left out)."""
    out: dict[str, Any] = {"id": a.id, "organisation": a.organisation, "zone": a.zone, "kind": a.kind, "name": a.name}
    for key in ("vendor", "product", "version", "cpe"):
        if getattr(a, key):
            out[key] = getattr(a, key)
    if a.addresses:
        out["addresses"] = list(a.addresses)
    if a.hostnames:
        out["hostnames"] = list(a.hostnames)
    crit = {k: str(getattr(a.criticality, k)) for k in ("safety", "confidentiality", "availability")
            if getattr(a.criticality, k) is not Level.NONE}
    if crit:
        out["criticality"] = crit
    if a.records is not None:
        out["records"] = a.records
    if a.attributes:
        out["attributes"] = dict(a.attributes)
    hl7 = getattr(a, "hl7", None)  # the HL7 identity (MSH-3..6), where the model has one
    if hl7:
        out["hl7"] = hl7.as_dict()
    return out


def inventory_to_dict(inv: Inventory) -> dict[str, Any]:
    return {
        "organisations": [{"id": o.id, "name": o.name, "kind": o.kind, **({"country": o.country} if o.country else {})}
                          for o in inv.organisations],
        "zones": [{"id": z.id, "organisation": z.organisation, "name": z.name, "exposure": z.exposure}
                  for z in inv.zones],
        "assets": [asset_to_dict(a) for a in inv.assets],
        "flows": [{"from": f.source, "to": f.target, "protocol": f.protocol, **({"port": f.port} if f.port else {})}
                  for f in inv.flows],
        "dependencies": [{"from": d.source, "to": d.target, "kind": d.kind} for d in inv.dependencies],
    }


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=120)


def _device_asset(d: Device) -> dict[str, Any] | None:
    if not d.organisation or not d.zone:
        return None
    fp = d.fingerprint
    sure = fp is not None and fp.confidence >= MIN_MODEL_CONFIDENCE
    vendor, product = (fp.vendor, fp.product) if sure and fp else ("", "")
    label = " ".join(x for x in (vendor, product) if x) or d.kind
    out: dict[str, Any] = {"id": device_id(d.ip), "organisation": d.organisation, "zone": d.zone, "kind": d.kind,
                           "name": f"Discovered {label} at {d.ip}"}
    if vendor:
        out["vendor"] = vendor
    if product:
        out["product"] = product
    if sure and fp and fp.version:
        out["version"] = fp.version
    out["addresses"] = [str(ipaddress.ip_address(d.ip))]
    names = [n for n in d.names if _HOSTNAME.match(n)]
    if names:
        out["hostnames"] = names[:4]
    if d.kind in MEDICAL_DEVICE_KINDS:
        out["criticality"] = {"safety": "high"}
    attributes = {"discovered": "true", "first_seen": d.first_seen or "", "last_seen": d.last_seen or "",
                  "kind_from": d.why_kind or ""}
    if fp is not None:
        attributes["fingerprint_confidence"] = f"{fp.confidence:.2f}"
        attributes["evidence"] = "; ".join(f"{e['signal']}={e['value']}" for e in fp.evidence[:4])
    if d.macs:
        attributes["mac"] = ", ".join(d.macs)
    out["attributes"] = attributes
    return out


_ATTACK_CONCERNS = ("a medical device speaking", "a medical device reaching", "a vendor box reaching",
                    "the Internet reaching")


def attack_like(f: ObservedFlow) -> bool:
    """Flows the patch holds back (commented out): remote administration into a safety-critical device, a
    medical device speaking an administration protocol or reaching the Internet, a vendor box or the
    Internet reaching a clinical system. A pump's HTTPS to its server, merely undeclared, is proposed."""
    return (f.safety_critical_target and f.protocol in REMOTE_ADMIN) or any(
        c.startswith(_ATTACK_CONCERNS) for c in f.concerns)


def _flow_entry(f: ObservedFlow, source: str, target: str) -> dict[str, Any]:
    out: dict[str, Any] = {"from": source, "to": target, "protocol": f.protocol}
    if f.port:
        out["port"] = f.port
    out["description"] = (f"observed {counted(f.connections or f.events, 'time')} {f.first_seen} .. {f.last_seen}; "
                          + "; ".join(f.concerns))
    return out


@dataclass
class Patch:
    assets: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    flows: list[dict[str, Any]] = field(default_factory=list)
    held_back: list[dict[str, Any]] = field(default_factory=list)  # high-severity flows, commented out
    unplaced: list[str] = field(default_factory=list)  # devices whose zone could not be guessed
    external: list[str] = field(default_factory=list)  # flows to or from the Internet (no asset to name)


def build_patch(report: DiscoveryReport, inventory: Inventory) -> Patch:
    patch = Patch()
    known = {d.ip: device_id(d.ip) for d in report.undeclared_devices}
    for d in report.undeclared_devices:
        entry = _device_asset(d)
        if entry is None:
            patch.unplaced.append(d.ip)
            known.pop(d.ip, None)
        else:
            patch.assets.append(entry)
    assets = {a.id: a for a in inventory.assets}
    for c in report.contradictions:
        if c.field != "version" or c.asset_id not in assets:
            continue
        a = assets[c.asset_id]
        record = asset_to_dict(a)
        record["version"] = c.observed
        record.setdefault("attributes", {})["declared_version"] = a.version
        record["attributes"]["version_evidence"] = "; ".join(f"{e['signal']}={e['value']}" for e in c.evidence[:3])
        patch.updated.append(record)
    seen: set[tuple[str, str, str, int | None]] = set()
    for f in report.undeclared_flows:
        source = known.get(f.client) if f.source.startswith("ip:") else f.source
        target = known.get(f.server) if f.target.startswith("ip:") else f.target
        if source == "internet" or target == "internet" or source is None or target is None:
            patch.external.append(f"{f.client} -> {f.server} {f.protocol}/{f.port}: {'; '.join(f.concerns)}")
            continue
        key = (source, target, f.protocol, f.port)
        if key in seen:
            continue
        seen.add(key)
        (patch.held_back if attack_like(f) else patch.flows).append(_flow_entry(f, source, target))
    return patch


def patch_text(patch: Patch, report: DiscoveryReport) -> str:
    s = report.summary()
    lines = [
        "# healthswarm inventory patch from `healthswarm inventory discover`: review, then",
        "#   healthswarm inventory merge THIS-FILE",
        f"# window {report.window.get('first')} .. {report.window.get('last')}, {s['events']} events:",
        f"# {counted(len(patch.assets), 'undeclared device')}, {counted(len(patch.updated), 'contradicted version')}, "
        f"{counted(len(patch.flows), 'undeclared flow')} proposed, {len(patch.held_back)} held back (commented out at "
        "the end: they look like an attack; uncomment only what is legitimate)",
    ]
    if patch.unplaced:
        lines.append("# devices with no declared neighbour to take a zone from (declare them by hand): "
                     + ", ".join(patch.unplaced[:20]))
    if patch.external:
        lines.append("# flows that cannot be inventory flows (an end is the Internet or an unplaced device):")
        lines += [f"#   {x}" for x in patch.external[:50]]
    body: dict[str, Any] = {}
    if patch.assets or patch.updated:
        body["assets"] = patch.assets + patch.updated
    if patch.flows:
        body["flows"] = patch.flows
    text = "\n".join(lines) + "\n"
    if body:
        text += _dump(body)
    if patch.held_back:
        held = _dump({"flows": patch.held_back}).splitlines()
        if patch.flows:
            held = held[1:]  # the `flows:` key is already open above
        text += "# --- held back: undeclared flows that look like an attack (uncomment what is legitimate) ---\n"
        text += "\n".join(f"# {line}" for line in held) + "\n"
    return text


def write_patch(report: DiscoveryReport, inventory: Inventory, path: Path) -> Patch:
    patch = build_patch(report, inventory)
    path.write_text(patch_text(patch, report), encoding="utf-8")
    return patch


# --- merge -------------------------------------------------------------------------------------------------

@dataclass
class MergeResult:
    added_assets: list[str]
    replaced_assets: list[str]
    added_flows: int
    added_dependencies: int
    findings_before: int
    findings_after: int
    inventory: Inventory

    def as_dict(self) -> dict[str, Any]:
        return {"added_assets": self.added_assets, "replaced_assets": self.replaced_assets,
                "added_flows": self.added_flows, "added_dependencies": self.added_dependencies,
                "findings_before": self.findings_before, "findings_after": self.findings_after}


def _patch_ids(path: Path) -> dict[str, set[str]]:
    """Ids the patch defines per section (a malformed patch defines none: the loader reports it)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(Problem(Location(str(path)), "no such file", "an inventory patch YAML file")) from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    out: dict[str, set[str]] = {}
    if isinstance(data, dict):
        for section in ("organisations", "zones", "assets"):
            items = data.get(section)
            if isinstance(items, list):
                out[section] = {str(i["id"]) for i in items if isinstance(i, dict) and "id" in i}
    return out


STORED = "the stored inventory"


def name_file(problem: Problem, temporary: str, name: str = STORED) -> Problem:
    """A problem that points into a temporary file (the stored inventory's copy) names what it holds instead."""
    location = problem.location
    if location.file == temporary:
        location = Location(name, None, location.field)
    message = re.sub(re.escape(temporary) + r":\d+", name, problem.message)
    return Problem(location, message, problem.expected)


def merged_inventory(current: Inventory, path: Path) -> tuple[Inventory, set[str], set[str]]:
    """The inventory `current` + the patch at `path`, validated by the loader (line-numbered problems);
    also the ids of added and replaced assets."""
    ids = _patch_ids(path)
    replaced = {s: ids.get(s, set()) for s in ("organisations", "zones", "assets")}
    base = Inventory(
        organisations=tuple(o for o in current.organisations if o.id not in replaced["organisations"]),
        zones=tuple(z for z in current.zones if z.id not in replaced["zones"]),
        assets=tuple(a for a in current.assets if a.id not in replaced["assets"]),
        flows=current.flows, dependencies=current.dependencies,
    )
    with tempfile.TemporaryDirectory(prefix="healthswarm-merge-") as tmp:
        stored = Path(tmp) / "stored-inventory.yaml"
        stored.write_text(_dump(inventory_to_dict(base)), encoding="utf-8")
        try:
            merged = load_inventory([stored, path])
        except InputError as exc:
            raise InputError([name_file(p, str(stored)) for p in exc.problems]) from None
    flows = tuple(dict.fromkeys(merged.flows))
    deps = tuple(dict.fromkeys(merged.dependencies))
    merged = Inventory(merged.organisations, merged.zones, merged.assets, flows, deps)
    before = {a.id for a in current.assets}
    patch_assets = ids.get("assets", set())
    return merged, patch_assets - before, patch_assets & before


def merge_patch(store: Store, path: Path, dry_run: bool = False) -> MergeResult:
    """Apply a reviewed patch to the stored inventory in one transaction (nothing on any problem)."""
    with store.read() as conn:
        current = stored_inventory(conn)
    merged, added, replaced = merged_inventory(current, path)
    with store.transaction() as conn:
        old = load_findings(conn)
        changed = added | replaced
        kept = [f for f in old if f.asset_id not in changed]
        advisories = load_advisories(conn) if changed else []
        fresh = match_findings(advisories, [a for a in merged.assets if a.id in changed]) if advisories else []
        if not dry_run:
            replace_inventory(conn, merged)
            replace_findings(conn, kept + fresh)
    return MergeResult(sorted(added), sorted(replaced), len(merged.flows) - len(current.flows),
                       len(merged.dependencies) - len(current.dependencies), len(old), len(kept) + len(fresh),
                       merged)
