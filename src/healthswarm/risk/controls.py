"""Candidate controls and their costs, one registered kind per tag prefix.

A technique carries tags (`cve:`, `segment:`, `flow:`, `mfa:`, `vendor:`, `physical:`); a control
removes every technique with one of its tags. `candidate_controls` turns the tags seen on the paths
that matter into controls of the registered kinds; tags no kind claims (e.g. `phishing:`) stay
unmitigable here. Costs are in one abstract unit (think person-days), overridable per kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from healthswarm.model import Level
from healthswarm.model.words import counted
from healthswarm.risk.facts import Facts

CLINICAL_PROTOCOLS = frozenset({"hl7v2", "dicom", "fhir", "wado", "service", "data", "identity"})


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    kind: str
    label: str
    cost: float
    tags: frozenset[str]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "cost": self.cost}


@dataclass(frozen=True, slots=True)
class ControlKind:
    name: str
    prefix: str
    default_cost: float
    # (facts, key after the prefix, cost per unit) -> (label, cost), or None to skip the tag
    describe: Callable[[Facts, str, float], tuple[str, float] | None]


CONTROL_KINDS: dict[str, ControlKind] = {}


def control_kind(name: str, prefix: str, default_cost: float) -> Callable[
        [Callable[[Facts, str, float], tuple[str, float] | None]], Callable[[Facts, str, float], Any]]:
    def register(fn: Callable[[Facts, str, float], tuple[str, float] | None]) -> Callable[[Facts, str, float], Any]:
        CONTROL_KINDS[prefix] = ControlKind(name, prefix, default_cost, fn)
        return fn
    return register


@control_kind("patch", "cve", 1.0)
def _patch(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    if "@" in key:
        return None  # patching one asset is folded into patching the CVE everywhere
    assets = {f.asset_id for f in facts.findings if (f.cve or f.advisory_id) == key}
    # a medical device is patched by its vendor, with validation: five times the effort
    cost = sum(unit * (5 if a in facts.assets and facts.assets[a].is_medical_device else 1) for a in assets)
    return f"patch {key} on {counted(len(assets), 'asset')}", max(cost, unit)


@control_kind("segment", "segment", 8.0)
def _segment(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    return f"segment zone {key} (deny by default; only declared flows in)", unit


@control_kind("block-flow", "flow", 1.0)
def _block(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    ends, _, protocol = key.rpartition(":")
    # Patient safety first: never propose cutting a safety-critical device (a pump, a ventilator) off a
    # flow or dependency it has; that risk is for the device's own controls (patching, segmentation).
    if any(facts.assets[a].criticality.safety >= Level.HIGH for a in ends.split(">") if a in facts.assets):
        return None
    # blocking a clinical interface stops care: count it four times
    return f"block flow {key}", unit * (4 if protocol in CLINICAL_PROTOCOLS else 1)


@control_kind("mfa", "mfa", 3.0)
def _mfa(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    return f"MFA / privileged-access management on {key}", unit


@control_kind("disable-vendor-access", "vendor", 2.0)
def _vendor(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    if ">" in key:
        return None
    return f"disable standing remote access of vendor {key} (on-demand sessions only)", unit


@control_kind("physical", "physical", 4.0)
def _physical(facts: Facts, key: str, unit: float) -> tuple[str, float] | None:
    return f"physical control in zone {key} (locked ports, escorted visitors, device locks)", unit


def candidate_controls(facts: Facts, tags: Iterable[str], costs: dict[str, float] | None = None) -> list[Control]:
    """One control per distinct tag a registered kind claims; cost per kind overridable by kind name."""
    costs = costs or {}
    out = []
    for tag in sorted(Counter(tags)):
        prefix, _, key = tag.partition(":")
        kind = CONTROL_KINDS.get(prefix)
        if kind is None:
            continue
        described = kind.describe(facts, key, costs.get(kind.name, kind.default_cost))
        if described is None:
            continue
        label, cost = described
        out.append(Control(tag, kind.name, label, round(cost, 3), frozenset({tag})))
    return out
