"""Model kinds by name: the plug-in point of `detect/learn` (a `plugins.Registry`).

Built-in kinds are imported on first use; other packages add kinds with `@register` or through the
`healthswarm.models` entry-point group (`kind = "package.module:Class"`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from healthswarm.errors import Location
from healthswarm.plugins import Registry

if TYPE_CHECKING:
    from healthswarm.detect.learn.base import Model

M = TypeVar("M", bound="type[Model]")

MODELS: Registry[type[Model]] = Registry(
    "model kind", "healthswarm.models", {
        "flow-classifier": "healthswarm.detect.learn.flow_classifier:FlowClassifier",
        "asset-baseline": "healthswarm.detect.learn.asset_baseline:AssetBaseline",
        "telemetry": "healthswarm.detect.learn.telemetry:TelemetryModel",
        "novelty": "healthswarm.detect.learn.novelty:NoveltyModel",
        "hybrid": "healthswarm.detect.learn.novelty:HybridModel",
    }, expect=type, name_of=lambda cls: cls.kind)


def register(cls: M) -> M:
    """Class decorator: make `cls.kind` available to `model_class` and `healthswarm model train`."""
    return MODELS.register(cls)


def kinds() -> list[str]:
    return sorted(MODELS.names())


def model_class(kind: str, where: Location | None = None) -> type[Model]:
    return MODELS.get(kind, where)
