"""An undeclared flow into a safety-critical device is an alert, with ATT&CK for ICS technique ids.

Two ways in, one rule:
- `flow_alerts(report)`: the alerts of a finished discovery report (the batch command);
- `DiscoveryDetector`: the detector protocol (`name`, `detect(event)`, `flush()`) around a live
  `Discovery`, so the agent or `detect` feed it events as they arrive; it looks at a flow once, when
  its first event creates it, so its cost per event is the aggregation's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from healthswarm.inventory.addresses import AddressIndex
from healthswarm.inventory.discover.diff import INTERNET, REMOTE_ADMIN, ObservedFlow, address_class, safety_critical
from healthswarm.inventory.discover.observe import Discovery, FlowKey
from healthswarm.inventory.discover.protocols import classify, satisfies
from healthswarm.model import Alert, AttackRef, Event, EventRef, Inventory

DETECTOR = "discover"
RULE_ID = "discover/undeclared-flow-into-safety-critical-device"

# ATT&CK for ICS (v18) ids and names, and their tactics
T = {
    "T0886": "Remote Services", "T0867": "Lateral Tool Transfer", "T0883": "Internet Accessible Device",
    "T0822": "External Remote Services", "T0848": "Rogue Master", "T0869": "Standard Application Layer Protocol",
}
TACTICS = {"initial-access": ("TA0108", "Initial Access"), "lateral-movement": ("TA0109", "Lateral Movement"),
           "command-and-control": ("TA0101", "Command and Control")}


def techniques_for(protocol: str, source: str) -> tuple[list[str], list[str]]:
    """(technique ids, tactic short names) for an undeclared flow of `protocol` from `source`."""
    ids, tactics = [], []
    if source == INTERNET:
        ids += ["T0883", "T0822"]
        tactics.append("initial-access")
    elif source.startswith("ip:"):
        ids.append("T0848")
        tactics.append("initial-access")
    if protocol in REMOTE_ADMIN:
        ids.append("T0886")
        tactics.append("lateral-movement")
        if protocol in ("smb", "ftp", "sftp"):
            ids.append("T0867")
    if not ids:
        ids.append("T0869")
        tactics.append("command-and-control")
    return ids, list(dict.fromkeys(tactics))


def _alert(flow: ObservedFlow, target_kind: str, when: datetime, events: tuple[EventRef, ...] = ()) -> Alert:
    ids, tactics = techniques_for(flow.protocol, flow.source)
    port = f"/{flow.port}" if flow.port else ""
    return Alert(
        detector=DETECTOR, rule_id=RULE_ID,
        title=f"Undeclared {flow.protocol}{port} flow into safety-critical {target_kind} {flow.target}",
        level="high", timestamp=when, events=events,
        techniques=tuple(AttackRef(i, T[i]) for i in ids),
        tactics=tuple(AttackRef(TACTICS[t][0], TACTICS[t][1], t) for t in tactics),
        assets=tuple(a for a in (flow.target, flow.source) if a != INTERNET and not a.startswith("ip:")),
        tags=("attack.ics", *(f"attack.{i.lower()}" for i in ids)),
        description=(f"{flow.client} ({flow.source}) opened {flow.protocol}{port} to {flow.server} ({flow.target}), "
                     "a device whose compromise can hurt a patient; no declared flow allows it."),
        details={"client": flow.client, "server": flow.server, "port": flow.port, "protocol": flow.protocol,
                 "source": flow.source, "target": flow.target, "first_seen": flow.first_seen,
                 "concerns": list(flow.concerns), "observed": True},
    )


def flow_alerts(report_flows: list[ObservedFlow], inventory: Inventory) -> list[Alert]:
    kinds = {a.id: a.kind for a in inventory.assets}
    out = []
    for f in report_flows:
        if f.status == "undeclared" and f.safety_critical_target:
            when = datetime.fromisoformat(f.first_seen) if f.first_seen else datetime.now(UTC)
            # the flow stands for its events: its own reference keeps the alert id distinct per flow
            ref = EventRef(f"discover:{f.client}>{f.server}:{f.port}/{f.transport}", 0, "", when)
            out.append(_alert(f, kinds.get(f.target, "device"), when, (ref,)))
    return out


class DiscoveryDetector:
    """The detector protocol around a live Discovery: observes every event, alerts once per new flow
    into a safety-critical asset that no declared flow allows."""

    name = DETECTOR

    def __init__(self, inventory: Inventory, discovery: Discovery | None = None) -> None:
        self.discovery = discovery or Discovery()
        self.index = AddressIndex(inventory.assets)
        self.assets = {a.id: a for a in inventory.assets}
        self.critical = {a.id for a in inventory.assets if safety_critical(a)}
        self.declared: dict[tuple[str, str], list[tuple[str, int | None]]] = {}
        for f in inventory.flows:
            self.declared.setdefault((f.source, f.target), []).append((f.protocol, f.port))

    def detect(self, event: Event) -> list[Alert]:
        key = self.discovery.observe(event)
        if key is None:
            return []
        return self._check(key, event)

    def _check(self, key: FlowKey, event: Event) -> list[Alert]:
        client, server, port, transport = key
        target = self.index.lookup(server)
        if target not in self.critical:
            return []
        source = self.index.lookup(client)
        stats = self.discovery.flows.get(key)
        protocol = classify(transport, port, stats.app if stats else event.fields.get("network.protocol"))
        if source is not None and any(satisfies(protocol, port, p, dp)
                                      for p, dp in self.declared.get((source, target), ())):
            return []
        src = source or (f"ip:{client}" if address_class(client) == "internal" else INTERNET)
        first = event.timestamp.timestamp()
        flow = ObservedFlow(client, server, port, transport, protocol, src, target or "", first, first, 1, 1, 0,
                            "undeclared", concerns=[f"into a safety-critical {self.assets[target].kind}"],
                            severity="high", safety_critical_target=True)
        ref = EventRef(event.source, event.record, event.key, event.timestamp)
        return [_alert(flow, self.assets[target].kind, event.timestamp, (ref,))]

    def flush(self) -> list[Alert]:
        return []
