"""`healthswarm detect`: every detector over the stored events, alerts grouped into incidents, all stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from healthswarm.cli.context import app_context
from healthswarm.cli.hunt import FAIL_ON_HELP, check_fail_on, exit_on_findings, packs_of, placeholders_of
from healthswarm.cli.output import OutputFormat, console, emit, err_console, error_lines
from healthswarm.detect.learn.asset_baseline import BaselineConfig
from healthswarm.detect.learn.pipeline import DEFAULT_BUDGET
from healthswarm.detect.sigma import CACHE_SUBDIR
from healthswarm.detect.stage import detect_stored
from healthswarm.detect.suite import SuiteSpec, build_suite
from healthswarm.errors import InputError
from healthswarm.store.inventory import load_inventory


def detect(
    ctx: typer.Context,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", "-r", help="Sigma rule files or folders, besides the bundled rule packs (repeatable)")] = None,
    pack: Annotated[list[str] | None, typer.Option(
        "--pack", help="Bundled rule packs to load (repeatable; `none` for none; `healthswarm rules list`) "
        "[default: sigmahq, healthswarm, healthcare]")] = None,
    staff: Annotated[Path | None, typer.Option(
        help="Staff directory (YAML or CSV; see docs/privacy.md): turns on patient-privacy monitoring")] = None,
    baseline: Annotated[bool, typer.Option(help="Per-asset behaviour baselines")] = True,
    warmup_events: Annotated[int, typer.Option(min=1, help="Baseline warm-up: events per asset …")] = 50,
    warmup_hours: Annotated[float, typer.Option(min=0, help="… spread over at least this many hours")] = 24.0,
    clinical: Annotated[bool, typer.Option(help="HL7 / DICOM / FHIR protocol analytics")] = True,
    placeholder: Annotated[list[str] | None, typer.Option(
        "--placeholder", help="Values for Sigma |expand placeholders: NAME=v1,v2 (repeatable)")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A trained model of the workspace to run (`healthswarm model list`; repeatable)")] = None,
    model_budget: Annotated[int, typer.Option(
        min=1, help="Model alerts per source, class and UTC day; the rest are counted")] = DEFAULT_BUDGET,
    disable: Annotated[list[str] | None, typer.Option(
        "--disable", metavar="DETECTOR", help="Leave out a detector factory, built-in (sigma, sensor, baseline, "
        "clinical, privacy, models) or plug-in (repeatable)")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only events from this time (UTC)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    fail_on: Annotated[str | None, typer.Option("--fail-on", metavar="LEVEL", help=FAIL_ON_HELP)] = None,
) -> None:
    """Run Sigma rules (by default the SigmaHQ snapshot, the healthswarm and the healthcare packs), the sensors'
    alerts, learned baselines, clinical analytics, (with --staff) privacy
    monitoring and (with --model) trained models over the stored events, in time order; store the alerts
    and the incidents they form. Running it again over the same events stores nothing twice."""
    actx = app_context(ctx)
    fail_floor = check_fail_on(fail_on)
    try:
        spec = SuiteSpec(rules=rules or [], packs=packs_of(pack), placeholders=placeholders_of(placeholder or []),
                         baseline=BaselineConfig(warmup_events=warmup_events, warmup_hours=warmup_hours)
                         if baseline else None,
                         clinical=clinical, staff=staff, cache_dir=actx.settings.workspace / CACHE_SUBDIR,
                         models=model or [], workspace=actx.settings.workspace, model_budget=model_budget,
                         disabled=frozenset(disable or ()))
        with actx.store.read() as conn:
            assets = load_inventory(conn).assets
        suite = build_suite(spec, assets)
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        raise typer.Exit(2) from None
    missing = [p for p in suite.ruleset.problems if p.message == "no such file or folder"]
    if missing:
        error_lines(str(p) for p in missing)
        raise typer.Exit(2)
    filters = {"start": since if since.tzinfo else since.replace(tzinfo=UTC)} if since else {}
    with Progress(SpinnerColumn(), TextColumn("detecting over the stored events"), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        progress.add_task("detect", total=None)
        result = detect_stored(actx.store, suite.detectors, **filters)
    rows = [{"detector": name, "alerts": count} for name, count in sorted(result.per_detector.items())]
    models = suite.model_stats()
    if fmt is OutputFormat.table:
        emit(rows, fmt, ["detector", "alerts"], title=f"Alerts by detector over {result.events} events")
        for name, stats in models.items():
            console.print(_model_line(name, stats))
        console.print(result.summary_line() + "; `healthswarm incidents list` shows them", highlight=False,
                      markup=False)
    else:
        emit([{"events": result.events, "alerts": len(result.alerts), "new_alerts": result.new_alerts,
               "incidents": [i.id for i in result.incidents], "by_detector": dict(result.per_detector),
               "stored": result.totals, "models": models}], fmt, [])
    exit_on_findings(result.alerts, fail_floor)


def _model_line(name: str, stats: dict[str, Any]) -> str:
    """`cic: 1,200 scored, 312 alerts, 40 over budget; skipped 37 (suricata: not a cicflowmeter flow …)`"""
    skipped = stats["skipped"]
    reasons = "; ".join(f"{n:,} {why}" for why, n in list(skipped.items())[:3]) + ("; …" if len(skipped) > 3 else "")
    line = (f"model {name}: {stats['scored']:,} events scored, {stats['alerts']:,} alerts, "
            f"{stats['suppressed']:,} over budget")
    if stats["unseen_categories"]:
        line += f", {stats['unseen_categories']:,} with a category unseen in training (scored as other)"
    return line + (f"; skipped {sum(skipped.values()):,} ({reasons})" if skipped else "")
