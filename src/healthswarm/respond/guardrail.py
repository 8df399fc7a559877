"""Patient-safety guardrail: disruptive actions on safety-critical devices or on clinical systems during
care need explicit human approval, and come with the clinical fallback to put in place first."""

from __future__ import annotations

from dataclasses import dataclass

from healthswarm.model import Asset, Level

#: Kinds of clinical information systems: stopping them during care forces downtime procedures.
CLINICAL_SYSTEM_KINDS = frozenset({"ehr", "his", "lis", "ris", "pacs", "emr", "pharmacy-system", "interface-engine",
                                   "fhir-server", "dicom-router", "iomt-gateway", "nurse-call",
                                   "medical-device-server"})

#: What clinicians do instead, per asset kind (the fallback the playbook proposes).
FALLBACKS: dict[str, str] = {
    "infusion-pump": "switch to a standalone pump from biomedical engineering's spare pool, or run the pump in "
                     "manual (non-networked) mode with a nurse double-check of every infusion",
    "patient-monitor": "move the patient to an alternate monitor or a transport monitor; nurse-led manual vital "
                       "signs at the ward's escalation frequency until monitoring is back",
    "ventilator": "keep ventilating locally without network; respiratory therapist at the bedside; alternate "
                  "ventilator on standby",
    "anaesthesia-machine": "do not isolate during a procedure; schedule after the case ends, standby machine ready",
    "modality": "divert imaging to an alternate scanner or site; keep local storage on the modality until PACS "
                "connectivity is restored",
    "implant-programmer": "use an alternate programmer or the manufacturer's field support",
    "lab-analyser": "route samples to the backup analyser or the partner laboratory",
    "pacs": "images stay on the modalities; radiologists read at the modality console or via the partner PACS",
    "ehr": "start downtime procedures: paper charts, printed medication lists, downtime viewer",
    "his": "start downtime procedures: manual admission/discharge registers",
    "lis": "paper requests and phone reporting of critical results",
    "pharmacy-system": "paper prescriptions, pharmacist verification by phone",
    "interface-engine": "queue messages; manual transcription of critical results and admissions",
}
_GENERIC_DEVICE = "put the device in manual mode or replace it with an alternate device before isolating it"
_GENERIC_SYSTEM = "start the system's downtime procedure (paper workflow) before stopping it"


@dataclass(frozen=True, slots=True)
class Approval:
    """Why a human must approve, and what to put in place first."""

    asset: str
    reason: str
    fallback: str

    def as_dict(self) -> dict[str, str]:
        return {"asset": self.asset, "reason": self.reason, "fallback": self.fallback}


def assess(asset: Asset, disruptive: bool, care_in_progress: bool = True) -> Approval | None:
    """None when the action may go ahead; else the approval it needs."""
    if not disruptive:
        return None
    if asset.criticality.safety >= Level.HIGH:
        return Approval(asset.id, f"{asset.kind} {asset.name!r} has {asset.criticality.safety} safety criticality: "
                                  "isolating or stopping it can harm a patient",
                        FALLBACKS.get(asset.kind, _GENERIC_DEVICE))
    if asset.kind in CLINICAL_SYSTEM_KINDS and care_in_progress:
        return Approval(asset.id, f"{asset.kind} {asset.name!r} is a clinical system in use for patient care",
                        FALLBACKS.get(asset.kind, _GENERIC_SYSTEM))
    if asset.is_medical_device:
        return Approval(asset.id, f"{asset.kind} {asset.name!r} is a medical device",
                        FALLBACKS.get(asset.kind, _GENERIC_DEVICE))
    return None
