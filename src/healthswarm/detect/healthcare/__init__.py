"""Clinical protocol analytics: streaming detectors that learn per HL7 interface, DICOM AE and FHIR user
what is normal and alert on deviations (see docs/healthcare.md)."""

from __future__ import annotations

from healthswarm.detect.attack import AttackCatalog
from healthswarm.detect.healthcare.dicom import DicomAnalytics, DicomConfig
from healthswarm.detect.healthcare.fhir import FhirAnalytics, FhirConfig
from healthswarm.detect.healthcare.hl7 import Hl7Analytics, Hl7Config

__all__ = [
    "DicomAnalytics",
    "DicomConfig",
    "FhirAnalytics",
    "FhirConfig",
    "Hl7Analytics",
    "Hl7Config",
    "protocol_detectors",
]


def protocol_detectors(hl7: Hl7Config | None = None, dicom: DicomConfig | None = None, fhir: FhirConfig | None = None,
                       attack: AttackCatalog | None = None) -> list[Hl7Analytics | DicomAnalytics | FhirAnalytics]:
    """One detector per clinical protocol, each with its own configuration, learned state and alert budget."""
    return [Hl7Analytics(hl7, attack), DicomAnalytics(dicom, attack), FhirAnalytics(fhir, attack)]
