"""Trained models as pipeline detectors: what every model detector shares, and which detector a loaded
workspace model runs as.

A model detector builds the model's feature row from an event, scores it and raises an `Alert` on the
shared contract (detector = the model's name, `rule_id` = `<kind>/<class>`). Events that do not carry
the model's features are not guessed at: they are skipped and counted by reason
(`suricata: not a cicflowmeter flow (none of the model's 83 features)`), so a report says what the
model never saw. Alerts are capped per source (host or device), class and UTC day; what is over the
budget is counted as suppressed, as the asset baselines do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

from healthswarm.detect.learn.base import Model
from healthswarm.detect.learn.detector import ObservingModel
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import LEVELS

DEFAULT_BUDGET = 20  # alerts per source, class and UTC day


@dataclass(slots=True)
class ModelStats:
    """What a model detector did with the events it was given."""

    scored: int = 0
    alerts: int = 0
    suppressed: int = 0
    unseen_categories: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "alerts": self.alerts, "suppressed": self.suppressed,
                "unseen_categories": self.unseen_categories, "skipped": dict(self.skipped.most_common())}


class AlertBudget:
    """At most `per_day` alerts per (source, class) and UTC day: a DDoS flood gives a handful of alerts
    and a count, and the same host's port scan still gets its own."""

    def __init__(self, per_day: int = DEFAULT_BUDGET) -> None:
        self.per_day = per_day
        self._spent: Counter[tuple[str, str, str]] = Counter()

    def allow(self, source: str, what: str, when: datetime) -> bool:
        key = (source, what, when.date().isoformat())
        if self._spent[key] >= self.per_day:
            return False
        self._spent[key] += 1
        return True


def lower(level: str) -> str:
    """One level less severe (not below low): a less certain model says less loudly."""
    return LEVELS[max(1, LEVELS.index(level) - 1)]


#: model kind → the detector class that runs it over events, `(model, budget_per_day)`; imported on first use
DETECTORS = {
    "flow-classifier": "healthswarm.detect.learn.flow_detector:FlowDetector",
    "telemetry": "healthswarm.detect.learn.telemetry_detector:TelemetryDetector",
    "novelty": "healthswarm.detect.learn.novelty_detector:NoveltyDetector",
    "hybrid": "healthswarm.detect.learn.novelty_detector:NoveltyDetector",
}


def pipeline_detector(model: Model, budget_per_day: int = DEFAULT_BUDGET) -> ObservingModel:
    """The observing detector of a loaded model; InputError for a kind that cannot score single events."""
    if (target := DETECTORS.get(model.kind)) is not None:
        module, _, name = target.partition(":")
        detector: ObservingModel = getattr(import_module(module), name)(model, budget_per_day)
        return detector
    if isinstance(model, ObservingModel):  # the asset baselines observe (and keep learning) by themselves
        return model
    raise InputError(Problem(Location(model.card.name or model.kind, field="kind"),
                             f"a {model.kind} model cannot run in the detection pipeline",
                             "a flow-classifier, hybrid, novelty, telemetry or asset-baseline model"))
