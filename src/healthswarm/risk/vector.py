"""CVSS vectors (2.0, 3.x, 4.0) read into the few metrics the attack graph needs.

Attack vector (AV) and privileges required (PR) become *pre-conditions* of an exploit (where the
attacker must stand), so they are not counted again in its probability; attack complexity (AC, and
AT in 4.0) and user interaction (UI) decide how likely one attempt succeeds; the impact metrics
(C/I/A and scope) decide the *post-condition* (what the attacker holds afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass

# CVSS 3.x exploitability weights of the metrics that are not pre-conditions.
_AC = {"L": 0.77, "H": 0.44}
_UI = {"N": 0.85, "R": 0.62}
_TOP = _AC["L"] * _UI["N"]
# probability of one attempt with AC:L/UI:N; nothing is certain
P_EASIEST = 0.9


@dataclass(frozen=True, slots=True)
class Exploitability:
    """The metrics of one vector, normalised across CVSS versions to the 3.x letters."""

    av: str = "N"  # N network, A adjacent, L local, P physical
    ac: str = "L"  # L low, H high
    pr: str = "N"  # N none, L low, H high
    ui: str = "N"  # N none, R required
    scope_changed: bool = False
    c: str = "N"  # N none, L low, H high
    i: str = "N"
    a: str = "N"

    @property
    def probability(self) -> float:
        """Chance one attempt succeeds once the pre-conditions hold (AC and UI only)."""
        return P_EASIEST * _AC[self.ac] * _UI[self.ui] / _TOP

    @property
    def difficulty(self) -> int:
        """Capability needed, 1 (basic) to 3 (advanced): high complexity and user interaction add one each."""
        return 1 + (self.ac == "H") + (self.ui == "R")


class VectorError(ValueError):
    pass


def _pairs(vector: str) -> dict[str, str]:
    text = vector.strip().strip("()")
    out: dict[str, str] = {}
    for part in text.split("/"):
        if ":" not in part:
            raise VectorError(f"not a CVSS metric: {part!r}")
        key, _, value = part.partition(":")
        out[key.strip()] = value.strip()
    return out


_V2_IMPACT = {"N": "N", "P": "L", "C": "H"}
_V2_AUTH = {"N": "N", "S": "L", "M": "H"}
_V4_UI = {"N": "N", "P": "R", "A": "R"}


def parse_vector(vector: str, version: str = "") -> Exploitability:
    """Read a CVSS 2.0, 3.0, 3.1 or 4.0 vector; raises VectorError when it cannot be read."""
    if not vector or not vector.strip():
        raise VectorError("empty CVSS vector")
    m = _pairs(vector)
    declared = m.pop("CVSS", version)
    try:
        if declared.startswith("4"):
            ac = "H" if m["AC"] == "H" or m.get("AT", "N") == "P" else "L"
            subsequent = any(m.get(k, "N") == "H" for k in ("SC", "SI", "SA"))
            return Exploitability(m["AV"], ac, m["PR"], _V4_UI[m["UI"]], subsequent, m["VC"], m["VI"], m["VA"])
        if "Au" in m:  # 2.0
            ac = "H" if m["AC"] in ("H", "M") else "L"
            return Exploitability(m["AV"], ac, _V2_AUTH[m["Au"]], "N", False, _V2_IMPACT[m["C"]],
                                  _V2_IMPACT[m["I"]], _V2_IMPACT[m["A"]])
        return Exploitability(m["AV"], m["AC"], m["PR"], m["UI"], m.get("S", "U") == "C", m["C"], m["I"], m["A"])
    except KeyError as exc:
        raise VectorError(f"CVSS vector {vector!r} lacks or misspells metric {exc.args[0]}") from None


def check(e: Exploitability) -> None:
    allowed = {"av": "NALP", "ac": "LH", "pr": "NLH", "ui": "NR", "c": "NLH", "i": "NLH", "a": "NLH"}
    for name, letters in allowed.items():
        if getattr(e, name) not in letters:
            raise VectorError(f"CVSS metric {name.upper()} has unknown value {getattr(e, name)!r}")
