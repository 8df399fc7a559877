"""What the demo's steps share: the run's state, and what a step returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import RenderableType

from healthswarm.demo import ADVISORIES
from healthswarm.model import Finding, Inventory
from healthswarm.model.incident import Incident
from healthswarm.store import Store


@dataclass
class DemoRun:
    store: Store
    workspace: Path
    advisories_path: Path = ADVISORIES
    flows_path: Path | None = None  # labelled CICFlowMeter flows for the flow-classifier step
    inventory: Inventory = field(default_factory=Inventory)
    findings: list[Finding] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


@dataclass
class StepResult:
    summary: dict[str, Any]
    show: list[RenderableType] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoRun], StepResult]
