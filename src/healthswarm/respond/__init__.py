"""Response: cases along the NIST SP 800-61 life cycle, CACAO 2.0 playbooks, actions with a patient-safety
guardrail, and the regulators' notification deadlines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import RenderableType

    from healthswarm.store import Store


def demo_step(store: Store, workspace: Path) -> tuple[dict[str, Any], list[RenderableType]]:
    """The demo's response step (see `respond.demo`); imported lazily to keep `import healthswarm.respond` light."""
    from healthswarm.respond.demo import demo_step as step

    return step(store, workspace)


__all__ = ["demo_step"]
