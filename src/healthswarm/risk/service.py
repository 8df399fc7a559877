"""What the CLI, the API and the dashboard call about risk: the attack graph of the stored ecosystem, the path
question a form starts from, and an incident's predicted next targets (stored by `live.annotate_incidents`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from healthswarm.model import Finding
from healthswarm.risk.attack_graph import AttackGraph, build_attack_graph
from healthswarm.risk.engine import default_targets, suggested_query
from healthswarm.risk.likelihood import Likelihood
from healthswarm.risk.profiles import PROFILES
from healthswarm.risk.reach import ZonePolicy
from healthswarm.store.alerts import load_incident, load_incidents
from healthswarm.store.inventory import load_inventory
from healthswarm.store.vulns import load_findings

#: how many targets the path form offers
FORM_TARGETS = 30


def stored_attack_graph(conn: Connection, findings: list[Finding] | None = None, policy: ZonePolicy | None = None,
                        likelihood: Likelihood | None = None) -> AttackGraph:
    """The attack graph of the stored inventory and its stored findings (or of `findings`, when given)."""
    return build_attack_graph(load_inventory(conn), load_findings(conn) if findings is None else findings,
                              policy, likelihood)


def path_form(conn: Connection) -> dict[str, Any]:
    """A path question worth asking first (from the open incidents), and the choices a form offers: attacker
    profiles, organisations, the targets of highest harm."""
    facts = stored_attack_graph(conn).facts
    return {**suggested_query(facts, [i.as_dict() for i in load_incidents(conn)]),
            "profiles": {name: p.description for name, p in sorted(PROFILES.items())},
            "organisations": sorted(facts.org_kind), "targets": default_targets(facts, FORM_TARGETS)}


def predicted_next(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    """An incident's predicted next targets and the footholds they were predicted from (`annotated` is False
    until live risk has read the incident); None when the incident is unknown."""
    incident = load_incident(conn, incident_id)
    if incident is None:
        return None
    notes = incident.annotations
    return {"incident": incident_id, "annotated": notes.get("predicted_next") is not None,
            "from": notes.get("predicted_from") or [], "predicted_next": notes.get("predicted_next") or []}
