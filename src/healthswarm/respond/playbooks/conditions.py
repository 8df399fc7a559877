"""Conditions of `if-condition` steps: named predicates over the case (a registry), optionally negated with
`not`, joined by `and` / `or` (no parentheses; `and` binds tighter). `case.technique:T1566` tests a technique."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from healthswarm.model import Asset, Level
from healthswarm.respond.cases import Case
from healthswarm.respond.guardrail import CLINICAL_SYSTEM_KINDS


class Facts(Protocol):
    case: Case
    assets: dict[str, Asset]


def _case_assets(f: Facts) -> list[Asset]:
    return [f.assets[a] for a in f.case.assets if a in f.assets]


PREDICATES: dict[str, Callable[[Facts], bool]] = {
    "true": lambda f: True,
    "false": lambda f: False,
    "case.has-assets": lambda f: bool(f.case.assets),
    "case.has-safety-critical-assets": lambda f: any(a.criticality.safety >= Level.HIGH for a in _case_assets(f)),
    "case.has-medical-devices": lambda f: any(a.is_medical_device for a in _case_assets(f)),
    "case.has-clinical-systems": lambda f: any(a.kind in CLINICAL_SYSTEM_KINDS for a in _case_assets(f)),
    "case.has-accounts": lambda f: bool(f.case.accounts),
    "case.has-addresses": lambda f: any(o.type in ("ipv4", "ipv6") for o in f.case.observables),
    "case.personal-data-at-risk": lambda f: f.case.patients > 0 or any(a.records for a in _case_assets(f)),
    "case.critical": lambda f: f.case.severity >= 4,
}
_PARAMETRISED: dict[str, Callable[[Facts, str], bool]] = {
    "case.technique": lambda f, arg: any(t == arg or t.startswith(arg + ".") for t in f.case.techniques),
    "case.asset-kind": lambda f, arg: any(a.kind == arg for a in _case_assets(f)),
}


def _atom(text: str) -> tuple[bool, Callable[[Facts], bool]] | str:
    words = text.split()
    negate = bool(words) and words[0] == "not"
    name = " ".join(words[1:] if negate else words)
    if name in PREDICATES:
        return negate, PREDICATES[name]
    head, _, arg = name.partition(":")
    if head in _PARAMETRISED and arg:
        return negate, lambda f: _PARAMETRISED[head](f, arg)
    return f"unknown predicate {name!r}"


def condition_problems(text: str) -> list[str]:
    problems = []
    for disjunct in text.split(" or "):
        for conjunct in disjunct.split(" and "):
            if isinstance(result := _atom(conjunct.strip()), str):
                problems.append(result)
    return problems


def evaluate(text: str, facts: Facts) -> bool:
    """The condition's truth for these facts; validate with `condition_problems` first."""
    def atom(part: str) -> bool:
        parsed = _atom(part.strip())
        if isinstance(parsed, str):
            raise ValueError(parsed)
        negate, predicate = parsed
        return predicate(facts) != negate

    return any(all(atom(c) for c in d.split(" and ")) for d in text.split(" or "))


def known_predicates() -> list[str]:
    return sorted(PREDICATES) + [f"{name}:ARG" for name in sorted(_PARAMETRISED)]
