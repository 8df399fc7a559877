"""What an organisation's node publishes from its own store: (kind, data) pairs for `SwarmNode.publish`.

The incidents' evidence is selected where a report for peers selects it (`share.service.select_incidents`),
so an incident offers the swarm the same indicators it offers a report:

- `indicator`: the public observables of the incidents' alerts (share/derive.py: internal addresses and
  names never leave), with their ATT&CK techniques;
- `technique`: the techniques those alerts show;
- `risk`: the vendor and model of every medical device (or device server, gateway) one of the incidents
  involves — what lets another organisation with the same pump model raise that model's risk.
  A vendor and a product name are public catalogue facts, not internal names; the asset id, address
  and location never leave.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection

from healthswarm.model import Asset
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.service import select_incidents
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from healthswarm.store.inventory import load_inventory

#: assets whose vendor and model matter to a peer with the same devices: the devices, and what runs them
DEVICE_KINDS = frozenset({"medical-device-server", "iomt-gateway"})
DEVICE_CONFIDENCE = 70


def is_device(asset: Asset) -> bool:
    return asset.is_medical_device or asset.kind in DEVICE_KINDS


def device_items(conn: Connection, organisation: str,
                 incidents: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """One `risk` item per distinct (vendor, model) of our devices in our open incidents (or in `incidents`)."""
    return _device_items(conn, organisation, [
        i.assets for i in load_incidents(conn)
        if (i.id in incidents if incidents is not None else i.state not in CLOSED_STATES)])


def _device_items(conn: Connection, organisation: str,
                  involved: Iterable[Iterable[str]]) -> list[tuple[str, dict[str, Any]]]:
    """One `risk` item per distinct (vendor, model) of our devices among the asset ids of each incident."""
    ours = {a.id: a for a in load_inventory(conn).assets if a.organisation == organisation}
    seen: dict[tuple[str, str], None] = {}
    for assets in involved:
        for ident in assets:
            asset = ours.get(ident)
            if asset is not None and is_device(asset) and asset.vendor and asset.product:
                seen.setdefault((asset.vendor, asset.product), None)
    return [("risk", {"vendor": vendor, "model": model, "confidence": DEVICE_CONFIDENCE})
            for vendor, model in sorted(seen)]


def items_from_store(store: Store, organisation: str, known: Sensitive,
                     incidents: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Indicators, techniques and device models to publish for `organisation` (see the module docstring): of
    our open incidents, or with `incidents` of those only (an analyst's hold or veto of another incident then
    keeps its evidence in). Only those incidents' alerts are read.

    Candidates only: what leaves is what the egress gate releases of them (`service.publish_from_store`)."""
    selection = select_incidents(store, known, incidents)
    with store.read() as conn:
        devices = _device_items(conn, organisation, [i["assets"] for i in selection.incidents])
    out: list[tuple[str, dict[str, Any]]] = [
        ("indicator", {"type": ind.type, "value": ind.value, "confidence": ind.confidence,
                       "techniques": list(ind.techniques)}) for ind in selection.indicators]
    out += [("technique", {"technique": t, "confidence": 60})
            for t in sorted({t.id for a in selection.alerts for t in a.techniques})]
    return out + devices
