"""Model kinds by name: the plug-in point of `detect/learn`.

Built-in kinds are imported on first use; other packages add kinds with `@register` or through the
`healthswarm.models` entry-point group (`kind = "package.module:Class"`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from healthswarm.errors import InputError, Location, Problem

if TYPE_CHECKING:
    from healthswarm.detect.learn.base import Model

M = TypeVar("M", bound="type[Model]")

_BUILTIN = {
    "flow-classifier": "healthswarm.detect.learn.flow_classifier:FlowClassifier",
    "asset-baseline": "healthswarm.detect.learn.asset_baseline:AssetBaseline",
    "telemetry": "healthswarm.detect.learn.telemetry:TelemetryModel",
    "novelty": "healthswarm.detect.learn.novelty:NoveltyModel",
    "hybrid": "healthswarm.detect.learn.novelty:HybridModel",
}
_KINDS: dict[str, type[Model]] = {}


def register(cls: M) -> M:
    """Class decorator: make `cls.kind` available to `model_class` and `healthswarm model train`."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    _KINDS[cls.kind] = cls
    return cls


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="healthswarm.models")}


def kinds() -> list[str]:
    return sorted({*_BUILTIN, *_KINDS, *_plugins()})


def model_class(kind: str, where: Location | None = None) -> type[Model]:
    if kind not in _KINDS:
        target = _BUILTIN.get(kind) or _plugins().get(kind)
        if target is None:
            raise InputError(Problem(where or Location("<kind>"), f"unknown model kind {kind!r}",
                                     "one of " + ", ".join(kinds())))
        module, _, name = target.partition(":")
        cls = getattr(import_module(module), name)
        _KINDS.setdefault(kind, cls)
    return _KINDS[kind]
