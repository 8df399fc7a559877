"""Indicators worth sharing, derived from our own alerts: the public observables they name.

Internal addresses, names on our hosts or under our domains, user names and patient values never become
indicators (the egress gate would refuse them anyway, and has the final word); what is left — external
addresses, domains, hashes, URLs — is what a peer can watch for. Each indicator keeps the ATT&CK
techniques of the alerts that saw it and the time span it was seen in.
"""

from __future__ import annotations

from collections.abc import Iterable

from healthswarm.model import Alert, Indicator
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.stix_export import observables_of


def indicators_from_alerts(alerts: Iterable[Alert], known: Sensitive, confidence: int = 70,
                           tlp: str = "amber") -> list[Indicator]:
    found: dict[tuple[str, str], Indicator] = {}
    for alert in alerts:
        for kind, value in observables_of(alert.details):
            if (known.internal_observable(kind, value) is not None or value.lower() in known.hosts
                    or value in known.users or value in known.patients):
                continue
            techniques = tuple(t.id for t in alert.techniques)
            current = found.get((kind, value))
            if current is None:
                found[(kind, value)] = Indicator(
                    value=value, type=kind, first_seen=alert.timestamp, last_seen=alert.timestamp,
                    confidence=confidence, tlp=tlp, description=f"seen in: {alert.title}", techniques=techniques)
            else:
                current.first_seen = min(current.first_seen, alert.timestamp)
                current.last_seen = max(current.last_seen, alert.timestamp)
                current.techniques = tuple(dict.fromkeys(current.techniques + techniques))
    return list(found.values())
