"""A streaming model in the detection pipeline: every event is scored (an alert when it deviates, in the
model's own words), then learned — so the model keeps up with the organisation while it watches it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from healthswarm.model import Alert, Event


@runtime_checkable
class ObservingModel(Protocol):
    """What a model needs to run as a detector (AssetBaseline is one)."""

    kind: str

    def observe(self, event: Event) -> Alert | None: ...


class ModelDetector:
    """The `Detector` protocol over an observing model."""

    def __init__(self, model: ObservingModel, name: str | None = None) -> None:
        self.model = model
        self.name = name or model.kind

    def detect(self, event: Event) -> list[Alert]:
        alert = self.model.observe(event)
        out = [alert] if alert is not None else []
        drain = getattr(self.model, "drain", None)  # alerts about the model itself (drift), if it keeps any
        if drain is not None:
            out.extend(drain())
        return out

    def flush(self) -> list[Alert]:
        return []
