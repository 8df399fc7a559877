"""Patient-privacy monitoring: FHIR AuditEvent reads judged against care relationships from HL7 ADT and FHIR
Encounter/CareTeam, the staff directory, and what each user and role usually does (see docs/privacy.md)."""

from healthswarm.detect.privacy.directory import Directory, StaffMember, load_directory, parse_directory
from healthswarm.detect.privacy.monitor import PrivacyConfig, PrivacyMonitor
from healthswarm.detect.privacy.relationships import CareRelationships, Explanation

__all__ = [
    "CareRelationships",
    "Directory",
    "Explanation",
    "PrivacyConfig",
    "PrivacyMonitor",
    "StaffMember",
    "load_directory",
    "parse_directory",
]
