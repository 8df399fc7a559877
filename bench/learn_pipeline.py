"""Benchmark of the trained models as pipeline detectors: scoring throughput over ingested events.

    python bench/learn_pipeline.py [--quick]

Events are what `healthswarm ingest` makes of the files (the cicflowmeter and ton-iot formats, in
memory: the store is not what is measured), run through `detect.stage.run_detectors` as
`healthswarm detect` runs them. Measured in the same run, on the same events:

- baseline: a pass-through detector (an observing model that returns None): the cost of the loop;
- the flow classifier's detector (`FlowDetector`) over held-out CIC-IDS2017 flows, plus a Suricata log
  whose events it skips and counts;
- the telemetry detector (`TelemetryDetector`) over held-out TON_IoT fridge readings, with the per-row
  scoring path (`boosting.FlatBooster`) and, for a few hundred rows, scikit-learn's `predict_proba`.

Quality of the alerts over the same events is reported beside the speed (labels are read by the bench
only; the detectors never see them). Writes bench/results/learn_pipeline.json.
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report, timed
from healthswarm.demo import LOGS
from healthswarm.detect.learn.boosting import positive_probability
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.detector import ModelDetector
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.flow_detector import FlowDetector
from healthswarm.detect.learn.sequence import SequenceState
from healthswarm.detect.learn.splits import by_time
from healthswarm.detect.learn.telemetry import TelemetryModel
from healthswarm.detect.learn.telemetry_detector import TelemetryDetector
from healthswarm.detect.stage import run_detectors
from healthswarm.ingest.formats import get_format
from healthswarm.model import Alert, Event

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CIC = DATA / "flows" / "cicids2017"
FRIDGE = DATA / "iot" / "ton-iot" / "Train_Test_IoT_Fridge.csv"


class PassThrough:
    """The baseline: an observing model that looks at nothing and raises nothing."""

    kind = "pass-through"

    def observe(self, event: Event) -> Alert | None:
        return None


def events_of(fmt: str, data: bytes, source: str) -> list[Event]:
    return [e for e in get_format(fmt).parse(io.BytesIO(data), source) if isinstance(e, Event)]


def throughput(events: list[Event], observer: Any, repeat: int) -> tuple[float, list[Alert]]:
    """Best events/s of `repeat` runs over the same events, and the alerts of the last run."""
    best, alerts = 0.0, []
    for _ in range(repeat):
        (count, alerts), seconds = timed(lambda: run_detectors(events, [ModelDetector(observer)]))
        best = max(best, count / seconds)
    return best, alerts


def flows(quick: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    rng = random.Random(0)
    per_class_train, per_class_held = (300, 200) if quick else (1000, 600)
    header, train, held = "", [], []
    for path in sorted(CIC.glob("*.csv")):
        lines = path.read_text().splitlines()
        header, rows = lines[0], lines[1:]
        rng.shuffle(rows)
        n_held = min(per_class_held, len(rows) // 3)
        held += rows[:n_held]
        train += rows[n_held:n_held + per_class_train]
    with tempfile.TemporaryDirectory() as folder:
        train_csv = Path(folder) / "train.csv"
        train_csv.write_text("\n".join([header, *train]) + "\n")
        data = read_labelled([train_csv])
    model = FlowClassifier(n_estimators=30 if quick else 100)
    _, train_s = timed(lambda: model.learn_many(data.table, data.labels))
    model.card.name = "cic"
    cic_events = events_of("cicflowmeter", ("\n".join([header, *held]) + "\n").encode(), "held.csv")
    suricata = events_of("suricata", (LOGS / "suricata-eve.json").read_bytes(), "suricata-eve.json")
    stream = cic_events + suricata
    repeat = 1 if quick else 3
    base, _ = throughput(stream, PassThrough(), repeat)
    detector = FlowDetector(model, budget_per_day=10**9)
    rate, alerts = throughput(stream, detector, repeat)
    truth = {e.record: e.fields["flow.label"] for e in cic_events}
    attacks = {r for r, label in truth.items() if label != "BENIGN"}
    hit = {a.events[0].record for a in alerts if a.events[0].source == "held.csv"}
    right = sum(a.details["class"] == truth[a.events[0].record] for a in alerts if a.events[0].record in attacks)
    figures = {
        "classes": len({*truth.values()}), "train_rows": len(train), "trees": model.params["n_estimators"],
        "train_seconds": round(train_s, 2), "events": len(stream), "cicflowmeter_events": len(cic_events),
        "suricata_events_skipped": sum(detector.stats.skipped.values()) // repeat,
        "pass_through_events_per_s": round(base), "flow_detector_events_per_s": round(rate),
        "ratio_to_pass_through": round(rate / base, 4),
        "alert_recall": round(len(hit & attacks) / len(attacks), 4),
        "alert_precision": round(len(hit & attacks) / len(hit), 4) if hit else None,
        "alert_right_class": round(right / max(1, len(hit & attacks)), 4),
    }
    rows = [
        ("flows: events (CICFlowMeter + Suricata)", f"{len(cic_events):,} + {len(suricata):,}"),
        ("flows: pass-through baseline", f"{base:,.0f} events/s"),
        ("flows: flow detector", f"{rate:,.0f} events/s ({rate / base:.4f}× baseline)"),
        ("flows: alert recall / precision / right class",
         f"{figures['alert_recall']} / {figures['alert_precision']} / {figures['alert_right_class']}"),
    ]
    return figures, rows


def telemetry(quick: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    data = read_labelled([FRIDGE])
    train, held = by_time(data.labels, data.times)
    model = TelemetryModel.from_data(data, train, max_iter=60 if quick else 200)
    model.card.name = "fridge"
    lines = FRIDGE.read_text(encoding="utf-8-sig").splitlines()
    numbers = sorted(int(data.table.origin[i].rpartition(":")[2]) for i in held)
    text = "\n".join([lines[0], *(lines[n - 1] for n in numbers)]) + "\n"
    events = events_of("ton-iot", text.encode(), "Train_Test_IoT_Fridge_heldout.csv")
    base, _ = throughput(events, PassThrough(), 1)
    detector = TelemetryDetector(model, budget_per_day=10**9)
    rate, alerts = throughput(events, detector, 1)
    # scikit-learn's own one-row path, on a few hundred readings (it is the slow part this replaces)
    _, envelope, clf = model.devices["fridge"]
    state = SequenceState()
    sample = [detector.values_of(e) for e in events[:300]]
    rows_ = [state.step(v, e.timestamp.timestamp(), envelope) for e, (_, v) in zip(events, sample, strict=False)]
    start = time.perf_counter()
    for row in rows_:
        clf.predict_proba(row[None, :])
    sklearn_rate = len(rows_) / (time.perf_counter() - start)
    start = time.perf_counter()
    for row in rows_:
        positive_probability(clf, row)
    flat_rate = len(rows_) / (time.perf_counter() - start)
    labels = {e.record: e.fields["iomt.label"] for e in events}
    attacks = {r for r, label in labels.items() if label == 1}
    hit = {a.events[0].record for a in alerts}
    figures = {
        "device": "fridge", "events": len(events), "max_iter": model.params["max_iter"],
        "pass_through_events_per_s": round(base), "telemetry_detector_events_per_s": round(rate),
        "ratio_to_pass_through": round(rate / base, 4),
        "one_row_sklearn_predict_proba_per_s": round(sklearn_rate), "one_row_flat_trees_per_s": round(flat_rate),
        "flat_trees_speedup": round(flat_rate / sklearn_rate, 1),
        "alert_recall": round(len(hit & attacks) / len(attacks), 4),
        "alert_precision": round(len(hit & attacks) / len(hit), 4) if hit else None,
    }
    rows = [
        ("telemetry: events (fridge, held out)", f"{len(events):,}"),
        ("telemetry: pass-through baseline", f"{base:,.0f} events/s"),
        ("telemetry: telemetry detector", f"{rate:,.0f} events/s ({rate / base:.4f}× baseline)"),
        ("telemetry: one row, predict_proba vs flat trees",
         f"{sklearn_rate:,.0f} vs {flat_rate:,.0f} rows/s ({flat_rate / sklearn_rate:.0f}×)"),
        ("telemetry: alert recall / precision", f"{figures['alert_recall']} / {figures['alert_precision']}"),
    ]
    return figures, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trees, rounds and events")
    args = parser.parse_args()
    flow_figures, flow_rows = flows(args.quick)
    tel_figures, tel_rows = telemetry(args.quick)
    report("learn_pipeline", {"flows": flow_figures, "telemetry": tel_figures}, [*flow_rows, *tel_rows], args.quick)


if __name__ == "__main__":
    main()
