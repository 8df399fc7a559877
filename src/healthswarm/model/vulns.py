"""Typed records of security advisories (CSAF 2.0, CVE JSON 5) and the findings they raise on assets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ProductStatus(StrEnum):
    """CSAF product status groups that matter for matching."""

    KNOWN_AFFECTED = "known_affected"
    FIRST_AFFECTED = "first_affected"
    LAST_AFFECTED = "last_affected"
    UNDER_INVESTIGATION = "under_investigation"
    FIXED = "fixed"
    FIRST_FIXED = "first_fixed"
    KNOWN_NOT_AFFECTED = "known_not_affected"
    RECOMMENDED = "recommended"


@dataclass(frozen=True, slots=True)
class ProductEntry:
    """One product the advisory speaks of: vendor, product name and the versions it covers.

    `version_rule` is kept as written in the advisory (a `vers:` expression, "<=2.3", "3.1",
    "All versions", ...); the matcher interprets it.
    """

    product_id: str
    vendor: str
    product: str
    version_rule: str = ""
    cpe: str = ""
    purl: str = ""
    full_name: str = ""
    # other identifiers of the product, "kind:value": the CSAF product_identification_helper's
    # model numbers and SKUs ("model_number:VLFT10GEN", "sku:8015-100")
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Score:
    version: str  # "2.0", "3.0", "3.1" or "4.0"
    vector: str
    base_score: float  # computed from the vector
    severity: str  # none|low|medium|high|critical
    stated_score: float | None = None  # what the document itself said, kept to show disagreement


@dataclass(frozen=True, slots=True)
class Remediation:
    category: str  # CSAF: mitigation, vendor_fix, workaround, none_available, no_fix_planned
    details: str
    product_ids: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability of an advisory, with the products in each status group."""

    cve: str  # may be "" when the advisory gives none
    title: str = ""
    cwe: tuple[str, ...] = ()
    scores: tuple[Score, ...] = ()
    # status group -> product ids
    product_status: dict[str, tuple[str, ...]] = field(default_factory=dict)
    remediations: tuple[Remediation, ...] = ()

    @property
    def best_score(self) -> Score | None:
        """The newest CVSS version given (4.0 over 3.x over 2.0)."""
        return max(self.scores, key=lambda s: s.version, default=None)


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str  # tracking id, e.g. ICSMA-20-170-01
    title: str
    source: str  # file path or URL it came from
    format: str  # "csaf" or "cve5"
    published: str = ""  # ISO 8601
    publisher: str = ""
    products: tuple[ProductEntry, ...] = ()
    vulnerabilities: tuple[Vulnerability, ...] = ()


class FindingStatus(StrEnum):
    AFFECTED = "affected"
    # the asset's version is unknown or cannot be compared with the advisory's rule
    POSSIBLY_AFFECTED = "possibly-affected"


@dataclass(frozen=True, slots=True)
class Finding:
    """An advisory's vulnerability that applies to an asset, with why it matched."""

    asset_id: str
    advisory_id: str
    cve: str
    status: FindingStatus
    cvss_score: float | None = None
    cvss_vector: str = ""
    cvss_version: str = ""
    severity: str = ""
    cwe: tuple[str, ...] = ()
    remediation: str = ""
    # why: the product entry and the version rule that matched, and how
    explanation: dict[str, str] = field(default_factory=dict)
