"""`healthswarm ingest PATH|URL…` and `healthswarm quarantine list`."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from healthswarm.bus.base import Bus, BusError
from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, err_console
from healthswarm.errors import ConfigError, InputError, Location, Problem
from healthswarm.ingest.formats import Format, get_format
from healthswarm.ingest.limits import Limits, configure
from healthswarm.ingest.pipeline import DEFAULT_BATCH, Pipeline, reason_kind
from healthswarm.ingest.sources.file import FileResult, expand, ingest_file, ingest_stdin, sizes, source_name
from healthswarm.model.words import counted
from healthswarm.store.events import count_events, count_quarantine, list_quarantine, quarantine_by_reason

quarantine_app = typer.Typer(help="Input that could not be parsed, kept with where it was and why.",
                             no_args_is_help=True)

_RAW_SHOWN = 120
_PROBLEMS_SHOWN = 10  # inputs of which nothing could be read, named one a line; the rest counted


def _format(name: str | None) -> Format | None:
    if name is None:
        return None
    try:
        return get_format(name)
    except KeyError as exc:
        raise ConfigError(f"--format: {exc.args[0]}") from None
    except ModuleNotFoundError:
        raise ConfigError(f"--format {name}: this format is not available in this installation") from None


def _bus(url: str) -> Bus | None:
    # A one-shot `ingest` has no consumer in its own process: the in-memory bus would drop every
    # event, so it only publishes when the configured bus is a server (NATS) that others read.
    if url.startswith("nats://"):
        from healthswarm.bus.nats import NatsBus

        return NatsBus(url)
    return None


def ingest(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(
        help="Files, folders (recursive), globs ('logs/**/*.json'), '-' for stdin, "
             "mqtt://host:port/topic or nats://host:port/subject", show_default=False)],
    fmt: Annotated[str | None, typer.Option("--format", help="Format name; default: detected per file")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep reading: tail files (rotation-aware), keep consuming URLs")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Per-source figures and every reject reason")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per store transaction")] = DEFAULT_BATCH,
    idle: Annotated[float, typer.Option(help="Without --follow, stop a URL source after this many idle seconds")] = 2.0,
    group: Annotated[str, typer.Option(help="NATS consumer group / MQTT client id prefix")] = "healthswarm-ingest",
    ack_wait: Annotated[float, typer.Option(
        min=0.5, help="NATS: seconds before messages a dead consumer held are delivered again")] = 30.0,
) -> None:
    """Read logs and telemetry, normalise, store (exactly once, resumable) and publish events.

    Plain files, gzip/bzip2/xz, zip and tar archives (nested too) are read, within the bounds of
    [ingest] in the settings. Exit 2 when an input gave nothing that could be parsed.
    """
    app = app_context(ctx)
    configure(Limits.from_settings(app.settings.ingest))
    chosen = _format(fmt)
    urls = [t for t in targets if t.startswith(("mqtt://", "nats://"))]
    paths = [t for t in targets if t not in urls and t != "-"]
    files = expand(paths) if paths else []
    if follow and files and urls:
        raise ConfigError("--follow: follow files or URLs in one command, not both")
    try:
        bus = _bus(app.settings.bus)
    except BusError as exc:
        raise ConfigError(str(exc)) from None
    # files read to their end commit in a writer process, on the other core (pipeline.py, _WriterProcess)
    pipeline = Pipeline.for_store(app.store, app.settings.organisation, bus=bus, batch_size=batch_size,
                                  writer_process=bool(files) and not follow)
    stop = threading.Event()
    # `kill` / systemd stop end a follower like Ctrl-C: the summary is printed, nothing is half-stored
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[FileResult] = []
    try:
        results = _run(pipeline, targets, files, urls, chosen, follow, idle, group, ack_wait, stop)
    except KeyboardInterrupt:
        stop.set()
        err_console.print("interrupted: everything up to the last committed batch is stored")
    except BusError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        pipeline.close()
        if bus is not None:
            bus.close()
    _summary(pipeline, stats, app.store if stats else None)
    problems = _unparsed(pipeline, results)
    if len(problems) > _PROBLEMS_SHOWN:
        rest = len(problems) - _PROBLEMS_SHOWN
        problems = [*problems[:_PROBLEMS_SHOWN],
                    Problem(Location(f"… and {counted(rest, 'more input')}"),
                            "nothing could be read either (quarantine list)")]
    if problems:
        raise InputError(problems)


def _unparsed(pipeline: Pipeline, results: list[FileResult]) -> list[Problem]:
    """One problem for each input of which nothing could be parsed (its records all quarantined)."""
    problems = []
    for result in results:
        name = "stdin" if str(result.path) == "-" else source_name(result.path)
        st = pipeline.per_source.get(name)
        rejects = sum(st.rejects.values()) if st is not None else 0
        if result.skipped == "no format recognised":
            problems.append(Problem(Location(str(result.path)), "no format recognised; quarantined",
                                    "one of the formats of `healthswarm ingest --format`"))
        elif st is not None and st.events == 0 and rejects:
            top = result.stopped or st.rejects.most_common(1)[0][0]  # a bound reached says most
            fmt = f" as {result.format}" if result.format else ""
            problems.append(Problem(Location(str(result.path)),
                                    f"nothing could be read{fmt}: {rejects:,} record{'' if rejects == 1 else 's'} "
                                    f"quarantined, e.g. {top}"))
    return problems


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _run(pipeline: Pipeline, targets: list[str], files: list[Path], urls: list[str], chosen: Format | None,
         follow: bool, idle: float, group: str, ack_wait: float, stop: threading.Event) -> list[FileResult]:
    results: list[FileResult] = []
    if "-" in targets:
        results.append(ingest_stdin(pipeline, chosen))
    if files and follow:
        _follow(pipeline, files, chosen, stop)
    elif files:
        read = _read_files(pipeline, files, chosen)
        results.extend(read)
        skipped = Counter(r.skipped for r in read if r.skipped)
        if skipped:
            err_console.print("files: " + ", ".join(f"{n} {why}" for why, n in skipped.items()))
        stopped = [r for r in read if r.stopped]
        for r in stopped:
            err_console.print(escape(f"{r.path}: not read to its end: {r.stopped}"))
    for url in urls:
        _consume(pipeline, url, chosen, group, None if follow else idle, ack_wait, stop)
    return results


def _read_files(pipeline: Pipeline, files: list[Path], fmt: Format | None) -> list[FileResult]:
    total = sum(sizes(files))
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("ingest", total=total)
        done = 0
        results = []
        for path, size in zip(files, sizes(files), strict=True):
            progress.update(task, description=path.name[:30])
            results.append(
                ingest_file(pipeline, path, fmt, lambda n, base=done: progress.update(task, completed=base + n)))
            done += size
            progress.update(task, completed=done)
    return results


def _follow(pipeline: Pipeline, files: list[Path], fmt: Format | None, stop: threading.Event) -> None:
    from healthswarm.ingest.sources.follow import Follower

    followers = [Follower(pipeline, path, fmt) for path in files]
    err_console.print(f"following {counted(len(files), 'file')}; Ctrl-C to stop")
    interval = 0.2
    while not stop.is_set():
        busy = False
        for follower in followers:
            busy |= follower.step()
        if not busy:
            stop.wait(interval)
        interval = 0.2 if busy else min(interval * 2, 2.0)


def _consume(pipeline: Pipeline, url: str, fmt: Format | None, group: str, idle: float | None, ack_wait: float,
             stop: threading.Event) -> None:
    if url.startswith("mqtt://"):
        from healthswarm.ingest.sources.mqtt import MqttSource

        with MqttSource.from_url(url, client_prefix=group) as source:
            pipeline.consume(source, scheme="mqtt", fmt=fmt, name=url, should_stop=stop.is_set, idle=idle)
    else:
        from healthswarm.ingest.sources.nats import NatsSource

        with NatsSource.from_url(url, group=group, ack_wait=ack_wait) as source:
            pipeline.consume(source, scheme="nats", fmt=fmt, name=url, should_stop=stop.is_set, idle=idle)


def _summary(pipeline: Pipeline, detailed: bool, store: Any) -> None:
    s = pipeline.stats
    rejects = sum(s.rejects.values())
    line = (f"{s.events:,} events read: {s.stored:,} stored, {s.duplicates:,} duplicates skipped; "
            f"{rejects:,} rejects ({s.quarantined:,} newly quarantined)")
    if s.messages:
        line += f"; {s.messages:,} messages acked"
    err_console.print(line)
    if detailed:
        table = Table(title="sources")
        for column in ("source", "events", "stored", "duplicates", "rejects", "seconds", "events/s"):
            table.add_column(column, justify="left" if column == "source" else "right")
        for name, st in pipeline.per_source.items():
            rate = st.events / st.seconds if st.seconds else 0.0
            table.add_row(escape(_short(name)), f"{st.events:,}", f"{st.stored:,}", f"{st.duplicates:,}",
                          f"{sum(st.rejects.values()):,}", f"{st.seconds:.2f}", f"{rate:,.0f}")
        err_console.print(table)
        with store.read() as conn:
            err_console.print(f"store: {count_events(conn):,} events, {count_quarantine(conn):,} quarantined")
    if s.rejects:
        table = Table(title="rejects by reason")
        table.add_column("count", justify="right")
        table.add_column("reason")
        shown = s.rejects.most_common(None if detailed else 10)
        for reason, n in shown:
            table.add_row(f"{n:,}", escape(reason))  # reasons quote input: never rich markup
        err_console.print(table)
        if len(s.rejects) > len(shown):
            err_console.print(f"… and {len(s.rejects) - len(shown)} more reasons (--stats shows all)")


def _short(name: str, width: int = 48) -> str:
    """A long path or URL cut at the front, where paths differ least."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def escape_raw(raw: bytes, limit: int = _RAW_SHOWN) -> str:
    """Bytes as printable text: non-ASCII and control bytes escaped, cut at `limit` characters."""
    text = raw[: limit * 4].decode("ascii", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    reason: Annotated[str | None, typer.Option(help="Only records with exactly this reason")] = None,
    source: Annotated[str | None, typer.Option(help="Only records from this source")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Records shown")] = 50,
    counts: Annotated[bool, typer.Option("--counts", help="Only the count per format and reason")] = False,
) -> None:
    """Quarantined input: counts per reason, then the records (raw bytes escaped and truncated)."""
    with app_context(ctx).store.read() as conn:
        by_reason = quarantine_by_reason(conn)
        records = [] if counts else list_quarantine(conn, reason=reason, source=source, limit=limit)
        total = count_quarantine(conn)
    grouped: Counter[tuple[str, str]] = Counter()
    for f, r, n in by_reason:
        grouped[(f, reason_kind(r))] += n
    count_rows = [{"count": n, "format": f, "reason": r} for (f, r), n in grouped.most_common()]
    if fmt is OutputFormat.table and not total:
        console.print(f"nothing quarantined: every record `{command_line(ctx, 'ingest')}` read so far was parsed",
                      markup=False, highlight=False)
        return
    if counts or fmt is OutputFormat.table:
        emit(count_rows, fmt, ["count", "format", "reason"], title=f"{total:,} quarantined, by reason")
    if counts:
        return
    shown = (lambda text: _short(text, 40)) if fmt is OutputFormat.table else (lambda text: text)
    rows = [{"id": q.id, "source": shown(q.source), "position": q.position, "format": q.format, "reason": q.reason,
             "raw": escape_raw(q.raw), "raw_bytes": len(q.raw), "received": q.received.isoformat()}
            for q in records]
    emit(rows, fmt, ["id", "source", "position", "format", "reason", "raw"],
         title=f"first {len(rows)} records" if len(rows) < total else "records")
