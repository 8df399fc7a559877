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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    def update(self, x: float) -> bool:
        self.count += 1
        self.mean += (x - self.mean) / self.count
        self.recent = x if self.count == 1 else self.recent + (x - self.recent) / 50
        self.cumulative += x - self.mean - self.delta
        self.minimum = min(self.minimum, self.cumulative)
        if self.count < self.warmup or self.cumulative - self.minimum <= self.threshold:
            return False
        self.detections += 1
        self.reference = self.mean
        self.count, self.mean, self.cumulative, self.minimum = 0, 0.0, 0.0, 0.0
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"method": "page-hinkley", "delta": self.delta, "threshold": self.threshold, "warmup": self.warmup,
                "reference_mean": round(self.reference, 4), "recent_mean": round(self.recent, 4),
                "detections": self.detections}
