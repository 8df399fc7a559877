"""`healthswarm model train|evaluate|card|list`: learning detectors kept in the workspace (`<workspace>/models/`).

Training and evaluating write the model folder's `confusion.svg` and `roc.svg` (the latest held-out or
evaluation figures); `model card` shows the card with those plots' paths."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit
from healthswarm.detect.learn.card import CARD_FILE
from healthswarm.detect.learn.evaluation import leave_out as leave_out_eval
from healthswarm.detect.learn.plots import CONFUSION_SVG, ROC_SVG, card_plots
from healthswarm.detect.learn.registry import kinds, model_class
from healthswarm.detect.learn.training import evaluate as evaluate_model
from healthswarm.detect.learn.training import learn_stream
from healthswarm.detect.learn.training import train as train_model
from healthswarm.detect.learn.workspace import list_models, load_holdout, load_model, model_dir, save_model
from healthswarm.errors import InputError, Location, Problem
from healthswarm.ingest.enrich import Enricher
from healthswarm.ingest.formats import SNIFF_BYTES, detect_format
from healthswarm.model import Event
from healthswarm.model.words import counted
from healthswarm.store.inventory import load_inventory as stored_inventory

app = typer.Typer(help="Learning detectors: train on labelled files, evaluate, show a card, list.",
                  no_args_is_help=True)


class Split(StrEnum):
    stratified = "stratified"
    time = "time"


class Unseen(StrEnum):
    error = "error"
    other = "other"


def _report_tables(report: dict[str, Any], title: str) -> None:
    per = RichTable(title=title)
    for column in ("class", "precision", "recall", "f1", "support"):
        per.add_column(column, justify="left" if column == "class" else "right")
    for label, m in report["per_class"].items():
        per.add_row(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    console.print(per)
    b = report["binary"]
    console.print(f"macro-F1 {report['macro_f1']:.4f}   accuracy {report['accuracy']:.4f}   attack-vs-benign "
                  f"F1 {b['f1']:.4f} (precision {b['precision']:.4f}, recall {b['recall']:.4f}"
                  + (f", ROC-AUC {b['roc_auc']:.4f})" if "roc_auc" in b else ")") + f"   rows {report['rows']}")
    labels, matrix = report["confusion"]["labels"], report["confusion"]["matrix"]
    confusion = RichTable(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for i, _ in enumerate(labels):
        confusion.add_column(str(i), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        confusion.add_row(f"{i} {label}", *(str(v) if v else "·" for v in row))
    console.print(confusion)
    unseen = report.get("unseen_categories")
    if unseen:
        console.print("rows with categories unseen in training (scored as 'other'): "
                      + ", ".join(f"{k} {v}" for k, v in unseen.items()))


def _params(items: list[str]) -> dict[str, Any]:
    """`--param key=value` pairs: numbers as numbers, true/false as booleans, else the text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(Problem(Location("--param"), f"{item!r}", "key=value, e.g. method=knn or budget=0.01"))
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(text)
                    break
                except ValueError:
                    continue
        out[key.strip()] = value
    return out


def _leave_out_tables(results: list[dict[str, Any]], title: str) -> None:
    table = RichTable(title=title)
    for column in ("left out", "rows", "flagged", "false alarms on benign", "flagged as", "per class"):
        table.add_column(column, justify="left" if column in ("left out", "flagged as", "per class") else "right")
    for r in results:
        table.add_row(r["left_out"], str(r["target_rows"]), f"{r['flagged']:.4f}",
                      f"{r['false_alarm_rate']:.4f} of {r['benign_test_rows']}",
                      ", ".join(f"{k} {v}" for k, v in (r.get("flagged_as") or {}).items()),
                      ", ".join(f"{k} {v['flagged']:.3f}" for k, v in r["per_class"].items()))
    console.print(table)


def _nsl_kdd_table(figures: dict[str, Any]) -> None:
    table = RichTable(title="NSL-KDD binary accuracy (attack vs normal)")
    table.add_column("model")
    subsets = [k for k in figures if k != "recorded_anchors"]
    for k in subsets:
        table.add_column(k, justify="right")
    table.add_row("this model (measured)", *(f"{figures[k].get('accuracy', 0):.4f} ({figures[k]['rows']} rows)"
                                             for k in subsets))
    anchors = figures["recorded_anchors"]
    for name, values in anchors.items():
        if isinstance(values, dict):
            table.add_row(f"{name} (recorded, Tavallaee et al. 2009)",
                          *(f"{values.get(k, float('nan')):.3f}" for k in subsets))
    console.print(table)


