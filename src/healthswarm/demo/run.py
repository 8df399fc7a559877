"""`healthswarm demo` as a list of steps: each stage adds its own step, the runner shows them in order.

A step takes the shared DemoRun, does its stage's work through the library, and returns what to
show (Rich renderables) and a summary (plain data for `--format json`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from healthswarm.demo import ADVISORIES, ECOSYSTEM
from healthswarm.inventory import load_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Finding, FindingStatus, Inventory, Level
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.vulns import replace_findings, save_advisories


@dataclass
class DemoRun:
    store: Store
    workspace: Path
    advisories_path: Path = ADVISORIES
    inventory: Inventory = field(default_factory=Inventory)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class StepResult:
    summary: dict[str, Any]
    show: list[RenderableType] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoRun], StepResult]


def load_ecosystem(demo: DemoRun) -> StepResult:
    demo.inventory = load_inventory([ECOSYSTEM])
    with demo.store.transaction() as conn:
        replace_inventory(conn, demo.inventory)
    inv = demo.inventory
    table = Table(title="The reference ecosystem")
    for column in ("organisation", "kind", "zones", "assets", "medical devices", "patient records"):
        table.add_column(column, justify="right" if column not in ("organisation", "kind") else "left")
    for org in inv.organisations:
        assets = [a for a in inv.assets if a.organisation == org.id]
        table.add_row(org.name, org.kind, str(sum(z.organisation == org.id for z in inv.zones)), str(len(assets)),
                      str(sum(a.is_medical_device for a in assets)),
                      f"{max((a.records or 0 for a in assets), default=0):,}")
    summary = {"organisations": len(inv.organisations), "assets": len(inv.assets),
               "medical_devices": sum(a.is_medical_device for a in inv.assets),
               "flows": len(inv.flows), "dependencies": len(inv.dependencies)}
    return StepResult(summary, [table])


_SEVERITIES = ("critical", "high", "medium", "low")


def match_advisories(demo: DemoRun) -> StepResult:
    advisories, problems = load_advisories([demo.advisories_path])
    demo.findings = match_findings(advisories, demo.inventory.assets)
    with demo.store.transaction() as conn:
        save_advisories(conn, advisories)
        replace_findings(conn, demo.findings)
    assets = {a.id: a for a in demo.inventory.assets}
    names = {o.id: o.name for o in demo.inventory.organisations}
    table = Table(title="Exposure from medical-device advisories")
    for column in ("organisation", "affected assets", "possibly affected", *(f"{s} CVEs" for s in _SEVERITIES),
                   "safety-critical exposed"):
        table.add_column(column, justify="left" if column == "organisation" else "right")
    per_org: dict[str, list[Finding]] = {}
    for f in demo.findings:
        per_org.setdefault(assets[f.asset_id].organisation, []).append(f)
    for org, found in sorted(per_org.items()):
        affected = {f.asset_id for f in found if f.status is FindingStatus.AFFECTED}
        possibly = {f.asset_id for f in found if f.status is FindingStatus.POSSIBLY_AFFECTED} - affected
        severities = Counter(f.severity for f in found)
        critical_devices = {a for a in affected | possibly if assets[a].criticality.safety >= Level.HIGH}
        table.add_row(names[org], str(len(affected)), str(len(possibly)),
                      *(str(severities.get(s, 0)) for s in _SEVERITIES), str(len(critical_devices)))
    top = Table(title="Most exposed safety-critical device models")
    for column in ("kind", "vendor / product", "version", "devices", "worst CVE", "CVSS", "advisory", "status"):
        top.add_column(column, justify="right" if column in ("devices", "CVSS") else "left")
    models: dict[tuple[str, str, str], list[Finding]] = {}
    for f in demo.findings:
        a = assets[f.asset_id]
        if a.criticality.safety >= Level.HIGH:
            models.setdefault((a.kind, f"{a.vendor} / {a.product}", a.version or "?"), []).append(f)
    ranked = sorted(models.items(), key=lambda item: -max(f.cvss_score or 0 for f in item[1]))
    for (kind, product, version), found in ranked[:8]:
        worst = max(found, key=lambda f: f.cvss_score or 0)
        top.add_row(kind, product, version, str(len({f.asset_id for f in found})), worst.cve,
                    f"{worst.cvss_score:.1f}" if worst.cvss_score is not None else "", worst.advisory_id,
                    str(worst.status))
    summary = {
        "advisories": len(advisories), "advisory_problems": [str(p) for p in problems],
        "findings": len(demo.findings),
        "affected_assets": len({f.asset_id for f in demo.findings if f.status is FindingStatus.AFFECTED}),
        "possibly_affected_assets": len({f.asset_id for f in demo.findings
                                         if f.status is FindingStatus.POSSIBLY_AFFECTED}),
        "by_severity": dict(Counter(f.severity for f in demo.findings)),
    }
    return StepResult(summary, [table, top])


STEPS: Sequence[Step] = (
    Step("Load the reference ecosystem", load_ecosystem),
    Step("Match medical-device advisories", match_advisories),
)
