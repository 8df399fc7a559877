"""CVSS scores computed from their vectors with the `cvss` package (v2, v3.0, v3.1, v4.0).

An advisory's own baseScore is kept as `stated_score` but not trusted: CISA's ICSMA documents were
"extracted from unstructured data" (their own disclaimer), and a vector is the authority. When the
two disagree, `disagreement()` says so and the finding's explanation carries it.
"""

from __future__ import annotations

from decimal import Decimal

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from healthswarm.model import Score


class ScoreError(ValueError):
    """A vector the `cvss` package cannot read."""


def _severity_v2(score: float) -> str:
    # CVSS v2 defines no severity; NVD's bands are the common reading
    if score == 0:
        return "none"
    return "low" if score < 4.0 else "medium" if score < 7.0 else "high"


def score_vector(vector: str, version_hint: str = "", stated_score: float | None = None) -> Score:
    """Compute base score and severity from `vector`; raise ScoreError when it is not a valid vector."""
    vector = (vector or "").strip()
    try:
        if vector.startswith("CVSS:4."):
            c4 = CVSS4(vector)
            return Score("4.0", c4.clean_vector(), _float(c4.base_score), c4.severity.lower(), stated_score)
        if vector.startswith("CVSS:3."):
            c3 = CVSS3(vector)
            version = "3.1" if vector.startswith("CVSS:3.1") else "3.0"
            return Score(version, c3.clean_vector(), _float(c3.base_score), c3.severities()[0].lower(), stated_score)
        if vector and (version_hint.startswith("2") or vector.startswith("AV:")):
            c2 = CVSS2(vector.removeprefix("(").removesuffix(")"))
            base = _float(c2.base_score)
            return Score("2.0", c2.clean_vector(), base, _severity_v2(base), stated_score)
    except CVSSError as exc:
        raise ScoreError(f"CVSS vector {vector!r}: {exc}") from exc
    except (ValueError, KeyError, IndexError) as exc:  # the package raises these on some truncated vectors
        raise ScoreError(f"CVSS vector {vector!r}: {exc}") from exc
    raise ScoreError(f"CVSS vector {vector!r}: not a CVSS v2, v3.x or v4.0 vector")


def _float(value: Decimal | float) -> float:
    return float(value)


def disagreement(score: Score) -> str:
    """"" when the document's own score matches the vector's, else a sentence saying how they differ."""
    if score.stated_score is None or abs(score.stated_score - score.base_score) < 0.05:
        return ""
    return f"the document states {score.stated_score}, the vector computes {score.base_score}"
