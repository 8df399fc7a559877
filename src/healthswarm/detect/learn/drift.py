"""Drift of a score stream: Page-Hinkley, telling when a model no longer fits what it watches.

A calibrated model's scores of the traffic it was built for have a stable mean (the novelty rank of
benign flows is uniform on 0…1, mean 0.5; a telemetry model's attack probability of normal readings
stays near 0). When the mean rises and stays up — the device moved to a new route, the network's
benign traffic changed, or an attack goes on and on — the cumulative deviation from the running mean
passes `threshold` and `update` returns True once; the test then starts over from the new level.

    m_t = Σ (x_i − mean_i − delta),  M_t = min m_t,  drift when m_t − M_t > threshold

`delta` is the change too small to matter, `threshold` (λ) trades detection delay against false
detections; `warmup` readings pass before any detection. Only rises are detected: a model scoring its
stream lower than before is not failing to fit it.

`FeatureDrift` says which features moved, and `drift_alert` is the alert the model detectors raise
(detector `drift`), so a drifting model shows up beside, not inside, its own detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from healthswarm.model import Alert, Event, EventRef


@dataclass(slots=True)
class PageHinkley:
    delta: float = 0.05
    threshold: float = 25.0
    warmup: int = 100
    count: int = 0
    mean: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0
    reference: float = 0.0  # the mean before the last detection (or so far)
    recent: float = 0.0  # exponential mean of the last ~50 values
    detections: int = 0
    span: int = 0  # readings from the last start to the last detection

    def update(self, x: float) -> bool:
        self.count += 1
        self.mean += (x - self.mean) / self.count
        self.recent = x if self.count == 1 else self.recent + (x - self.recent) / 50
        self.cumulative += x - self.mean - self.delta
        self.minimum = min(self.minimum, self.cumulative)
        if self.count < self.warmup or self.cumulative - self.minimum <= self.threshold:
            return False
        self.detections += 1
        self.reference, self.span = self.mean, self.count
        self.count, self.mean, self.cumulative, self.minimum = 0, 0.0, 0.0, 0.0
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"method": "page-hinkley", "delta": self.delta, "threshold": self.threshold, "warmup": self.warmup,
                "reference_mean": round(self.reference, 4), "recent_mean": round(self.recent, 4),
                "span": self.span, "detections": self.detections}


class FeatureDrift:
    """Which features moved when a score stream drifts: an exponential mean (last ~`span` values) of each
    feature, in spreads from the centre of what the model was trained on."""

    def __init__(self, names: list[str], centre: np.ndarray, spread: np.ndarray, span: int = 50) -> None:
        self.names = names
        self.centre = np.asarray(centre, dtype=np.float64)
        self.spread = np.maximum(np.asarray(spread, dtype=np.float64), 1e-9)
        self.rate = 1 / span
        self.recent: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        z = (np.asarray(values, dtype=np.float64) - self.centre) / self.spread
        self.recent = z if self.recent is None else self.recent + (z - self.recent) * self.rate

    def drifting(self, top: int = 3) -> list[dict[str, Any]]:
        """The `top` features furthest from the training centre lately (at least one spread away)."""
        if self.recent is None:
            return []
        order = np.argsort(-np.abs(self.recent), kind="stable")[:top]
        return [{"feature": self.names[i], "recent_spreads_from_training": round(float(self.recent[i]), 2)}
                for i in order if abs(self.recent[i]) >= 1]


def drift_alert(model: str, kind: str, event: Event, test: PageHinkley, features: list[dict[str, Any]],
                what: str) -> Alert:
    """The alert that a model no longer fits what it watches (`what`: "the traffic", "fridge f-1")."""
    moved = ", ".join(f"{f['feature']} ({f['recent_spreads_from_training']:+g} spreads)" for f in features)
    return Alert(
        detector="drift", rule_id=f"{kind}/drift", title=f"model {model} no longer fits {what}", level="low",
        timestamp=event.timestamp, events=(EventRef(event.source, event.record, event.key, event.timestamp),),
        assets=tuple(a for a in (event.fields.get("asset.id"), event.fields.get("destination.asset.id")) if a),
        tags=("healthswarm.learn", kind, "drift"),
        description=(f"the scores of model {model} on {what} rose from a mean of {test.reference:.2f} to "
                     f"{test.recent:.2f} over {test.span} events (Page-Hinkley); "
                     + (f"drifting: {moved}" if moved else "no single feature moved; their combination did")
                     + ". The device or the traffic has changed, or an attack lasts: review it, and retrain the "
                     "model on current data"),
        details={"drift": test.as_dict(), "model": model, "features": features},
    )
