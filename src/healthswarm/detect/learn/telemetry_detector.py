"""The telemetry model as a pipeline detector: one device reading in, an alert when it looks like an attack.

Readings come from `iomt.metrics.<column>` (the ton-iot and iomt-json formats write them there), read
as the training layout reads them: numbers as numbers, switch words (`on`/`off`, `high`/`low`, …) as
1/0. The device kind is `device.type` (the ingest format spells `gps_tracker`, the model `gps-tracker`).
Sequence features need one stream per physical device, so the state is kept per `device.id` (else per
source): two fridges reporting at once must not look like one fridge with bursts.
Events that are not readings of a device kind the model knows, or lack one of its readings, are skipped
and counted with the reason.

Per stream, Page-Hinkley watches the scores: when they rise and stay up (the GPS tracker moved to a new
route, a thermostat to a new season) an alert of detector `drift` says the model no longer fits the
device, and which readings moved, in half-widths of the normal envelope from its centre (`drift.py`).

Stored events reach detection in time order; readings within one second are ordered by event key, not
by file line, so a burst's rate-of-change features can differ from training (measured in the tests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from healthswarm.detect.learn.datasets.toniot import reading
from healthswarm.detect.learn.drift import FeatureDrift, PageHinkley, drift_alert
from healthswarm.detect.learn.pipeline import DEFAULT_BUDGET, AlertBudget, ModelStats
from healthswarm.detect.learn.sequence import SequenceState, names
from healthswarm.detect.learn.telemetry import TelemetryModel
from healthswarm.model import Alert, Event, EventRef

THRESHOLD = 0.5  # the model's own decision (predict_one)


def value_of(raw: Any) -> float:
    """A reading field as the model's number; ValueError when it is not one."""
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    return reading(str(raw))


class TelemetryDetector:
    """Observes device readings with a trained telemetry model (see the module docstring)."""

    kind = "telemetry"

    def __init__(self, model: TelemetryModel, budget_per_day: int = DEFAULT_BUDGET) -> None:
        self.model = model
        self.name = model.card.name or model.kind
        self.stats = ModelStats()
        self.budget = AlertBudget(budget_per_day)
        self._streams: dict[tuple[str, str], SequenceState] = {}
        self._drift: dict[tuple[str, str], tuple[PageHinkley, FeatureDrift]] = {}
        self.drift_alerts = 0
        self._pending: list[Alert] = []

    def values_of(self, event: Event) -> tuple[str, np.ndarray] | str:
        """(the model's device kind, the readings in its order), or the reason the event has none."""
        f = event.fields
        observer = f.get("observer.type") or "unknown"
        device_type = f.get("device.type")
        if not device_type:
            return f"{observer}: not a device reading (no device.type)"
        device = str(device_type).replace("_", "-")
        if device not in self.model.devices:
            return f"{observer}: no model for device type {device_type!r}"
        values = []
        for name in self.model.readings(device):
            raw = f.get(f"iomt.metrics.{name}")
            if raw is None:
                return f"{observer}: {device} reading {name} missing"
            try:
                value = value_of(raw)
            except ValueError:
                return f"{observer}: {device} reading {name} is not a number"
            if not math.isfinite(value):
                return f"{observer}: {device} reading {name} is NaN or infinite"
            values.append(value)
        return device, np.asarray(values)

    def observe(self, event: Event) -> Alert | None:
        found = self.values_of(event)
        if isinstance(found, str):
            self.stats.skipped[found] += 1
            return None
        device, values = found
        stream = str(event.fields.get("device.id") or event.source)
        state = self._streams.setdefault((device, stream), SequenceState())
        score, row = self.model.score_stream(device, values, event.timestamp.timestamp(), state)
        self.stats.scored += 1
        self._watch(event, device, stream, values, score)
        if score < THRESHOLD:
            return None
        if not self.budget.allow(stream, device, event.timestamp):
            self.stats.suppressed += 1
            return None
        self.stats.alerts += 1
        return self._alert(event, device, stream, score, row)

    def _watch(self, event: Event, device: str, stream: str, values: np.ndarray, score: float) -> None:
        """Page-Hinkley on the device's scores: a raise that lasts means the model no longer fits it."""
        if (device, stream) not in self._drift:
            readings, envelope, _ = self.model.devices[device]
            self._drift[(device, stream)] = (PageHinkley(), FeatureDrift(
                list(readings), (envelope.low + envelope.high) / 2, (envelope.high - envelope.low) / 2))
        test, moved = self._drift[(device, stream)]
        moved.update(values)
        if test.update(score):
            self.drift_alerts += 1
            self._pending.append(drift_alert(self.name, self.kind, event, test, moved.drifting(),
                                             f"{device} {stream}"))

    def drain(self) -> list[Alert]:
        """Drift alerts since the last call; `ModelDetector` passes them on."""
        out, self._pending = self._pending, []
        return out

    def _alert(self, event: Event, device: str, stream: str, score: float, row: np.ndarray) -> Alert:
        readings = self.model.readings(device)
        features = dict(zip(names(readings), row.tolist(), strict=True))
        shown = ", ".join(f"{r}={features[r]:g}" for r in readings)
        context = [f"{features['same_second']:g} earlier readings this second",
                   f"seen {features['replays']:g} times in the last 50"]
        outside = [f"{r} {features[f'outside_{r}']:.1f} envelope widths outside normal" for r in readings
                   if features[f"outside_{r}"] > 0]
        assets = tuple(a for a in (event.fields.get("asset.id"),) if a)
        return Alert(
            detector=self.name, rule_id=f"{self.kind}/attack",
            title=f"{device} {stream}: readings look like an attack", level="high" if score >= 0.9 else "medium",
            timestamp=event.timestamp, events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            assets=assets, tags=("healthswarm.learn", self.kind),
            description=(f"model {self.name} scores this {device} reading {score:.2f} (attack probability): "
                         f"{shown}; " + "; ".join([*context, *outside])),
            details={"score": round(score, 4), "class": "attack", "device": device, "stream": stream,
                     "model": self.name},
        )
