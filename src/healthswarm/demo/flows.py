"""The demo's optional last step: the flow classifier as a pipeline detector on real labelled flows.

The demo ships no CICFlowMeter data (CIC-IDS2017 is licensed for research use only), so this step runs
only with `healthswarm demo --flows DIR` (e.g. `../shared/data/flows/cicids2017`): it trains the flow
classifier on part of each labelled file, saves it in the workspace like `healthswarm model train`
would, ingests the held-out rows as a CICFlowMeter sensor's output, and runs the model over the stored
flows as a detector — the labels are used only afterwards, to score the alerts.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from rich.table import Table

from healthswarm.demo.steps import DemoRun, StepResult
from healthswarm.detect.learn.datasets import read_labelled
from healthswarm.detect.learn.detector import ModelDetector
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.pipeline import pipeline_detector
from healthswarm.detect.learn.workspace import save_model
from healthswarm.detect.stage import detect_stored
from healthswarm.ingest.formats import get_format
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file

MODEL_NAME = "demo-flows"
TRAIN_PER_CLASS = 300
HELD_PER_CLASS = 40
HELD_BENIGN = 200  # most traffic is benign: precision is only meaningful against plenty of it
TREES = 30
BUDGET = 1_000  # alerts per source, class and day: the held-out attack flows share few sources


def _split(folder: Path, rng: random.Random) -> tuple[str, list[str], list[str]]:
    header, train, held = "", [], []
    for path in sorted(folder.glob("*.csv")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2:
            continue
        header, rows = lines[0], lines[1:]
        rng.shuffle(rows)
        n_held = HELD_BENIGN if path.name.upper().startswith("BENIGN") else HELD_PER_CLASS
        n_held = min(n_held, len(rows) // 3)
        held += rows[:n_held]
        train += rows[n_held:n_held + TRAIN_PER_CLASS]
    return header, train, held


def flow_model_step(demo: DemoRun) -> StepResult:
    if demo.flows_path is None:
        note = ("skipped: the demo ships no labelled flows; `healthswarm demo --flows "
                "../shared/data/flows/cicids2017` trains the flow classifier and runs it as a detector")
        return StepResult({"skipped": note}, [note])
    folder = demo.flows_path
    header, train, held = _split(folder, random.Random(7))
    if not train or not held:
        note = f"skipped: {folder}: no CICFlowMeter CSV files with a Label column"
        return StepResult({"skipped": note}, [note])
    work = demo.workspace / MODEL_NAME
    work.mkdir(parents=True, exist_ok=True)
    (work / "train.csv").write_text("\n".join([header, *train]) + "\n", encoding="utf-8")
    held_path = work / "held-out-flows.csv"
    held_path.write_text("\n".join([header, *held]) + "\n", encoding="utf-8")
    data = read_labelled([work / "train.csv"])
    model = FlowClassifier(n_estimators=TREES)
    model.learn_many(data.table, data.labels)
    save_model(model, demo.workspace, MODEL_NAME)
    pipeline = Pipeline.for_store(demo.store)
    try:
        ingest_file(pipeline, held_path, get_format("cicflowmeter"))
    finally:
        pipeline.close()
    detector = ModelDetector(pipeline_detector(model, BUDGET), MODEL_NAME)
    result = detect_stored(demo.store, [detector], observer_type="cicflowmeter")
    label_at = header.split(",").index(next(c for c in header.split(",") if c.strip() == "Label"))
    truth = {line_no: row.split(",")[label_at].strip() for line_no, row in enumerate(held, start=2)}
    alerted = {e.record: a for a in result.alerts for e in a.events}
    attacks = {n for n, label in truth.items() if label.upper() != "BENIGN"}
    hits = attacks & alerted.keys()
    precision = len(hits) / len(alerted) if alerted else 0.0
    recall = len(hits) / len(attacks) if attacks else 0.0
    by_class = Counter(a.details.get("class", a.rule_id.split("/", 1)[-1]) for a in result.alerts)
    table = Table(title=f"Flow classifier ({TREES} trees, {len(train)} training rows) over {len(held)} held-out "
                        f"flows ingested from {folder.name}: precision {precision:.3f}, recall {recall:.3f}")
    for column in ("predicted class", "alerts", "held-out flows of that class"):
        table.add_column(column, justify="left" if column == "predicted class" else "right")
    held_by_class = Counter(truth.values())
    for name, count in by_class.most_common():
        table.add_row(name, str(count), str(held_by_class.get(name, 0)))
    summary = {"model": MODEL_NAME, "trained_rows": len(train), "held_out": len(held), "events": result.events,
               "alerts": len(result.alerts), "alerts_by_class": dict(by_class),
               "precision": round(precision, 4), "recall": round(recall, 4)}
    return StepResult(summary, [table])
