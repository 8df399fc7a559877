"""What the organisation could share now: the one selection the CLI, the API, the demo and the agent use.

Selecting is not releasing: everything selected here still passes the egress gate (`egress.py`), which
applies the sharing policy, sanitises, leak-checks and signs. Keeping the selection in one place means
`share export`, `share preview` and the demo cannot disagree about what an export holds, and an incident's
report and the swarm's items about it (`select_incidents`) cannot disagree about its indicators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from healthswarm.model import Indicator
from healthswarm.model.incident import CLOSED_STATES
from healthswarm.share.derive import indicators_from_alerts
from healthswarm.share.egress import EgressGate, Preview, Released, Selection
from healthswarm.share.indicators import load_indicators
from healthswarm.share.known import known_from_store
from healthswarm.share.misp import write_feed
from healthswarm.share.sanitise import Policy
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import DEFAULT_VALIDITY, TrustStore, VerificationError, strip_signature, verify_document
from healthswarm.share.stix_import import import_bundle
from healthswarm.store import Store
from healthswarm.store.alerts import incident_alerts, load_alerts, load_incident, load_incidents
from healthswarm.store.inventory import load_inventory
from healthswarm.store.vulns import load_findings


def organisation_of(store: Store, configured: str = "") -> str:
    """The organisation we speak for: the configured one, else the inventory's only organisation, else ""."""
    if configured:
        return configured
    with store.read() as conn:
        orgs = load_inventory(conn).organisations
    return orgs[0].id if len(orgs) == 1 else ""


def sensitive_values(store: Store, organisation: str = "") -> Sensitive:
    """What the organisation must never let out (its inventory part, and every user, host, address and
    patient value of its stored events). A name the inventory has no asset for (a swarm node named otherwise
    than its organisation, a typo) protects the whole inventory: narrowing to nothing would let it all out."""
    with store.read() as conn:
        if organisation and all(a.organisation != organisation for a in load_inventory(conn).assets):
            organisation = ""
        return known_from_store(conn, organisation or None)


def select_export(store: Store, organisation: str, *, since: datetime | None = None, alerts: bool = True,
                  findings: bool = True, indicators: bool = True) -> Selection:
    """Stored alerts and incidents (from `since`), the organisation's findings and our own indicators."""
    out = Selection()
    with store.read() as conn:
        out.assets = {a.id: a for a in load_inventory(conn).assets}
        if findings:
            out.findings = [f for f in load_findings(conn) if not organisation
                            or (f.asset_id in out.assets and out.assets[f.asset_id].organisation == organisation)]
        if indicators:
            out.indicators = load_indicators(conn, own_only=True)
        if alerts:
            out.alerts = [stored.alert for stored in load_alerts(conn, since=since)]
            out.incidents = [i.as_dict() for i in load_incidents(conn) if since is None or i.last_seen >= since]
    return out


def select_incidents(store: Store, known: Sensitive, incidents: Collection[str] | None = None) -> Selection:
    """The incidents `incidents` (unknown ids left out; None: every open incident), their alerts and the public
    indicators those alerts name (`derive.py`).

    The one answer to "what may an incident offer peers": a report for peers (`select_incident`) and the swarm's
    items (`swarm.derive.items_from_store`) are both made of it, so the same incident offers both the same
    indicators. Alerts in no incident (suppressed) and the incidents not asked for offer nothing."""
    with store.read() as conn:
        if incidents is None:
            found = [i for i in load_incidents(conn) if i.state not in CLOSED_STATES]
        else:
            found = [i for ident in sorted(set(incidents)) if (i := load_incident(conn, ident)) is not None]
        alerts = [stored.alert for stored in incident_alerts(conn, [i.id for i in found])]
    return Selection(alerts=alerts, incidents=[i.as_dict() for i in found],
                     indicators=indicators_from_alerts(alerts, known))


def select_incident(store: Store, incident_id: str, known: Sensitive) -> Selection:
    """One incident, its alerts and the public indicators they name: what a report to peers is made of."""
    selection = select_incidents(store, known, [incident_id])
    if not selection.incidents:
        raise KeyError(incident_id)
    return selection


def open_incident_ids(store: Store) -> list[str]:
    with store.read() as conn:
        return [i.id for i in load_incidents(conn) if i.state not in CLOSED_STATES]


def gate(store: Store, workspace: Path, organisation: str, validity: timedelta = DEFAULT_VALIDITY) -> EgressGate:
    """The organisation's egress gate, knowing every sensitive value of its store."""
    return EgressGate.in_workspace(workspace, organisation, sensitive_values(store, organisation), validity)


def export_stix(store: Store, workspace: Path, organisation: str, policy: Policy, selection: Selection, *,
                pap: str | None = None, validity: timedelta = DEFAULT_VALIDITY) -> tuple[Released, list[str]]:
    """A signed bundle of the selection (Refused when the leak check finds anything)."""
    return gate(store, workspace, organisation, validity).stix(policy, selection, pap=pap)


def export_misp(store: Store, workspace: Path, organisation: str, policy: Policy, selection: Selection,
                folder: Path, *, pap: str | None = None) -> Released:
    """The selection as an event of the MISP feed in `folder`."""
    released = gate(store, workspace, organisation).misp(policy, selection, pap=pap)
    write_feed(folder, released)
    return released


def report_for_peers(store: Store, workspace: Path, organisation: str, policy: Policy,
                     incident_id: str) -> Released:
    """One incident for peers: its report, techniques and public indicators, sanitised and signed."""
    egress = gate(store, workspace, organisation)
    return egress.report(policy, select_incident(store, incident_id, egress.known))


def publish_taxii(store: Store, workspace: Path, organisation: str, policy: Policy, selection: Selection,
                  collection_id: str) -> tuple[Released, int]:
    """Add the selection's objects, each signed, to our TAXII collection; (release, objects stored)."""
    from healthswarm.share.taxii import storage

    released = gate(store, workspace, organisation).taxii(policy, selection)
    storage.setup(store.engine)
    with store.transaction() as conn:
        successes, _failures = storage.add_objects(conn, collection_id, released.require("taxii").payload)
    return released, len(successes)


def preview(store: Store, workspace: Path, organisation: str, policy: Policy, paths: list[str]) -> list[Preview]:
    """What each bundle path would release now (see `EgressGate.preview_bundle`); gossip is the swarm's."""
    egress = gate(store, workspace, organisation)
    out = []
    for path in paths:
        if path == "report":
            selections = [select_incident(store, ident, egress.known) for ident in open_incident_ids(store)]
        else:
            selections = [select_export(store, organisation)]
        out.append(egress.preview_bundle(path, policy, selections, policy.group))
    return out


@dataclass
class Pulled:
    """Indicators of the objects pulled from a TAXII server that trusted peers signed; why the rest was refused."""

    indicators: list[Indicator] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)


def verify_pulled(objects: list[Any], workspace: Path, source: str) -> Pulled:
    """Verify each object's signature against our trust store (the server's word is not enough), then
    validate and parse the accepted ones; each indicator is attributed to the peer that signed it."""
    trust = TrustStore.in_workspace(workspace)
    out = Pulled()
    by_peer: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        try:
            peer = verify_document(obj, trust)
        except VerificationError as exc:
            out.refused[exc.reason] += 1
            continue
        by_peer.setdefault(peer.key_id, []).append(strip_signature(obj))
    for key_id, accepted in by_peer.items():
        bundle = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": accepted}
        for indicator in import_bundle(bundle, source).indicators:
            indicator.extra = {**indicator.extra, "peer_key": key_id}
            indicator.source = indicator.source or key_id
            out.indicators.append(indicator)
    return out