def _events(paths: list[Path], enricher: Enricher | None) -> Iterator[tuple[Path, str, Event]]:
    """Events of log files in any ingest format, tied to the stored inventory's assets."""
    for path in paths:
        if not path.is_file():
            raise InputError(Problem(Location(str(path)), "no such file", "a log file"))
        with path.open("rb") as stream:
            fmt = detect_format(stream.read(SNIFF_BYTES), path.name)
            if fmt is None:
                raise InputError(Problem(Location(str(path)), "not a known log format",
                                         "network events: Zeek conn, Suricata flow, CICFlowMeter, …"))
            stream.seek(0)
            for item in fmt.parse(stream, str(path)):
                if isinstance(item, Event):
                    if enricher is not None:
                        enricher.enrich(item)
                    yield path, fmt.name, item


def _train_stream(ctx: typer.Context, kind: str, data: list[Path], name: str, fmt: OutputFormat) -> None:
    context = app_context(ctx)
    with context.store.read() as conn:
        assets = stored_inventory(conn).assets
    model = learn_stream(kind, _events(data, Enricher(assets) if assets else None), {"assets": assets})
    folder = save_model(model, context.settings.workspace, name)
    profiles = getattr(model, "profiles", {})
    rows = [{"asset": asset, "events": p.events, "baseline": p.describe(getattr(model, "names", {}))}
            for asset, p in sorted(profiles.items(), key=lambda kv: -kv[1].events)]
    if fmt is OutputFormat.table:
        emit(rows[:20], fmt, ["asset", "events", "baseline"],
             title=f"{name}: {model.card.metrics['events']} events, {len(rows)} assets (top 20)")
        console.print(f"saved {folder}")
    else:
        emit([{"name": name, "path": str(folder), "card": model.card.as_dict(), "assets": rows}], fmt, [])


@app.command()
def train(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="Model kind: " + ", ".join(kinds()))],
    data: Annotated[list[Path], typer.Option("--data", help="Labelled file (repeatable)")],
    name: Annotated[str | None, typer.Option(help="Model name in the workspace [default: the kind]")] = None,
    split: Annotated[Split, typer.Option(help="Held-out split: stratified, or latest time range per class")] = (
        Split.stratified),
    test: Annotated[float, typer.Option(help="Share of rows held out for the card's metrics")] = 0.3,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Model parameter key=value (repeatable), e.g. method=knn|isolation-forest|autoencoder, "
                        "budget=0.01")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Train KIND on labelled files, measure it on a held-out part, save it with its model card.
    Stream kinds (asset-baseline) learn from log files of network events instead (any ingest format),
    tied to the stored inventory's assets when one is loaded."""
    if not model_class(kind, Location("KIND")).supervised:
        _train_stream(ctx, kind, data, name or kind, fmt)
        return
    trained = train_model(kind, data, split.value, test, seed, _params(param or []))
    workspace = app_context(ctx).settings.workspace
    folder = save_model(trained.model, workspace, name or kind, trained.holdout)
    plots = card_plots(trained.report, folder, f"{name or kind}: held-out {split.value} split")
    if fmt is OutputFormat.table:
        _report_tables(trained.report, f"{name or kind}: held-out {split.value} split ({len(trained.test)} rows)")
        console.print(f"saved {folder} (plots: {', '.join(p.name for p in plots)})")
    else:
        emit([{"name": name or kind, "path": str(folder), "card": trained.model.card.as_dict()}], fmt, [])


