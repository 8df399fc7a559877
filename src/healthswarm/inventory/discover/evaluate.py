"""Does discovery find a removed part of the inventory again? Precision and recall on the demo ecosystem.

`holdout(inventory, fraction, seed)` removes a random `fraction` of the assets (with every flow and
dependency that touches them) and then `fraction` of the remaining flows. `score` compares the report of
discovery *against the reduced inventory* with what was removed:
- removed devices found again: an undeclared device at a removed asset's address;
- removed flows found again: an undeclared flow between the removed flow's addresses that satisfies
  its protocol and port;
- false "undeclared" on the untouched part: observed flows that the reduced inventory declares but the
  report calls undeclared, over all observed flows it declares (likewise devices); precision of the
  undeclared flows between assets is 1 minus those over all reported (the rest are removed flows or
  traffic the full inventory does not declare either, such as the implied dependency traffic);
- fingerprints of the devices found again: vendor (and product, version) agree with the removed asset;
- version contradictions against the simulated ones.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from healthswarm.inventory.discover.diff import DiscoveryReport, vendors_agree, versions_agree
from healthswarm.inventory.discover.protocols import satisfies
from healthswarm.model import Asset, Flow, Inventory


def holdout(inventory: Inventory, fraction: float = 0.2, seed: int = 42) -> tuple[Inventory, list[Asset], list[Flow]]:
    rng = random.Random(seed)
    assets = list(inventory.assets)
    removed_assets = rng.sample(assets, round(len(assets) * fraction))
    gone = {a.id for a in removed_assets}
    touching = [f for f in inventory.flows if f.source in gone or f.target in gone]
    remaining = [f for f in inventory.flows if f.source not in gone and f.target not in gone]
    removed_flows = rng.sample(remaining, round(len(inventory.flows) * fraction))
    dropped = set(removed_flows)
    reduced = replace(
        inventory,
        assets=tuple(a for a in inventory.assets if a.id not in gone),
        flows=tuple(f for f in remaining if f not in dropped),
        dependencies=tuple(d for d in inventory.dependencies if d.source not in gone and d.target not in gone),
    )
    return reduced, removed_assets, touching + removed_flows


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def score(report: DiscoveryReport, full: Inventory, reduced: Inventory, removed_assets: list[Asset],
          removed_flows: list[Flow], contradicted: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    addresses = {a.id: set(a.addresses) for a in full.assets}
    undeclared_ips = {d.ip: d for d in report.undeclared_devices}
    observed_ips = {d.ip for d in report.devices}

    # devices
    seen_removed = [a for a in removed_assets if addresses[a.id] & observed_ips]
    found = [a for a in removed_assets if addresses[a.id] & undeclared_ips.keys()]
    vendor_ok = product_ok = version_ok = with_vendor = with_version = 0
    for a in found:
        d = undeclared_ips[next(iter(addresses[a.id] & undeclared_ips.keys()))]
        fp = d.fingerprint
        if a.vendor:
            with_vendor += 1
            if fp is not None and vendors_agree(a.vendor, fp.vendor):
                vendor_ok += 1
                if fp.product and a.product and fp.product.lower() == a.product.lower():
                    product_ok += 1
        if a.version:
            with_version += 1
            if fp is not None and fp.version and versions_agree(a.version, fp.version):
                version_ok += 1
    reduced_ids = {a.id for a in reduced.assets}
    declared_seen = [d for d in report.devices if d.asset_id in reduced_ids]

    # flows
    undeclared = report.undeclared_flows
    by_pair: dict[tuple[str, str], list[Any]] = {}
    for f in undeclared:
        by_pair.setdefault((f.client, f.server), []).append(f)

    def rediscovered(flow: Flow) -> bool:
        for client in addresses.get(flow.source, ()):
            for server in addresses.get(flow.target, ()):
                candidates = by_pair.get((client, server), ())
                if any(satisfies(o.protocol, o.port, flow.protocol, flow.port) for o in candidates):
                    return True
        return False

    def observed(flow: Flow) -> bool:
        pairs = {(f.client, f.server) for f in report.flows}
        return any((c, s) in pairs for c in addresses.get(flow.source, ()) for s in addresses.get(flow.target, ()))

    observed_removed = [f for f in removed_flows if observed(f)]
    found_flows = [f for f in removed_flows if rediscovered(f)]
    untouched = [f for f in report.flows if any(
        f.source == d.source and f.target == d.target and satisfies(f.protocol, f.port, d.protocol, d.port)
        for d in reduced.flows)]
    false_undeclared_flows = [f for f in untouched if f.status == "undeclared"]
    removed_set = set(removed_flows)
    reported_undeclared_between_assets = [f for f in undeclared if not f.source.startswith("ip:")
                                          and not f.target.startswith("ip:") and "internet" not in (f.source, f.target)]
    true_removed_hits = [f for f in reported_undeclared_between_assets if any(
        d.source == f.source and d.target == f.target and satisfies(f.protocol, f.port, d.protocol, d.port)
        for d in removed_set)]

    out: dict[str, Any] = {
        "declared_assets": len(full.assets), "declared_flows": len(full.flows),
        "removed_assets": len(removed_assets), "removed_flows": len(removed_flows),
        "devices": {
            "removed_seen_in_traffic": len(seen_removed), "rediscovered": len(found),
            "recall": _ratio(len(found), len(removed_assets)),
            "recall_of_those_with_traffic": _ratio(len(found), len(seen_removed)),
            "declared_seen": len(declared_seen),
            "false_undeclared_on_untouched": 0,  # an address the reduced inventory declares resolves to its asset
            "fingerprint_vendor_agrees": _ratio(vendor_ok, with_vendor),
            "fingerprint_product_agrees": _ratio(product_ok, with_vendor),
            "fingerprint_version_agrees": _ratio(version_ok, with_version),
        },
        "flows": {
            "removed_seen_in_traffic": len(observed_removed), "rediscovered": len(found_flows),
            "recall": _ratio(len(found_flows), len(removed_flows)),
            "recall_of_those_with_traffic": _ratio(len(found_flows), len(observed_removed)),
            "untouched_declared_observed": len(untouched),
            "false_undeclared_on_untouched": len(false_undeclared_flows),
            "false_undeclared_rate": _ratio(len(false_undeclared_flows), len(untouched)),
            "undeclared_between_assets_reported": len(reported_undeclared_between_assets),
            # wrong only where the reduced inventory declares it; the rest is removed or truly undeclared traffic
            "precision": _ratio(len(reported_undeclared_between_assets) - len(false_undeclared_flows),
                                len(reported_undeclared_between_assets)),
            "removed_share_of_reported": _ratio(len(true_removed_hits), len(reported_undeclared_between_assets)),
        },
    }
    if contradicted is not None:
        reported = {(c.asset_id, c.observed) for c in report.contradictions if c.field == "version"}
        truth = {(a, observed) for a, (_, observed) in contradicted.items() if a in reduced_ids}
        hits = {r for r in reported if r in truth}
        out["contradictions"] = {"simulated_on_declared_assets": len(truth), "reported": len(reported),
                                 "correct": len(hits), "recall": _ratio(len(hits), len(truth)),
                                 "precision": _ratio(len(hits), len(reported))}
    return out
