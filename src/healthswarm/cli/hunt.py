"""`healthswarm hunt --rules PATH… EVENTS…`: Sigma rules over files or folders in any ingest format."""

from __future__ import annotations

import glob
import re
import time
from collections import Counter, defaultdict
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthswarm.cli.context import app_context
from healthswarm.cli.output import OutputFormat, console, emit, err_console, error_lines
from healthswarm.detect.service import hunt_files
from healthswarm.detect.sigma import CACHE_SUBDIR, load_rules
from healthswarm.detect.sigma.packs import DEFAULT_PACKS, PACKS, pack_paths
from healthswarm.errors import InputError, Location, Problem
from healthswarm.ingest.service import UNRECOGNISED
from healthswarm.ingest.sources.file import expand
from healthswarm.model import LEVELS, Alert, EventRef
from healthswarm.model.words import counted

_ID, _NAME = attrgetter("id"), attrgetter("name")


def detection_row(alert: Alert) -> dict[str, Any]:
    """One detection as json/ndjson prints it: the rule, its ATT&CK context, and where the event is."""
    first = alert.events[0] if alert.events else None
    return {
        "rule_id": alert.rule_id,
        "title": alert.title,
        "level": alert.level,
        "detector": alert.detector,
        "timestamp": alert.timestamp.isoformat(),
        # map, not comprehensions (each a call): a hunt prints thousands of rows
        "techniques": list(map(_ID, alert.techniques)),
        "technique_names": list(map(_NAME, alert.techniques)),
        "tactics": list(map(_ID, alert.tactics)),
        "tactic_names": [t.name or t.shortname for t in alert.tactics],
        "source": first.source if first else "",
        "record": first.record if first else 0,
        "events": list(map(EventRef.as_dict, alert.events)),
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


SIGMA_SUFFIXES = (".yml", ".yaml")
_SIGMA_KEY = re.compile(rb"^(detection|logsource|correlation)[ \t]*:", re.MULTILINE)
# how many files of a folder are looked at to tell a rule folder from an event folder
SIGMA_SAMPLE = 200


def is_sigma_rule(path: Path) -> bool:
    """A YAML file with Sigma's `logsource:` and `detection:` (or a `correlation:`) at the top level."""
    if path.suffix.lower() not in SIGMA_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            keys = {m.group(1) for m in _SIGMA_KEY.finditer(handle.read(256 * 1024))}
    except OSError:
        return False
    return {b"detection", b"logsource"} <= keys or b"correlation" in keys


def holds_sigma_rules(path: Path) -> bool:
    """A Sigma rule file, or a folder whose files are mostly Sigma rules (the first SIGMA_SAMPLE looked at)."""
    if path.is_file():
        return is_sigma_rule(path)
    if not path.is_dir():
        return False
    files = list(islice((p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")), SIGMA_SAMPLE))
    rules = sum(1 for p in files if is_sigma_rule(p))
    return rules > 0 and rules * 2 >= len(files)


def split_rule_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Inputs that hold Sigma rules rather than events — B and C of `hunt --rules A B C EVENTS` — and the rest."""
    rules: list[Path] = []
    events: list[str] = []
    for item in inputs:
        if not glob.has_magic(item) and holds_sigma_rules(Path(item)):
            rules.append(Path(item))
        else:
            events.append(item)
    return rules, events


WARN_MAX = 10  # unrecognised files listed one by one; the rest are counted


def _summary_tables(alerts: list[Alert]) -> tuple[Table, Table]:
    per_rule: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        per_rule[alert.rule_id].append(alert)
    rules = Table(title="Detections per rule")
    for column in ("level", "rule", "detections", "techniques", "first source"):
        rules.add_column(column, overflow="fold")  # a rule id or a path is folded on a narrow terminal, never cut
    order = sorted(per_rule.values(), key=lambda a: (-LEVELS.index(a[0].level), -len(a), a[0].title))
    for group in order:
        a = group[0]
        first = a.events[0] if a.events else None
        rules.add_row(a.level, f"{escape(a.title)}\n[dim]{escape(a.rule_id)}[/dim]", str(len(group)),
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
        overview.add_column(column, overflow="fold")
    for tid, row in sorted(tactics.items(), key=lambda kv: -kv[1]["detections"]):
        top = ", ".join(f"{t} ({n})" for t, n in row["techniques"].most_common(4))
        overview.add_row(tid, row["name"], str(row["detections"]), str(len(row["rules"])), top)
    return rules, overview


FAIL_ON_HELP = ("Exit 1 when an alert at this level or above was found (informational, low, medium, high, "
                "critical), for scripts and CI; by default finding something still exits 0")


def check_fail_on(fail_on: str | None) -> int | None:
    """`--fail-on LEVEL` → the level's index (None: not asked); an unknown level is a usage error (exit 2)."""
    if fail_on is None:
        return None
    if fail_on not in LEVELS:
        error_lines([f"--fail-on: {fail_on!r} is not a level (expected one of {', '.join(LEVELS)})"])
        raise typer.Exit(2)
    return LEVELS.index(fail_on)


def exit_on_findings(alerts: list[Alert], floor: int | None) -> None:
    """Exit 1 after the output when `--fail-on` was given and an alert reaches its level."""
    if floor is None:
        return
    hits = [a for a in alerts if a.severity >= floor]
    if hits:
        err_console.print(f"{counted(len(hits), 'alert')} at {LEVELS[floor]} or above "
                          f"(--fail-on {LEVELS[floor]}): exit 1", markup=False)
        raise typer.Exit(1)


def hunt(
    ctx: typer.Context,
    events: Annotated[list[str], typer.Argument(help="Event files, folders or globs (any ingest format, EVTX too)")],
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", "-r", help="Sigma rule files or folders (repeatable; rule folders named among EVENTS, as in "
        "`--rules A B C EVENTS`, are read as rules too); without it the bundled packs load")] = None,
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
    fail_on: Annotated[str | None, typer.Option("--fail-on", metavar="LEVEL", help=FAIL_ON_HELP)] = None,
) -> None:
    """Hunt with Sigma rules over event files; print a per-rule summary and an ATT&CK tactic overview, or every
    detection as JSON / NDJSON (rule id, title, level, ATT&CK ids, event source file and record)."""
    if min_level not in LEVELS:
        error_lines([f"--min-level: {min_level!r} is not a level (expected one of {', '.join(LEVELS)})"])
        raise typer.Exit(2)
    fail_floor = check_fail_on(fail_on)
    settings = app_context(ctx).settings
    rule_inputs, events = split_rule_inputs(events)
    if rule_inputs:
        # `--rules A B C` gives B and C to EVENTS (an option takes one value): they hold rules, so read them as rules
        named = ", ".join(map(str, rule_inputs))
        if not events:
            error_lines([f"{named}: Sigma rules, not events; name the event files or folders to hunt over after "
                         f"them (several rule folders: --rules A --rules B, or --rules A B EVENTS…)"])
            raise typer.Exit(2)
        err_console.print(f"note: {named} hold{'s' if len(rule_inputs) == 1 else ''} Sigma rules: read as --rules",
                          markup=False)
        rules = [*(rules or []), *rule_inputs]
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
        err_console.print(f"note: {counted(len(ruleset.problems), 'rule')} cannot be evaluated (--problems lists them)")
    problems: list[str] = []
    total = sum(p.stat().st_size for p in files)
    hunt_started = time.perf_counter()
    with Progress(TextColumn("hunting"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("hunt", total=total)
        advance = lambda path: progress.advance(task, path.stat().st_size if path.exists() else 0)  # noqa: E731
        found = hunt_files(ruleset, files, cache_dir, min_level, problems, advance)
    hunt_seconds = time.perf_counter() - hunt_started
    alerts, count = found.alerts, found.events
    unrecognised = [line for line in problems if line.endswith(UNRECOGNISED)]
    for line in [line for line in problems if not line.endswith(UNRECOGNISED)] + unrecognised[:WARN_MAX]:
        err_console.print(f"warning: {line}", markup=False)
    if len(unrecognised) > WARN_MAX:
        err_console.print(f"warning: … and {len(unrecognised) - WARN_MAX:,} more files whose format was not "
                          "recognised (skipped)", markup=False)
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
    exit_on_findings(alerts, fail_floor)