@app.command()
def evaluate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (see `model list`)")],
    data: Annotated[list[Path], typer.Option("--data", help="Labelled file (repeatable)")],
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    unseen_categories: Annotated[Unseen, typer.Option(help="Category values not seen in training: stop with an "
                                                           "error, or score them as 'other' and count them")] = (
        Unseen.error),
    leave_out: Annotated[list[str] | None, typer.Option(
        "--leave-out", help="Attack class or family (DoS, PortScan, …) to leave out: retrain this model's kind "
                            "and parameters on DATA without it and measure how much of it is still flagged "
                            "(repeatable; recorded in the model card)")] = None,
) -> None:
    """Score labelled files: precision, recall, F1 per class, macro-F1, confusion matrix. Rows of files the
    model was trained on count only if they were held out. On NSL-KDD also the binary accuracy on KDDTest+
    and KDDTest-21 beside the recorded figures of Tavallaee et al. 2009. The figures are recorded in the
    model card."""
    workspace = app_context(ctx).settings.workspace
    model = load_model(workspace, name)
    if not model.supervised:
        raise InputError(Problem(Location(name), f"{model.kind} is unsupervised: it raises alerts on the event "
                                               "stream and has no labelled evaluation", "a classifier model"))
    card_path = model_dir(workspace, name) / CARD_FILE
    if leave_out:
        params = {k: v for k, v in model.card.params.items() if k != "oob"}
        test = float(model.card.split.get("test_share", 0.3))
        seed = int(model.card.split.get("seed", 0))
        results = [leave_out_eval(model.kind, data, target, params, test, seed) for target in leave_out]
        recorded = model.card.metrics.setdefault("leave_out", {})
        for r in results:
            recorded[r["left_out"]] = r
        model.card.write(card_path)
        if fmt is OutputFormat.table:
            _leave_out_tables(results, f"{name} ({model.kind}) retrained without each class")
        else:
            emit(results, fmt, [])
        return
    report = evaluate_model(model, data, load_holdout(workspace, name), unseen_categories.value)
    report["model"] = name
    key = ", ".join(sorted(Path(f).name for f in report["files"]))
    model.card.metrics.setdefault("evaluations", {})[key] = {
        "rows": report["rows"], "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
        "binary": report["binary"], **({"nsl_kdd": report["nsl_kdd"]} if "nsl_kdd" in report else {})}
    model.card.write(card_path)
    card_plots(report, card_path.parent, f"{name} on {key}")
    if fmt is OutputFormat.table:
        skipped = report["rows_skipped_as_training_data"]
        _report_tables(report, f"{name} on {counted(len(report['files']), 'file')}"
                       + (f" ({skipped} training rows skipped)" if skipped else ""))
        if "nsl_kdd" in report:
            _nsl_kdd_table(report["nsl_kdd"])
    else:
        emit([report], fmt, [])


@app.command("list")
def list_(ctx: typer.Context, fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """The workspace's models with their kind, data, split and held-out figures."""
    rows = []
    for card, status in list_models(app_context(ctx).settings.workspace):
        held = card.metrics.get("held_out", {})
        rows.append({"name": card.name, "kind": card.kind, "layout": card.layout, "created": card.created,
                     "rows": sum(f.rows for f in card.data), "split": card.split.get("method", ""),
                     "macro_f1": round(held["macro_f1"], 4) if "macro_f1" in held else None,
                     "attack_f1": round(held["binary"]["f1"], 4) if "binary" in held else None,
                     "version": card.healthswarm_version, "status": status})
    emit(rows, fmt, ["name", "kind", "layout", "rows", "split", "macro_f1", "attack_f1", "created", "status"],
         empty=f"no models in {app_context(ctx).settings.workspace}: `{command_line(ctx, 'model train …')}` trains one "
               f"(`{command_line(ctx, 'model train --help')}`)")


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False)  # file names and class names are data, not markup


def _card_summary(card: dict[str, Any], plots: dict[str, str]) -> None:
    say(f"{card['name']} ({card['kind']}, {card['layout']}), created {card['created']} by "
        f"healthswarm {card['healthswarm_version']}")
    for f in card["data"]:
        say(f"  data: {f['path']} ({f['rows']} rows, sha256 {f['sha256'][:12]}…)")
    if card["split"]:
        say("  split: " + ", ".join(f"{k} {v}" for k, v in card["split"].items()))
    if card["params"]:
        say("  parameters: " + ", ".join(f"{k}={v}" for k, v in card["params"].items()))
    metrics = card["metrics"]
    if "held_out" in metrics:
        _report_tables(metrics["held_out"], "held-out rows")
    for files, e in metrics.get("evaluations", {}).items():
        say(f"  evaluated on {files}: macro-F1 {e['macro_f1']:.4f}, attack-vs-benign F1 "
            f"{e['binary']['f1']:.4f} ({e['rows']} rows)")
        if "nsl_kdd" in e:
            _nsl_kdd_table(e["nsl_kdd"])
    if metrics.get("leave_out"):
        _leave_out_tables(list(metrics["leave_out"].values()), "retrained without each class")
    for note in card["notes"]:
        say(f"  note: {note}")
    for name, path in plots.items():
        say(f"  {name}: {path}")


@app.command()
def card(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (see `model list`)")],
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """A model's card: data, split, parameters, held-out figures, evaluations, leave-one-class-out results,
    and the paths of its confusion-matrix and ROC plots (SVG, written by `model train` and `model evaluate`)."""
    workspace = app_context(ctx).settings.workspace
    folder = model_dir(workspace, name)
    model = load_model(workspace, name)
    plots = {kind: str(folder / file) for kind, file in (("confusion matrix", CONFUSION_SVG), ("ROC curve", ROC_SVG))
             if (folder / file).is_file()}
    doc = model.card.as_dict()
    if fmt is OutputFormat.table:
        _card_summary(doc, plots)
    else:
        emit([{**doc, "plots": plots}], fmt, [])
