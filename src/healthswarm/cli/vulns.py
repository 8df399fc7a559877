"""`healthswarm vulns import|match|list`."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, err_console, error_lines
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.inventory.advisories.loader import advisory_files
from healthswarm.inventory.advisories.match import SEVERITY_ORDER
from healthswarm.model import Finding, FindingStatus
from healthswarm.model.words import counted
from healthswarm.store.inventory import load_inventory as stored_inventory
from healthswarm.store.vulns import load_advisories as stored_advisories
from healthswarm.store.vulns import load_findings, replace_findings, save_advisories

app = typer.Typer(help="Medical-device advisories (CSAF 2.0, CVE JSON 5) and the findings they raise.",
                  no_args_is_help=True)

FINDING_COLUMNS = ["asset_id", "advisory_id", "cve", "status", "severity", "cvss_score", "product", "asset_version",
                   "version_rule", "matched_on"]


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    none = "none"


class Status(StrEnum):
    affected = "affected"
    possibly_affected = "possibly-affected"


def _fail(lines: list[str]) -> None:
    error_lines(lines)
    raise typer.Exit(2)


def finding_row(f: Finding) -> dict[str, Any]:
    """One finding as output data; `explanation` says why it matched."""
    return {
        "asset_id": f.asset_id, "advisory_id": f.advisory_id, "cve": f.cve, "status": str(f.status),
        "severity": f.severity, "cvss_score": f.cvss_score, "cvss_version": f.cvss_version,
        "cvss_vector": f.cvss_vector, "cwe": list(f.cwe),
        "product": f.explanation.get("advisory_product", ""),
        "asset_version": f.explanation.get("asset_version", ""),
        "version_rule": f.explanation.get("version_rule", ""),
        # how the asset met the advisory: which name, form or alias, and which version rule decided
        "matched_on": f.explanation.get("matched_on", ""), "why": f.explanation.get("why", ""),
        "remediation": f.remediation, "explanation": dict(f.explanation),
    }


def _summary(findings: list[Finding]) -> Table:
    per: Counter[tuple[str, str]] = Counter((f.severity or "unscored", str(f.status)) for f in findings)
    assets: dict[str, set[str]] = {}
    for f in findings:
        assets.setdefault(f.severity or "unscored", set()).add(f.asset_id)
    table = Table(title="findings by severity")
    for column in ("severity", "affected", "possibly affected", "assets"):
        table.add_column(column, justify="left" if column == "severity" else "right")
    for severity in sorted(assets, key=lambda s: -SEVERITY_ORDER.get(s, -1)):
        table.add_row(severity, str(per[(severity, FindingStatus.AFFECTED.value)]),
                      str(per[(severity, FindingStatus.POSSIBLY_AFFECTED.value)]), str(len(assets[severity])))
    table.add_row("total", str(sum(v for (_, s), v in per.items() if s == FindingStatus.AFFECTED.value)),
                  str(sum(v for (_, s), v in per.items() if s == FindingStatus.POSSIBLY_AFFECTED.value)),
                  str(len({f.asset_id for f in findings})), style="bold")
    return table


def _show(findings: list[Finding], fmt: OutputFormat, limit: int | None, title: str, empty: str = "") -> None:
    rows = [finding_row(f) for f in findings]
    if fmt is OutputFormat.table and not rows and empty:
        console.print(empty, markup=False, highlight=False)
    elif fmt is OutputFormat.table:
        console.print(_summary(findings))
        shown = rows if limit is None else rows[:limit]
        emit(shown, fmt, FINDING_COLUMNS, title=f"{title} ({len(shown)} of {len(rows)} shown)"
             if len(shown) < len(rows) else title)
    else:
        emit(rows, fmt, FINDING_COLUMNS)


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="CSAF 2.0 / CVE JSON 5 files, or folders of *.json")],
) -> None:
    """Read advisories and store them (one transaction). Bad files are reported one per line and give
    exit 2, but the good advisories are still imported."""
    files, _ = advisory_files(paths)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("reading advisories", total=len(files))
        advisories, problems = load_advisories(paths, on_file=lambda _path: progress.advance(task))
    if advisories:
        with app_context(ctx).store.transaction() as conn:
            save_advisories(conn, advisories)
    vulns = sum(len(a.vulnerabilities) for a in advisories)
    products = sum(len(a.products) for a in advisories)
    if files or not problems:  # a path that does not exist is its error alone, not "imported 0 advisories"
        entries = counted(products, "product entry", "product entries")
        console.print(f"imported {counted(len(advisories), 'advisory', 'advisories')} "
                      f"({counted(vulns, 'vulnerability', 'vulnerabilities')}, {entries}) "
                      f"from {counted(len(files), 'file')}", soft_wrap=True)
    if problems:
        error_lines(str(p) for p in problems)
        if files:
            bad = len({p.location.file.split("[", 1)[0] for p in problems})
            good = (f"the {counted(len(advisories), 'good advisory', 'good advisories')} "
                    f"{'was' if len(advisories) == 1 else 'were'} imported." if advisories else "nothing was imported.")
            err_console.print(f"{counted(len(problems), 'problem')} in {counted(bad, 'file')}: what they describe "
                              f"was not imported; {good}", markup=False)
        raise typer.Exit(2)


@app.command()
def match(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    limit: Annotated[int | None, typer.Option(help="Table form: show at most this many findings")] = None,
) -> None:
    """Match the stored advisories to the stored inventory; store and print the findings."""
    store = app_context(ctx).store
    with store.read() as conn:
        inventory = stored_inventory(conn)
        advisories = stored_advisories(conn)
    if not inventory.assets:
        _fail([f"no inventory in the store (expected `{command_line(ctx, 'inventory load FILE')}` first)"])
    if not advisories:
        _fail([f"no advisories in the store (expected `{command_line(ctx, 'vulns import PATH')}` first)"])
    findings = match_findings(advisories, inventory.assets)
    with store.transaction() as conn:
        replace_findings(conn, findings)
    _show(findings, fmt, limit, f"{len(findings)} findings from {len(advisories)} advisories on "
                                f"{len(inventory.assets)} assets",
          empty=f"no findings: none of the {len(advisories)} stored advisories names a product of the "
                f"{len(inventory.assets)} assets (vendor, product and version as the inventory declares them)")


@app.command("list")
def list_(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option(help="Only this asset's findings")] = None,
    severity: Annotated[list[Severity] | None, typer.Option(help="Only these severities (repeatable)")] = None,
    status: Annotated[Status | None, typer.Option(help="Only affected or possibly-affected")] = None,
    advisory: Annotated[str | None, typer.Option(help="Only this advisory's findings")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    limit: Annotated[int | None, typer.Option(help="Table form: show at most this many findings")] = None,
) -> None:
    """List the stored findings (run `vulns match` first), most severe first."""
    with app_context(ctx).store.read() as conn:
        findings = load_findings(conn, asset=asset, severity=[s.value for s in severity] if severity else None,
                                 status=status.value if status else None, advisory=advisory)
    findings.sort(key=lambda f: (-SEVERITY_ORDER.get(f.severity, -1), -(f.cvss_score or 0), f.asset_id,
                                 f.advisory_id, f.cve))
    if asset or severity or status or advisory:
        empty = f"no stored finding matches the filters; `{command_line(ctx, 'vulns list')}` lists them all"
    else:
        empty = (f"no findings stored: `{command_line(ctx, 'vulns import PATH')}` (advisories) then "
                 f"`{command_line(ctx, 'vulns match')}` (with an inventory: "
                 f"`{command_line(ctx, 'inventory load FILE')}`), or `{command_line(ctx, 'demo')}`")
    _show(findings, fmt, limit, f"{len(findings)} stored findings", empty=empty)
