"""Playbooks by policy: when correlation opens or grows an incident the policy covers, the incident's case is
opened (or brought up to date) and the matching playbooks of the library start, without waiting for an analyst
(the use case: `service.respond_by_policy`; in the agent: agent/respond.py).

Covered: an open incident at or above `min_severity`, or showing one of `techniques` / `tactics`, or (with
`safety_critical`) involving an asset of high safety criticality. Playbooks: those named, and with "auto" the
library playbooks whose condition in `AUTO` holds for the case.

What runs: every step is planned first (a dry run, so a step that cannot be planned starts nothing); then an
automated action runs only when its kind is one of `auto_actions` (by default the ones that disrupt nothing:
`SAFE_ACTIONS`) and the patient-safety guardrail does not hold it. Every other action waits in the case as a task for an
analyst, with the guardrail's reason and the clinical fallback where it holds the action: isolating a
life-critical device never runs by itself, whatever the policy says. Manual steps are tasks, as always.

Once only: each run is recorded in the case's audit chain (`playbook-run`) in the same transaction as the case
it changes, and a playbook the chain shows for the incident's case (run by the policy or by an analyst) is not
started again: a restart, or a kill -9 at any moment, neither repeats nor loses a start. (An action's effect
outside the store, such as a webhook, may repeat if the process dies between it and the commit.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from healthswarm.model import Asset, Level
from healthswarm.model.incident import OPEN_STATES
from healthswarm.respond.cases import Case

if TYPE_CHECKING:  # the playbook modules load the library's parts: only the agent's responder needs them
    from healthswarm.respond.playbooks.library import Library
    from healthswarm.respond.playbooks.validate import Playbook
#: action kinds that disrupt nothing: they may run without an analyst. watchlist-add among them because the
#: shipped playbooks watch `case.external-observables` (respond/ours.py): the attacker's addresses and names,
#: never the hospital's own, whose traffic the watchlist detector would otherwise alert on in full
SAFE_ACTIONS = ("dns-sinkhole", "watchlist-add", "notify-webhook", "notify-email")
#: "auto": library playbook (file stem) → the condition over the case (playbooks/conditions.py) that selects it
AUTO = {
    "medical-device-compromise": "case.has-medical-devices",
    "ransomware-imaging": "case.technique:T1486 or case.technique:T1490",
    "exfiltration-dicom-fhir": "case.technique:T1048 or case.technique:T1530 or case.technique:T1041 "
                               "or case.technique:T1567",
    "ehr-insider-snooping": "case.technique:T1213 and case.has-accounts",
    "phishing-credential-theft": "case.technique:T1566 or case.technique:T1003",
    "vendor-remote-access": "case.technique:T1133 or case.technique:T1219",
}


@dataclass(frozen=True)
class ResponsePolicy:
    min_severity: int = 3
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    safety_critical: bool = True
    playbooks: tuple[str, ...] = ("auto",)
    auto_actions: tuple[str, ...] = SAFE_ACTIONS

    def covers(self, incident: dict[str, Any], assets: dict[str, Asset]) -> str:
        """Why the policy covers this incident ('' when it does not)."""
        if str(incident.get("state", "new")) not in OPEN_STATES:
            return ""
        severity = int(incident.get("severity", 0))
        if severity >= self.min_severity:
            return f"severity {severity} ≥ {self.min_severity}"
        shown = incident.get("techniques", [])
        if technique := next((t for t in shown for w in self.techniques if t == w or t.startswith(w + ".")), None):
            return f"technique {technique}"
        tactics = {t.lower() for t in self.tactics}
        if tactic := next((t for t in incident.get("tactics", []) if t.lower() in tactics), None):
            return f"tactic {tactic}"
        if self.safety_critical:
            critical = sorted(a for a in incident.get("assets", [])
                              if a in assets and assets[a].criticality.safety >= Level.HIGH)
            if critical:
                return f"safety-critical asset {', '.join(critical)}"
        return ""

    def playbooks_for(self, case: Case, assets: dict[str, Asset], library: Library) -> list[Playbook]:
        from healthswarm.respond.playbooks.conditions import evaluate

        chosen: dict[str, Playbook] = {}
        facts = _Facts(case, assets)
        for name in self.playbooks:
            if name == "auto":
                for stem, condition in AUTO.items():
                    if stem in library.stems and evaluate(condition, facts):
                        book = library.find(stem)
                        chosen.setdefault(book.id, book)
            else:
                book = library.find(name)
                chosen.setdefault(book.id, book)
        return list(chosen.values())


@dataclass
class _Facts:
    case: Case
    assets: dict[str, Asset]
