"""What an organisation's node publishes from its own store: (kind, data) pairs for `SwarmNode.publish`.

- `indicator`: the public observables of its alerts (share/derive.py: internal addresses and names
  never leave), with their ATT&CK techniques;
- `technique`: the techniques its alerts show;
- `risk`: the vendor and model of every medical device (or device server, gateway) one of its open
  incidents involves — what lets another organisation with the same pump model raise that model's risk.
  A vendor and a product name are public catalogue facts, not internal names; the asset id, address
  and location never leave.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection

from healthswarm.model import Asset
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.share.derive import indicators_from_alerts
from healthswarm.share.sensitive import Sensitive
from healthswarm.store import Store
from healthswarm.store.alerts import load_alerts, load_incidents
from healthswarm.store.inventory import load_inventory

#: assets whose vendor and model matter to a peer with the same devices: the devices, and what runs them
DEVICE_KINDS = frozenset({"medical-device-server", "iomt-gateway"})
DEVICE_CONFIDENCE = 70


def is_device(asset: Asset) -> bool:
    return asset.is_medical_device or asset.kind in DEVICE_KINDS


def device_items(conn: Connection, organisation: str,
                 incidents: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """One `risk` item per distinct (vendor, model) of our devices in our open incidents (or in `incidents`)."""
    ours = {a.id: a for a in load_inventory(conn).assets if a.organisation == organisation}
    seen: dict[tuple[str, str], None] = {}
    for incident in load_incidents(conn):
        if incident.state in CLOSED_STATES or (incidents is not None and incident.id not in incidents):
            continue
        for ident in incident.assets:
            asset = ours.get(ident)
            if asset is not None and is_device(asset) and asset.vendor and asset.product:
                seen.setdefault((asset.vendor, asset.product), None)
    return [("risk", {"vendor": vendor, "model": model, "confidence": DEVICE_CONFIDENCE})
            for vendor, model in sorted(seen)]


def items_from_store(store: Store, organisation: str, known: Sensitive,
                     incidents: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Indicators, techniques and device models to publish for `organisation` (see the module docstring);
    with `incidents`, only what those incidents' alerts show (an analyst's hold or veto of another incident
    then keeps its evidence in).

    Candidates only: what leaves is what the egress gate releases of them (`service.publish_from_store`)."""
    with store.read() as conn:
        alerts = [stored.alert for stored in load_alerts(conn)
                  if incidents is None or stored.incident_id in incidents]
        devices = device_items(conn, organisation, incidents)
    out: list[tuple[str, dict[str, Any]]] = []
    techniques = sorted({t.id for a in alerts for t in a.techniques})
    for ind in indicators_from_alerts(alerts, known):
        if ind.type == "attack-technique":
            techniques.append(ind.value)
        else:
            out.append(("indicator", {"type": ind.type, "value": ind.value, "confidence": ind.confidence,
                                      "techniques": list(ind.techniques)}))
    out += [("technique", {"technique": t, "confidence": 60}) for t in dict.fromkeys(techniques)]
    return out + devices
