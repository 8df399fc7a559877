"""`healthswarm hunt --rules PATH… EVENTS…`: Sigma rules over files or folders in any ingest format."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, err_console, error_lines
from healthswarm.detect.sigma import CACHE_SUBDIR, SigmaDetector, load_rules
from healthswarm.detect.sigma.cache import load_groups, save_groups
from healthswarm.detect.sigma.packs import DEFAULT_PACKS, PACKS, pack_paths
from healthswarm.errors import InputError, Location, Problem
from healthswarm.ingest.formats import SNIFF_BYTES, Format
from healthswarm.ingest.pipeline import detect
from healthswarm.ingest.sources.file import compression, decompressed, expand, plain_name
from healthswarm.model import LEVELS, Alert, Event


def detection_row(alert: Alert) -> dict[str, Any]:
    """One detection as json/ndjson prints it: the rule, its ATT&CK context, and where the event is."""
    first = alert.events[0] if alert.events else None
    return {
        "rule_id": alert.rule_id,
        "title": alert.title,
        "level": alert.level,
        "detector": alert.detector,
        "timestamp": alert.timestamp.isoformat(),
        "techniques": [t.id for t in alert.techniques],
        "technique_names": [t.name for t in alert.techniques],
        "tactics": [t.id for t in alert.tactics],
        "tactic_names": [t.name or t.shortname for t in alert.tactics],
        "source": first.source if first else "",
        "record": first.record if first else 0,
        "events": [e.as_dict() for e in alert.events],
        "assets": list(alert.assets),
        "rule_source": alert.rule_source,
    }


def placeholders_of(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    problems = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            problems.append(Problem(Location("--placeholder"), f"{item!r} is not NAME=VALUE", "NAME=VALUE"))
            continue
        out[name.strip("%")].extend(v for v in value.split(",") if v)
    if problems:
        raise InputError(problems)
    return dict(out)


def packs_of(values: list[str] | None, default: tuple[str, ...] = DEFAULT_PACKS) -> list[str]:
    """`--pack` values → pack names: none given → `default`; `none` → no pack; unknown names → InputError."""
    if not values:
        return list(default)
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in PACKS]
    if unknown:
        raise InputError([Problem(Location("--pack"), f"unknown rule pack {n!r}", f"one of {', '.join(PACKS)}, none")
                          for n in unknown])
    return list(dict.fromkeys(names))


def _events(files: list[Path], progress: Progress, task: Any, problems: list[str]) -> Iterator[Event]:
    for path in files:
        try:
            with path.open("rb") as raw:
                head = raw.read(SNIFF_BYTES)
                kind = compression(head)
                raw.seek(0)
                stream = decompressed(raw, kind)
                if kind:  # sniff the decompressed bytes, then start again
                    head = stream.read(SNIFF_BYTES)
                    stream.seek(0)
                fmt: Format | None = detect(head, plain_name(path))
                if fmt is None:
                    problems.append(f"{path}: format not recognised (skipped)")
                    continue
                for item in fmt.parse(stream, str(path)):
                    if isinstance(item, Event):
                        yield item
        except (OSError, EOFError) as exc:
            problems.append(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        finally:
            progress.advance(task, path.stat().st_size if path.exists() else 0)


def _summary_tables(alerts: list[Alert]) -> tuple[Table, Table]:
    per_rule: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        per_rule[alert.rule_id].append(alert)
    rules = Table(title="Detections per rule")
    for column in ("level", "rule", "detections", "techniques", "first source"):
        rules.add_column(column)
    order = sorted(per_rule.values(), key=lambda a: (-LEVELS.index(a[0].level), -len(a), a[0].title))
    for group in order:
        a = group[0]
        first = a.events[0] if a.events else None
        rules.add_row(a.level, f"{a.title}\n[dim]{a.rule_id}[/dim]", str(len(group)),
                      ", ".join(t.id for t in a.techniques),
                      f"{first.source}#{first.record}" if first else "")
    tactics: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        for tactic in alert.tactics or ():
            row = tactics.setdefault(tactic.id, {"name": tactic.name or tactic.shortname, "detections": 0,
                                                 "rules": set(), "techniques": Counter()})
            row["detections"] += 1
            row["rules"].add(alert.rule_id)
            row["techniques"].update(t.id for t in alert.techniques)
    overview = Table(title="ATT&CK tactics")
    for column in ("tactic", "name", "detections", "rules", "top techniques"):
        overview.add_column(column)
    for tid, row in sorted(tactics.items(), key=lambda kv: -kv[1]["detections"]):
        top = ", ".join(f"{t} ({n})" for t, n in row["techniques"].most_common(4))
        overview.add_row(tid, row["name"], str(row["detections"]), str(len(row["rules"])), top)
    return rules, overview


def hunt(
    ctx: typer.Context,
    events: Annotated[list[str], typer.Argument(help="Event files, folders or globs (any ingest format, EVTX too)")],
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", "-r", help="Sigma rule files or folders (repeatable); without it the bundled packs load")] = None,
    pack: Annotated[list[str] | None, typer.Option(
        "--pack", help="Bundled rule packs (repeatable: sigmahq, healthswarm, healthcare; `none`) [default: all three "
        "without --rules, none with it]")] = None,
    coverage: Annotated[Path | None, typer.Option(
        "--coverage", help="Write an ATT&CK Navigator layer (JSON) of the techniques the loaded rules cover and what "
        "fired, and a heat map beside it (same name, .png)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table: summaries; json/ndjson: detections")]
    = OutputFormat.table,
    min_level: Annotated[str, typer.Option("--min-level", help="Report only detections at this level or above")]
    = "informational",
    placeholder: Annotated[list[str] | None, typer.Option(
        "--placeholder", help="Values for |expand placeholders: NAME=v1,v2 (repeatable)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compile the rules again, ignoring the cache")]
    = False,
    show_problems: Annotated[bool, typer.Option("--problems", help="List every rule that cannot be evaluated")]
    = False,
) -> None:
    """Hunt with Sigma rules over event files; print a per-rule summary and an ATT&CK tactic overview, or every
    detection as JSON / NDJSON (rule id, title, level, ATT&CK ids, event source file and record)."""
    if min_level not in LEVELS:
        error_lines([f"--min-level: {min_level!r} is not a level (expected one of {', '.join(LEVELS)})"])
        raise typer.Exit(2)
    settings = app_context(ctx).settings
    try:
        files = expand(events)
        values = placeholders_of(placeholder or [])
        paths = [*(rules or []), *pack_paths(packs_of(pack, () if rules else DEFAULT_PACKS), settings.workspace)]
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        raise typer.Exit(2) from None
    if not paths:
        error_lines(["--pack none without --rules: no rule to hunt with"])
        raise typer.Exit(2)
    started = time.perf_counter()
    cache_dir = None if no_cache else settings.workspace / CACHE_SUBDIR
    ruleset = load_rules(paths, cache_dir=cache_dir, placeholders=values)
    load_seconds = time.perf_counter() - started
    missing = [p for p in ruleset.problems if p.message == "no such file or folder"]
    if missing or not (ruleset.rules or ruleset.correlations):
        error_lines(str(p) for p in missing or [Problem(Location(", ".join(map(str, paths))), "no Sigma rule compiled",
                                                        "Sigma rule files")])
        raise typer.Exit(2)
    if show_problems:
        error_lines(str(p) for p in ruleset.problems)
    elif ruleset.problems:
        err_console.print(f"note: {len(ruleset.problems)} rule(s) cannot be evaluated (--problems lists them)")
    detector = SigmaDetector(ruleset)
    detector.engine.adopt_groups(load_groups(cache_dir, ruleset))
    floor = LEVELS.index(min_level)
    alerts: list[Alert] = []
    problems: list[str] = []
    count = 0
    total = sum(p.stat().st_size for p in files)
    hunt_started = time.perf_counter()
    with Progress(TextColumn("hunting"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("hunt", total=total)
        for event in _events(files, progress, task, problems):
            count += 1
            alerts.extend(a for a in detector.detect(event) if a.severity >= floor)
        alerts.extend(a for a in detector.flush() if a.severity >= floor)
    hunt_seconds = time.perf_counter() - hunt_started
    if detector.engine.groups_built:
        save_groups(cache_dir, ruleset, detector.engine.groups())
    for line in problems:
        err_console.print(f"warning: {line}", markup=False)
    if coverage is not None:
        from healthswarm.detect.coverage import write_coverage

        written = write_coverage(coverage, ruleset, alerts, name="healthswarm hunt")
        err_console.print(f"coverage: {', '.join(str(p) for p in written)}", markup=False)
    if fmt is OutputFormat.table:
        by_rule, overview = _summary_tables(alerts)
        console.print(by_rule)
        console.print(overview)
        rate = count / hunt_seconds if hunt_seconds > 0 else 0.0
        console.print(f"{len(alerts)} detections from {len({a.rule_id for a in alerts})} rules in {count} events "
                      f"({len(files)} files); {len(ruleset.rules) + len(ruleset.correlations)} rules loaded in "
                      f"{load_seconds:.2f} s{' (cached)' if ruleset.cached else ''}, "
                      f"{len(ruleset.problems)} not evaluable; hunt {hunt_seconds:.2f} s ({rate:,.0f} events/s)")
    else:
        emit([detection_row(a) for a in alerts], fmt, [])
    if not count and problems and len(problems) >= len(files):
        raise typer.Exit(2)
